"""Start-up and the one-core end-to-end CLI run, facegate against face_recognition.

    .venv/bin/python benchmarks/startup_e2e.py [--repeats 3] [--photos 235]

What it measures, each as a process a user starts (wall seconds, and the CPU seconds of
the process and its children, which other people's jobs on a shared machine disturb far
less than wall time):

- `import facegate.cli` (what every `facegate` call pays before doing anything);
- `facegate detect PHOTO`, `facegate search COLLECTION PHOTO` and `facegate serve` (until
  /readyz answers 200): cold = the first call on a fresh data directory whose models are
  already converted (nothing else cached: catalog, indexes and evaluation cache are new),
  warm = the same call again;
- the issue-13 figure: `taskset -c 0 facegate evaluate pairs` over PHOTOS LFW photos (the
  first pairs of pairs.txt, fold 1, until they name that many photos), models converted
  and nothing else cached, against face_recognition 1.3.0 doing the same photos with its
  defaults (`load_image_file`, `face_locations` HOG upsample 1, `face_encodings` small
  model), as speed_e2e.py runs it, in a process pinned to the same core, start-up included
  for both. The two alternate, `--repeats` times each; the least wall time counts.

Needs face_recognition (`.venv/bin/pip install --no-deps -r benchmarks/requirements.txt`)
and `taskset` (util-linux).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"
PEERS = REPO.parent / "shared" / "data" / "peers"
FACEGATE = Path(sys.executable).parent / "facegate"
PHOTO = PEERS / "face_recognition" / "tests" / "test_images" / "obama.jpg"
PROBE = PEERS / "face_recognition" / "tests" / "test_images" / "obama2.jpg"

FACE_RECOGNITION = """
import sys
from pathlib import Path
import face_recognition
for line in Path(sys.argv[1]).read_text().splitlines():
    image = face_recognition.load_image_file(line)
    face_recognition.face_encodings(image, face_recognition.face_locations(image))
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one process run to completion; it must succeed."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, children_cpu() - cpu


def fresh_home(models: Path) -> Path:
    """A new data directory with the converted models linked in, nothing else."""
    home = Path(tempfile.mkdtemp(prefix="fg-startup-"))
    (home / "models").symlink_to(models, target_is_directory=True)
    return home


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    return {**env, "FACEGATE_HOME": str(home)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_until_ready(env: dict[str, str]) -> tuple[float, float]:
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen([str(FACEGATE), "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=60).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
            if process.poll() is not None:
                raise SystemExit("facegate serve exited before it was ready")
        wall = time.perf_counter() - start
    finally:
        process.terminate()
        process.wait(timeout=30)
    return wall, float("nan")  # the server's CPU is not ours to read while it runs


def _photos(line: str) -> list[Path]:
    parts = line.split()
    named = [(parts[0], parts[1]), (parts[0], parts[2])] if len(parts) == 3 else [(parts[0], parts[1]), (parts[2], parts[3])]
    return [LFW / n / f"{n}_{int(i):04d}.jpg" for n, i in named]


def pairs_subset(photos: int, out: Path) -> list[Path]:
    """As many matched as mismatched pairs of pairs.txt's fold 1, the fewest that name at
    least `photos` images; written as a two-fold pairs file. The images, sorted."""
    lines = (LFW / "pairs.txt").read_text().splitlines()[1:]
    per_fold = len([x for x in lines[:600] if len(x.split()) == 3])
    same, other = lines[:per_fold], lines[per_fold : 2 * per_fold]
    for k in range(1, per_fold + 1):
        used = {p for line in same[:k] + other[:k] for p in _photos(line)}
        if len(used) >= photos:
            break
    k += k % 2  # two folds (k-fold needs them), each half matched, half mismatched
    half = k // 2
    folds = same[:half] + other[:half] + same[half:k] + other[half:k]
    used = {p for line in folds for p in _photos(line)}
    out.write_text(f"2\t{half}\n" + "\n".join(folds) + "\n")
    return sorted(used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", type=int, default=235)
    parser.add_argument("--models", type=Path, default=None, help="converted models (default: make them once)")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed")

    models = args.models or Path(tempfile.mkdtemp(prefix="fg-models-"))
    warmup = fresh_home(models)
    timed([str(FACEGATE), "detect", str(PHOTO)], env_for(warmup))  # converts the models once
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {sys.version.split()[0]}\n")

    rows = []
    imports = [timed([sys.executable, "-c", "import facegate.cli"], env_for(warmup)) for _ in range(args.repeats)]
    rows.append(("`import facegate.cli`", "-", min(imports)))
    for name, make in (
        ("`facegate detect PHOTO`", lambda: [str(FACEGATE), "detect", str(PHOTO)]),
        ("`facegate search people PHOTO`", lambda: [str(FACEGATE), "search", "people", str(PROBE)]),
    ):
        cold, warm = [], []
        for _ in range(args.repeats):
            home = fresh_home(models)
            if "search" in name:
                timed([str(FACEGATE), "collection", "create", "people"], env_for(home))
                timed([str(FACEGATE), "index", "people", str(PHOTO), "--subject", "obama"], env_for(home))
            cold.append(timed(make(), env_for(home)))
            warm.append(timed(make(), env_for(home)))
        rows.append((name, min(cold), min(warm)))
    cold_s, warm_s = [], []
    for _ in range(args.repeats):
        home = fresh_home(models)
        cold_s.append(serve_until_ready(env_for(home)))
        warm_s.append(serve_until_ready(env_for(home)))
    rows.append(("`facegate serve` until /readyz is 200", min(cold_s), min(warm_s)))

    print("| command | cold: wall s (CPU s) | warm: wall s (CPU s) |\n|---|---|---|")
    for name, cold, warm in rows:
        fmt = lambda t: t if isinstance(t, str) else (f"{t[0]:.2f}" + (f" ({t[1]:.2f})" if t[1] == t[1] else ""))  # noqa: E731
        print(f"| {name} | {fmt(cold)} | {fmt(warm)} |")

    work = Path(tempfile.mkdtemp(prefix="fg-e2e-"))
    photos = pairs_subset(args.photos, work / "pairs.txt")
    (work / "photos.txt").write_text("\n".join(map(str, photos)) + "\n")
    ours, theirs = [], []
    for _ in range(args.repeats):
        home = fresh_home(models)  # models converted, nothing else cached
        ours.append(timed(["taskset", "-c", "0", str(FACEGATE), "evaluate", "pairs", "--pairs", str(work / "pairs.txt"),
                           "--images", str(LFW), "--json"], env_for(home)))
        theirs.append(timed(["taskset", "-c", "0", sys.executable, "-c", FACE_RECOGNITION, str(work / "photos.txt")],
                            env_for(home)))
    best_ours, best_theirs = min(ours), min(theirs)
    print(f"\nOne core, {len(photos)} LFW photos, start-up included, least of {args.repeats}:\n")
    print("| run | wall s | CPU s |\n|---|---|---|")
    print(f"| `taskset -c 0 facegate evaluate pairs` | {best_ours[0]:.2f} | {best_ours[1]:.2f} |")
    print(f"| face_recognition 1.3.0, same photos, same core | {best_theirs[0]:.2f} | {best_theirs[1]:.2f} |")
    print(f"| speed-up | **{best_theirs[0] / best_ours[0]:.2f}x** | {best_theirs[1] / best_ours[1]:.2f}x |")
    print(f"\nall runs (wall, CPU): facegate {[(round(w, 2), round(c, 2)) for w, c in ours]}, "
          f"face_recognition {[(round(w, 2), round(c, 2)) for w, c in theirs]}")


if __name__ == "__main__":
    main()
