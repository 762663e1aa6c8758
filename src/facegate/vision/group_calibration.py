"""What a score means for each demographic group: a similarity-to-FMR curve per group.

The population calibration (`calibration.py`) answers "how often do two different people
score this high", over impostor pairs drawn without regard to who they are; on LFW those
are mostly pairs of White men. A group calibration answers it per group, on *within-group*
impostor pairs (two different people of the same group, the pairs that make a group's
false matches), from a recorded demographic audit's data: dataset, label source, groups
and score space are in the file.

Each curve carries, beside the point estimate, an upper confidence bound computed by
resampling *subjects* (one person's many photos are not many independent trials), and
the lowest rate the data can support at all: with no false match among the pairs of k
subjects, the upper bound is the zero-event bound on k(k-1)/2 independent subject pairs.
Below that rate the file cannot vouch for the group, and says so (`threshold_at_fmr`
returns None) instead of extrapolating. The curves are built by
`evaluation/group_calibration_fit.py` (script: `benchmarks/fair_normalization.py`) and
shipped as `vision/calibration/<score space>.groups.json`.

facegate never infers anyone's group: these curves are used only to pick a threshold
that holds for every group, and to print the worst group's estimate beside a match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from facegate.vision.calibration import calibration_file_name


@dataclass(frozen=True, slots=True)
class GroupCurve:
    """One group's impostor-score curve on a grid of similarities (ascending)."""

    group: str  # "column=value", e.g. "race=Asian"
    n_subjects: int
    n_images: int
    n_pairs: int
    similarities: np.ndarray  # ascending
    fmr: np.ndarray  # point estimate: share of the group's impostor pairs at or above
    fmr_upper: np.ndarray  # non-increasing upper confidence bound, never below the floor
    lowest_certifiable_fmr: float
    n_mated: int = 0  # mated pairs (same person) of the group's subjects
    mated_quantiles: np.ndarray | None = None  # their scores at levels 0, 1/200, ..., 1

    def fnmr_at(self, threshold: float) -> float | None:
        """Share of the group's mated pairs scoring below `threshold` (None without them)."""
        if self.mated_quantiles is None or self.n_mated == 0:
            return None
        levels = np.linspace(0.0, 1.0, len(self.mated_quantiles))
        return float(np.interp(threshold, self.mated_quantiles, levels, left=0.0, right=1.0))

    def threshold_at_fmr(self, fmr: float) -> float | None:
        """The lowest grid similarity whose upper bound is at most `fmr`; None below the floor."""
        if fmr < self.lowest_certifiable_fmr:
            return None
        ok = np.flatnonzero(self.fmr_upper <= fmr * (1 + 1e-9))
        return float(self.similarities[ok[0]]) if len(ok) else None

    def estimated_fmr(self, score: float) -> float:
        """Upper bound at the highest grid point at or below `score` (a step, never optimistic)."""
        i = int(np.searchsorted(self.similarities, score, side="right")) - 1
        return 1.0 if i < 0 else float(self.fmr_upper[i])

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "n_subjects": self.n_subjects,
            "n_images": self.n_images,
            "n_pairs": self.n_pairs,
            "lowest_certifiable_fmr": self.lowest_certifiable_fmr,
            "similarities": [round(float(s), 4) for s in self.similarities],
            "fmr": [float(f"{f:.4g}") for f in self.fmr],
            "fmr_upper": [float(f"{f:.4g}") for f in self.fmr_upper],
            "n_mated": self.n_mated,
            "mated_quantiles": None if self.mated_quantiles is None
            else [round(float(q), 4) for q in self.mated_quantiles],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GroupCurve:
        return cls(
            group=str(data["group"]),
            n_subjects=int(data["n_subjects"]),
            n_images=int(data["n_images"]),
            n_pairs=int(data["n_pairs"]),
            similarities=np.asarray(data["similarities"], dtype=np.float64),
            fmr=np.asarray(data["fmr"], dtype=np.float64),
            fmr_upper=np.asarray(data["fmr_upper"], dtype=np.float64),
            lowest_certifiable_fmr=float(data["lowest_certifiable_fmr"]),
            n_mated=int(data.get("n_mated", 0)),
            mated_quantiles=None if data.get("mated_quantiles") is None
            else np.asarray(data["mated_quantiles"], dtype=np.float64),
        )


@dataclass(frozen=True, slots=True)
class EveryGroupThreshold:
    """The threshold that holds a rate for every group, or which group cannot be vouched for."""

    fmr: float
    threshold: float | None  # None when some group cannot support `fmr`
    limiting_group: str  # the group with the highest threshold, or the first that fails
    lowest_certifiable_fmr: float  # the lowest rate every group supports
    per_group: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True, slots=True)
class GroupCalibration:
    """The per-group curves of one score space, with where they come from."""

    score_id: str
    dataset: str
    label_source: str
    confidence: float
    groups: tuple[GroupCurve, ...]
    source: str

    @property
    def calibration_id(self) -> str:
        """How audit entries and answers name this calibration."""
        return f"{self.score_id}:groups:{self.dataset}"

    @property
    def lowest_certifiable_fmr(self) -> float:
        return max(g.lowest_certifiable_fmr for g in self.groups)

    def every_group_threshold(self, fmr: float) -> EveryGroupThreshold:
        per_group = tuple((g.group, g.threshold_at_fmr(fmr)) for g in self.groups)
        lowest = self.lowest_certifiable_fmr
        failing = [g for g, t in per_group if t is None]
        if failing:
            worst = max(self.groups, key=lambda g: g.lowest_certifiable_fmr).group
            return EveryGroupThreshold(fmr, None, worst if worst in failing else failing[0], lowest, per_group)
        group, threshold = max(per_group, key=lambda item: item[1] or 0.0)
        return EveryGroupThreshold(fmr, threshold, group, lowest, per_group)

    def worst_group(self, score: float) -> tuple[float, str]:
        """The highest group estimate of FMR at `score`, and that group."""
        estimates = [(g.estimated_fmr(score), g.group) for g in self.groups]
        return max(estimates)

    def to_dict(self) -> dict[str, object]:
        return {
            "score_id": self.score_id,
            "dataset": self.dataset,
            "label_source": self.label_source,
            "confidence": self.confidence,
            "source": self.source,
            "groups": [g.to_dict() for g in self.groups],
        }

    @classmethod
    def from_dict(cls, data: dict) -> GroupCalibration:
        return cls(
            score_id=str(data["score_id"]),
            dataset=str(data["dataset"]),
            label_source=str(data["label_source"]),
            confidence=float(data["confidence"]),
            groups=tuple(GroupCurve.from_dict(g) for g in data["groups"]),
            source=str(data["source"]),
        )


def group_calibration_file_name(score_id: str) -> str:
    return calibration_file_name(score_id).removesuffix(".json") + ".groups.json"


def load_group_calibration(score_id: str) -> GroupCalibration | None:
    """The shipped group calibration of a score space, or None when none is shipped."""
    node = resources.files("facegate.vision").joinpath("calibration", group_calibration_file_name(score_id))
    try:
        return GroupCalibration.from_dict(json.loads(node.read_text()))
    except FileNotFoundError:
        return None
