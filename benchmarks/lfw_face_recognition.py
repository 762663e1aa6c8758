"""The LFW protocol run with the `face_recognition` package, for a side-by-side figure.

    .venv/bin/pip install --no-deps face_recognition      # benchmark environment only
    .venv/bin/python benchmarks/lfw_face_recognition.py --lfw ../shared/data/lfw

face_recognition's own recipe: HOG detector with one upsample, its default landmarks,
`face_encodings` of the first face found, and a centre crop where none is found; scores
are negative Euclidean distances, its tolerance 0.6 is the default threshold. The metrics
are facegate's own (`facegate.evaluation.verification`), so both runs are scored alike.
"""

from __future__ import annotations

import argparse
import json
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from facegate.evaluation.lfw_pairs import read_pairs
from facegate.evaluation.verification import accuracy_at, kfold_accuracy, roc, tar_at_fmr


def encode(path: Path) -> tuple[np.ndarray, bool]:
    import face_recognition

    image = face_recognition.load_image_file(path)
    boxes = face_recognition.face_locations(image)
    found = bool(boxes)
    if not found:
        h, w = image.shape[:2]
        boxes = [(h // 4, 3 * w // 4, 3 * h // 4, w // 4)]
    return face_recognition.face_encodings(image, boxes)[0], found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    pairs = read_pairs(args.lfw / "pairs.txt")
    names = pairs.images
    with Pool(args.workers) as pool:
        encoded = pool.map(encode, [args.lfw / n for n in names], chunksize=16)
    vectors = {n: e for n, (e, _) in zip(names, encoded)}
    a = np.stack([vectors[n] for n in pairs.left])
    b = np.stack([vectors[n] for n in pairs.right])
    scores = -np.linalg.norm(a - b, axis=1)
    curve = roc(scores, pairs.same)
    kfold = kfold_accuracy(scores, pairs.same, pairs.folds)
    print(json.dumps({
        "n_pairs": len(scores),
        "n_images": len(names),
        "n_no_face": sum(not found for _, found in encoded),
        "accuracy_at_tolerance_0.6": accuracy_at(scores, pairs.same, -0.6),
        "kfold_accuracy_mean": kfold.mean,
        "kfold_accuracy_std": kfold.std,
        "roc_auc": curve.auc,
        "tar_at_fmr_1e-3": tar_at_fmr(curve, 1e-3),
    }, indent=2))


if __name__ == "__main__":
    main()
