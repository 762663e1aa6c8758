"""What a score means: similarity on a 0-100 scale and its estimated false-match rate.

A calibration table is measured once per template space (model + recipe) on impostor
pairs by `benchmarks/calibrate.py` and shipped in `vision/calibration/<template_id>.json`.
`estimated_fmr(s)` is the share of impostor pairs that scored at least `s`; beyond the
last measured impostor the table can only give an upper bound (1 / number of impostor
pairs), and says so through `fmr_floor`.

Similarity is the cosine of the two unit templates mapped linearly onto 0..100
(`50 * (1 + cos)`): monotone, symmetric, and 100 only for identical templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from facegate.errors import ErrorCode, FacegateError


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise similarity (0..100) of unit templates; shapes (n, d) and (n, d) or (d,)."""
    cos = np.sum(np.atleast_2d(a) * np.atleast_2d(b), axis=1)
    return np.clip(50.0 * (1.0 + cos), 0.0, 100.0)


def similarity_matrix(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """All-pairs similarity (0..100): (q, d) x (g, d) -> (q, g)."""
    if len(queries) == 0 or len(gallery) == 0:
        return np.zeros((len(queries), len(gallery)), dtype=np.float32)
    return np.clip(50.0 * (1.0 + queries @ gallery.T), 0.0, 100.0)


def similarity_from_cosine(cos: np.ndarray | float) -> np.ndarray | float:
    return np.clip(50.0 * (1.0 + np.asarray(cos)), 0.0, 100.0)


@dataclass(frozen=True, slots=True)
class Calibration:
    """Impostor score distribution of one template space, as (similarity, FMR) points."""

    template_id: str
    similarities: np.ndarray  # ascending
    fmr: np.ndarray  # non-increasing, fmr[i] = P(impostor similarity >= similarities[i])
    n_impostor_pairs: int
    default_fmr: float
    source: str

    @property
    def fmr_floor(self) -> float:
        """The smallest FMR the table can vouch for: one impostor pair in all measured."""
        return 1.0 / self.n_impostor_pairs

    @property
    def default_threshold(self) -> float:
        return self.threshold_at_fmr(self.default_fmr)

    def estimated_fmr(self, score: float) -> float:
        """Interpolated in log space between table points; never below the floor."""
        log_fmr = np.log10(np.maximum(self.fmr, self.fmr_floor))
        value = float(10 ** np.interp(score, self.similarities, log_fmr))
        return max(self.fmr_floor, min(1.0, value))

    def threshold_at_fmr(self, fmr: float) -> float:
        """The lowest similarity whose estimated FMR is at most `fmr`."""
        if not 0.0 < fmr <= 1.0:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"FMR must be in (0, 1], got {fmr}")
        target = max(fmr, self.fmr_floor)
        log_fmr = np.log10(np.maximum(self.fmr, self.fmr_floor))
        # log_fmr is non-increasing in similarity: interpolate on the reversed arrays
        return float(np.interp(np.log10(target), log_fmr[::-1], self.similarities[::-1]))

    def to_dict(self) -> dict[str, object]:
        return {
            "template_id": self.template_id,
            "similarities": [round(float(s), 4) for s in self.similarities],
            "fmr": [float(f) for f in self.fmr],
            "n_impostor_pairs": self.n_impostor_pairs,
            "default_fmr": self.default_fmr,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(
            template_id=str(data["template_id"]),
            similarities=np.asarray(data["similarities"], dtype=np.float64),
            fmr=np.asarray(data["fmr"], dtype=np.float64),
            n_impostor_pairs=int(data["n_impostor_pairs"]),
            default_fmr=float(data["default_fmr"]),
            source=str(data["source"]),
        )


def calibration_file_name(template_id: str) -> str:
    return template_id.replace("+", "_") + ".json"


def load_calibration(template_id: str) -> Calibration:
    """The shipped table for a template space; none shipped is `UNKNOWN_MODEL`."""
    node = resources.files("facegate.vision").joinpath("calibration", calibration_file_name(template_id))
    try:
        return Calibration.from_dict(json.loads(node.read_text()))
    except FileNotFoundError:
        raise FacegateError(
            ErrorCode.UNKNOWN_MODEL, f"no calibration shipped for template space {template_id!r}"
        ) from None
