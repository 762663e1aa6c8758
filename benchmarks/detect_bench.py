"""Face detectors side by side: recall on LFW and on group photos, and speed.

    .venv/bin/python benchmarks/detect_bench.py                  # 500 LFW photos, dlib CNN on 20
    .venv/bin/python benchmarks/detect_bench.py --lfw 500 --cnn-dlib 100 --threads 1

Detectors, each as facegate opens it for min_face_size 40 unless the row says otherwise:
MTCNN on ONNX Runtime (`mtcnn`, facenet-pytorch's weights), dlib HOG with one 2x
upsampling (what face_recognition does), HOG on a smartly scaled
image (`hog-scaled`: resized once so a min_face_size face is 80 px), dlib's MMOD CNN
(slow: only on the first `--cnn-dlib` LFW photos and the group photos, unscaled) and the
same CNN on ONNX Runtime (`cnn-onnx`, with `--threads`), unscaled and with the one 2x
upsampling that min_face_size 40 needs (the net's window is 80 px).

* LFW recall: share of a fixed sample (every k-th photo of the sorted manifest) where a
  detection's centre lies in the central 125x125 px of the 250x250 photo, where
  deep-funneled LFW puts the named person. The CNN rows are also scored on the subset
  dlib's CNN ran on, so the two can be compared photo for photo.
* Small faces: the same recall with each LFW photo shrunk to 110x110 px first, which
  makes the faces about 45 px wide: what a detector set for min_face_size 40 must find.
* Group photos: faces found against the faces a person counts (t1.jpg 6, multiface.jpg 6,
  selfie-many-people.jpg 7, two of them cut by the frame).
* Speed: mean ms per LFW photo (250x250) over the sample, and min ms of `--repeats` runs
  on t1.jpg (1280x886; dlib's CNN once, it takes ~20 s). Model loading is left out.
* The "then ... if none" rows are the pipeline's fallback rule: the CNN runs only on
  photos where the first detector finds no face at all.
* Equality: for every photo dlib's CNN ran on, whether `cnn-onnx` finds the same number
  of faces, the worst IoU of twin boxes and the largest confidence gap.

Results go to stdout as a markdown table; progress to stderr. Runs on however many cores
the machine has (2 here); dlib is single-threaded, ONNX Runtime uses `--threads`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from facegate.vision.detect import Detector, HogDetector, open_detector
from facegate.vision.detect_mtcnn import MtcnnDetector
from facegate.vision.detect_onnx import OnnxMmodDetector
from facegate.vision.models import MMOD_FILE, model_path
from facegate.vision.types import Box, Detection

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LFW = DATA / "lfw"
SMALL_SIDE = 110  # LFW photos shrunk to this side have faces of about 45 px
GROUPS = {  # path under peers/ -> faces a person counts
    "insightface/python-package/t1.jpg": 6,
    "facenet-pytorch/multiface.jpg": 6,
    "deepface/selfie-many-people.jpg": 7,
}
BIG = "insightface/python-package/t1.jpg"
log = logging.getLogger("detect_bench")


class WithFallback:
    """The pipeline's rule: the second detector runs only when the first finds nothing."""

    def __init__(self, first: Detector, second: Detector) -> None:
        self.first, self.second = first, second
        self.name = f"{first.name}+{second.name}"

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.first.detect(image) or self.second.detect(image)


@dataclass
class Row:
    label: str
    detector: Detector
    on_subset_only: bool = False
    hits: list[bool] = field(default_factory=list)
    small_hits: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)
    big_ms: float = float("nan")


def lfw_sample(count: int) -> list[Path]:
    with (LFW / "manifest.csv").open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    return [LFW / p for p in paths[:: max(1, len(paths) // count)][:count]]


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def centre_hit(boxes: list[Box], size: tuple[int, int]) -> bool:
    """Whether a box's centre lies in the central half (each side) of the photo."""
    h, w = size
    for b in boxes:
        cx, cy = b.left + b.width / 2, b.top + b.height / 2
        if w / 4 <= cx <= 3 * w / 4 and h / 4 <= cy <= 3 * h / 4:
            return True
    return False


def timed(detector: Detector, image: np.ndarray) -> tuple[list[Box], float]:
    start = time.perf_counter()
    found = detector.detect(image)
    return [d.box for d in found], time.perf_counter() - start


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def compare(onnx: OnnxMmodDetector, reference: dlib.cnn_face_detection_model_v1, image: np.ndarray) -> tuple[bool, float, float]:
    """(same count, worst twin IoU, largest confidence gap) of cnn-onnx against dlib."""
    got = onnx.find(image)
    expected = [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence) for d in reference(image, onnx.upsample)]
    worst, gap = 1.0, 0.0
    for box, conf in expected:
        twin = max(got, key=lambda g: iou(g[0], box), default=None)
        if twin is None:
            return False, 0.0, float("inf")
        worst, gap = min(worst, iou(twin[0], box)), max(gap, abs(twin[1] - conf))
    return len(got) == len(expected), worst, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos for recall and 250x250 speed")
    parser.add_argument("--cnn-dlib", type=int, default=20, help="LFW photos dlib's slow CNN runs on")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--repeats", type=int, default=3, help="runs on the 1280 px photo (min is kept)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cache = Path(tempfile.mkdtemp(prefix="facegate-bench-"))
    dat = model_path(MMOD_FILE)
    rows = [
        Row("dlib HOG, upsample 1 (face_recognition)", open_detector("hog", 40)),
        Row("HOG smart-scaled, min face 40 (2.0x)", HogDetector(40, smart_scale=True)),
        Row("HOG smart-scaled, min face 60 (1.33x)", HogDetector(60, smart_scale=True)),
        Row("HOG smart-scaled, min face 80 (1.0x)", HogDetector(80, smart_scale=True)),
        Row("dlib CNN (MMOD), upsample 0", open_detector("cnn", 40, upsample=0), on_subset_only=True),
    ]
    onnx_rows = [
        Row(f"CNN on ONNX Runtime, upsample {up}", OnnxMmodDetector(dat, cache, 40, up, threads=args.threads))
        for up in (0, 1)
    ]
    rows += onnx_rows
    rows.append(Row("dlib HOG, upsample 1, then CNN on ONNX (upsample 1) if none", WithFallback(rows[0].detector, onnx_rows[1].detector)))
    mtcnn = MtcnnDetector(cache, 40, threads=args.threads)
    rows.append(Row("MTCNN on ONNX Runtime, min face 40", mtcnn))
    rows.append(Row("MTCNN, then CNN on ONNX (upsample 1) if none", WithFallback(mtcnn, onnx_rows[1].detector)))
    reference = dlib.cnn_face_detection_model_v1(str(dat))

    sample = lfw_sample(args.lfw)
    subset = min(args.cnn_dlib, len(sample))
    equal: list[tuple[bool, float, float]] = []
    for i, path in enumerate(sample):
        image = load(path)
        small = np.asarray(Image.fromarray(image).resize((SMALL_SIDE, SMALL_SIDE), Image.Resampling.BILINEAR))
        for row in rows:
            if row.on_subset_only and i >= subset:
                continue
            boxes, seconds = timed(row.detector, image)
            row.hits.append(centre_hit(boxes, image.shape[:2]))
            row.seconds.append(seconds)
            row.small_hits.append(centre_hit(timed(row.detector, small)[0], small.shape[:2]))
        if i < subset:
            equal.append(compare(onnx_rows[0].detector, reference, image))  # type: ignore[arg-type]
        if (i + 1) % 50 == 0:
            log.info("LFW %d/%d", i + 1, len(sample))

    for name in GROUPS:
        image = load(DATA / "peers" / name)
        for row in rows:
            repeats = 1 if row.on_subset_only or name != BIG else args.repeats
            times = []
            for _ in range(repeats):
                boxes, seconds = timed(row.detector, image)
                times.append(seconds)
            row.groups[name] = len(boxes)
            if name == BIG:
                row.big_ms = 1000 * min(times)
        equal.append(compare(onnx_rows[0].detector, reference, image))  # type: ignore[arg-type]
        log.info("group photo %s done", name)

    print(f"LFW sample: {len(sample)} photos (dlib CNN on the first {subset}); cores: {os.cpu_count()}\n")
    group_cols = " | ".join(f"{Path(n).name} ({t})" for n, t in GROUPS.items())
    print(
        f"| detector | LFW recall (n={len(sample)}) | LFW recall, first {subset} | faces ~45 px (n={len(sample)}) "
        f"| {group_cols} | ms 250x250 | ms 1280x886 |"
    )
    print("|---|---|---|---|" + "---|" * len(GROUPS) + "---|---|")
    for row in rows:
        full = f"{np.mean(row.hits):.1%}" if not row.on_subset_only else "—"
        sub = f"{np.mean(row.hits[:subset]):.1%}"
        small = f"{np.mean(row.small_hits):.1%}" + (f" (first {subset})" if row.on_subset_only else "")
        groups = " | ".join(str(row.groups[n]) for n in GROUPS)
        print(
            f"| {row.label} | {full} | {sub} | {small} | {groups} | {1000 * np.mean(row.seconds):.0f} | {row.big_ms:.0f} |"
        )
    same = sum(e[0] for e in equal)
    print(
        f"\ncnn-onnx vs dlib CNN on {len(equal)} photos ({subset} LFW + {len(GROUPS)} group, upsample 0): "
        f"same number of faces on {same}/{len(equal)}, worst IoU {min(e[1] for e in equal):.4f}, "
        f"largest confidence gap {max(e[2] for e in equal):.2e}"
    )


if __name__ == "__main__":
    main()
