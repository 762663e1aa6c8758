"""Video face search: frames analysed per second at 720p and 1080p on one and two cores,
the real-time factor at the default sampling rate, and the sampling rate against the
accuracy of the reported time ranges (how the default was chosen).

    .venv/bin/python benchmarks/video_bench.py                 # 12-second videos, 1 and 2 cores
    .venv/bin/python benchmarks/video_bench.py --seconds 30 --cores 1,2

The videos are built here from LFW photos with PyAV (H.264 through the wheel's libx264,
25 frames per second): three people, each on screen for a few seconds with motion and
zoom, stretches without a face, faces 150-500 px wide. Each measurement runs in a child
process pinned with `taskset` to the first N cores, with ONNX Runtime told to use N
threads, and times the whole loop a video search runs: decode every frame, convert the
sampled ones, detect, align, embed, track (search in the collection is left out: it is
a vector lookup per track, microseconds next to a frame's analysis). Model loading is
left out. Results go to stdout as markdown; progress to stderr.

* fps analysed: sampled frames analysed per second of wall time (decoding included; the
  decoding alone, every frame decoded and the sampled ones converted, is timed in a pass
  of its own before).
* real-time factor: seconds of video per second of wall time at the sampling rate (above
  1: faster than the video plays).
* two cores are measured twice: one search with two inference threads, and two searches
  at once, one per core (what two service workers do): the second is the throughput.
* accuracy against sampling rate: on the tests' 640x360 scene (tests/video/scenes.py), the
  worst error of a reported appearance's start or end against when the person is really
  on screen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scene builder is shared with the tests

from tests.video.scenes import ENROLLED, SCENE, SCENE_SECONDS, SCENE_SIZE, TRUTH, Appearance, lfw_photo, render  # noqa: E402

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def bench_scene(size: tuple[int, int], seconds: float) -> list[Appearance]:
    """Three people at known times on a canvas of `size`, scaled to its height."""
    k = size[1] / 360
    w = size[0]
    return [
        Appearance(lfw_photo("Colin_Powell", 2), 0.1 * seconds, 0.4 * seconds, (0, 0), (round(w * 0.3), round(40 * k)),
                   (0.8 * k, 1.2 * k)),
        Appearance(lfw_photo("Serena_Williams", 2), 0.3 * seconds, 0.6 * seconds, (round(w * 0.6), round(20 * k)),
                   (round(w * 0.55), round(40 * k)), (1.0 * k, 0.8 * k)),
        Appearance(lfw_photo("Hugo_Chavez", 1), 0.7 * seconds, 0.9 * seconds, (round(w * 0.2), round(60 * k)),
                   (round(w * 0.3), round(60 * k)), (0.7 * k, 0.7 * k)),
    ]


CHILD = """
import json, sys, time
from pathlib import Path
from facegate.vision import Pipeline, PipelineConfig
from facegate.vision.tracking import Tracker, TrackerConfig
from facegate.vision.video import probe, sample_frames
path, fps, threads, cache = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
enrolled = json.loads(sys.argv[5])  # subject -> photo paths, to name the tracks by
pipeline = Pipeline(PipelineConfig(threads=threads, model_cache=cache))
known = {s: [pipeline.analyze_file(Path(p), 1)[0].template for p in photos] for s, photos in enrolled.items()}
info = probe(path)
began = time.perf_counter()
sampled = sum(1 for _ in sample_frames(path, fps, threads=threads))
decode = time.perf_counter() - began
tracker, frames = Tracker(TrackerConfig.for_rate(fps)), 0
began = time.perf_counter()
for frame in sample_frames(path, fps, threads=threads):
    tracker.update(frame.time, pipeline.faces(frame.image, fallback=False))
    frames += 1
elapsed = time.perf_counter() - began
tracks = tracker.finish()
def name(track):
    best = max(((float(e @ s.face.template), subject) for s in track.best(3)
                for subject, templates in known.items() for e in templates), default=(0.0, None))
    return best[1] if best[0] >= 0.953 else None  # similarity 97.67: the FMR 1e-5 threshold
print(json.dumps({"frames": frames, "elapsed": elapsed, "duration": info.duration, "decode": decode,
                  "tracks": [[name(t), round(t.start, 3), round(t.end, 3)] for t in tracks]}))
"""


def _child(path: Path, fps: float, cpus: str, threads: int, cache: Path,
           enrolled: dict[str, list[str]] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(["taskset", "-c", cpus, sys.executable, "-c", CHILD, str(path), str(fps), str(threads),
                             str(cache), json.dumps(enrolled or {})],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _answer(child: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"measurement failed ({child.returncode})")
    answer: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return answer


def measure(path: Path, fps: float, cores: int, cache: Path, enrolled: dict[str, list[str]] | None = None
            ) -> dict[str, object]:
    """One search on the first `cores` cores with as many inference threads."""
    return _answer(_child(path, fps, ",".join(str(c) for c in range(cores)), cores, cache, enrolled))


def measure_pair(path: Path, fps: float, cache: Path) -> tuple[int, float, float]:
    """Two searches at once, one per core (as two service workers run): frames, wall s, video s."""
    children = [_child(path, fps, str(core), 1, cache) for core in (0, 1)]
    answers = [_answer(c) for c in children]
    frames = sum(int(a["frames"]) for a in answers)  # type: ignore[call-overload]
    return frames, max(float(a["elapsed"]) for a in answers), sum(float(a["duration"]) for a in answers)  # type: ignore[arg-type]


def worst_error(tracks: list[list[object]]) -> float:
    """Largest start/end error of a named track against the appearance of its person."""
    worst = 0.0
    for subject, ranges in TRUTH.items():
        for start, end in ranges:
            inside = [t for t in tracks if t[0] == subject and start - 0.5 <= float(t[1]) < end]  # type: ignore[arg-type]
            if not inside:
                return float("inf")
            first, last = min(float(t[1]) for t in inside), max(float(t[2]) for t in inside)  # type: ignore[arg-type]
            worst = max(worst, abs(first - start), abs(last - end))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--cores", default="1,2")
    parser.add_argument("--fps", type=float, default=4.0, help="sampling rate measured (the default is 4)")
    args = parser.parse_args()
    cores = [int(c) for c in args.cores.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "models"
        print("| video | cores | frames analysed | wall s | of which decoding s | fps analysed | real-time factor |")
        print("|---|---|---|---|---|---|---|")
        for name, size in SIZES.items():
            path = render(work / f"{name}.mp4", bench_scene(size, args.seconds), args.seconds, size, rate=25,
                          codec="libx264")
            for n in cores:
                print(f"measuring {name} on {n} core(s)", file=sys.stderr)
                r = measure(path, args.fps, n, cache)
                frames, elapsed, duration = int(r["frames"]), float(r["elapsed"]), float(r["duration"])  # type: ignore[arg-type]
                print(f"| {name} ({size[0]}x{size[1]}, {duration:.0f} s, 25 fps) | {n} | {frames} | {elapsed:.1f} | "
                      f"{float(r['decode']):.1f} | {frames / elapsed:.1f} | {duration / elapsed:.2f}x |")  # type: ignore[arg-type]
            if 2 in cores:
                print(f"measuring {name}: two searches at once, one per core", file=sys.stderr)
                frames, elapsed, duration = measure_pair(path, args.fps, cache)
                print(f"| {name}, two videos at once | 2 (1 each) | {frames} | {elapsed:.1f} | - | "
                      f"{frames / elapsed:.1f} | {duration / elapsed:.2f}x |")
        scene = render(work / "scene.mp4", SCENE, SCENE_SECONDS, SCENE_SIZE)
        enrolled = {person: [str(lfw_photo(person, n)) for n in numbers] for person, numbers in ENROLLED.items()}
        print()
        print("| sampling rate | frames analysed | worst start/end error s | wall s (1 core) |")
        print("|---|---|---|---|")
        for rate in (1.0, 2.0, 4.0, 8.0):
            print(f"accuracy at {rate:g} fps", file=sys.stderr)
            r = measure(scene, rate, 1, cache, enrolled)
            error = worst_error(r["tracks"])  # type: ignore[arg-type]
            print(f"| {rate:g} fps | {r['frames']} | {error:.2f} | {float(r['elapsed']):.1f} |")  # type: ignore[arg-type]
        print(f"\n(measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores on the machine)")


if __name__ == "__main__":
    main()
