"""The LFW verification protocol over any pairs file in `pairs.txt` format.

pairs.txt starts with a header (`<folds> <pairs per class>` or just a count), then lines
`name n1 n2` (same person) or `name1 n1 name2 n2` (different people); images are
`<dir>/<name>/<name>_<nnnn>.jpg`. Folds are consecutive blocks of 2 x <pairs per class>
lines. Each image contributes the template of its central face (the face nearest the
photo's centre: LFW photos are centred on the named person).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.evaluation.verification import accuracy_at, kfold_accuracy, roc, tar_at_fmr


@dataclass(frozen=True, slots=True)
class PairsFile:
    """Parsed pairs: image paths (relative to the images dir), labels and fold numbers."""

    left: tuple[str, ...]
    right: tuple[str, ...]
    same: np.ndarray
    folds: np.ndarray

    @property
    def images(self) -> list[str]:
        return sorted(set(self.left) | set(self.right))


def image_name(person: str, number: str) -> str:
    return f"{person}/{person}_{int(number):04d}.jpg"


def read_pairs(path: Path) -> PairsFile:
    """Parse a pairs.txt; a malformed line is `INVALID_MANIFEST` with its line number."""
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such pairs file: {path}") from None
    if not lines:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"{path} is empty")
    header, body = lines[0], lines[1:]
    try:
        per_fold = 2 * int(header[1]) if len(header) == 2 else len(body)
        left, right, same = [], [], []
        for number, fields in enumerate(body, start=2):
            if len(fields) == 3:
                left.append(image_name(fields[0], fields[1]))
                right.append(image_name(fields[0], fields[2]))
                same.append(True)
            elif len(fields) == 4:
                left.append(image_name(fields[0], fields[1]))
                right.append(image_name(fields[2], fields[3]))
                same.append(False)
            else:
                raise ValueError(f"line {number}: expected 3 or 4 fields, got {len(fields)}")
    except (ValueError, IndexError) as exc:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"{path}: {exc}") from None
    folds = np.arange(len(same)) // max(per_fold, 1)
    if len(set(folds.tolist())) < 2:  # k-fold accuracy picks each fold's threshold on the others
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"{path}: k-fold evaluation needs at least two folds")
    return PairsFile(tuple(left), tuple(right), np.array(same, dtype=bool), folds)


def pair_scores(
    pairs: PairsFile, templates: dict[str, np.ndarray], score: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Score every pair; a pair with an image that has no template scores -inf (no match)."""
    dim = len(next(iter(templates.values()))) if templates else 1
    missing = np.full(dim, np.nan, dtype=np.float32)
    a = np.stack([templates.get(name, missing) for name in pairs.left]) if pairs.left else np.zeros((0, dim))
    b = np.stack([templates.get(name, missing) for name in pairs.right]) if pairs.right else np.zeros((0, dim))
    scores = score(a, b)
    return np.where(np.isnan(scores), -np.inf, scores)


@dataclass(frozen=True, slots=True)
class PairsReport:
    """The LFW protocol's figures; keys of `to_dict` are a contract of `evaluate pairs`."""

    n_pairs: int
    n_folds: int
    n_images: int
    n_no_face: int
    no_face_handling: str
    default_threshold: float
    default_fmr: float
    accuracy_at_default_threshold: float
    kfold_accuracy_mean: float
    kfold_accuracy_std: float
    kfold_thresholds: tuple[float, ...]
    roc_auc: float
    tar_at_fmr_1e_3: float
    template_id: str

    def to_dict(self) -> dict[str, object]:
        return {
            "n_pairs": self.n_pairs,
            "n_folds": self.n_folds,
            "n_images": self.n_images,
            "n_no_face": self.n_no_face,
            "no_face_handling": self.no_face_handling,
            "default_threshold": round(self.default_threshold, 4),
            "default_fmr": self.default_fmr,
            "accuracy_at_default_threshold": self.accuracy_at_default_threshold,
            "kfold_accuracy_mean": self.kfold_accuracy_mean,
            "kfold_accuracy_std": self.kfold_accuracy_std,
            "kfold_thresholds": [round(t, 4) for t in self.kfold_thresholds],
            "roc_auc": self.roc_auc,
            "tar_at_fmr_1e-3": self.tar_at_fmr_1e_3,
            "template_id": self.template_id,
        }


NO_FACE_HANDLING = {
    "centre": "no face found: template taken from the central half of the image "
    "(LFW-style photos are centred on the named person), as face_recognition's run does",
    "reject": "no face found: every pair with that image is scored as a non-match",
}


def report(
    pairs: PairsFile,
    scores: np.ndarray,
    n_images: int,
    n_no_face: int,
    no_face: str,
    default_threshold: float,
    default_fmr: float,
    template_id: str,
) -> PairsReport:
    """Compute the protocol's figures from pair scores (similarity, 0..100)."""
    finite = np.where(np.isfinite(scores), scores, -1.0)
    curve = roc(finite, pairs.same)
    kfold = kfold_accuracy(finite, pairs.same, pairs.folds)
    return PairsReport(
        n_pairs=len(scores),
        n_folds=len(np.unique(pairs.folds)),
        n_images=n_images,
        n_no_face=n_no_face,
        no_face_handling=NO_FACE_HANDLING[no_face],
        default_threshold=default_threshold,
        default_fmr=default_fmr,
        accuracy_at_default_threshold=accuracy_at(finite, pairs.same, default_threshold),
        kfold_accuracy_mean=kfold.mean,
        kfold_accuracy_std=kfold.std,
        kfold_thresholds=kfold.thresholds,
        roc_auc=curve.auc,
        tar_at_fmr_1e_3=tar_at_fmr(curve, 1e-3),
        template_id=template_id,
    )
