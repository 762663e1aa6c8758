"""Detection failures by demographic group: where bias bites before any match is made.

A face that is not found, or found but dropped by the quality filter, can be neither
enrolled nor searched: its person is simply absent from everything downstream. This
measures, per group and intersection of the images' own labels, the share of readable
images that fail so. Unreadable files are counted apart: they say nothing about faces.

fairlearn's `MetricFrame` computes the per-group rates and counts (rows are images,
sensitive features the label columns). Its own bootstrap is not used: images of one
person are not independent, so when every image names its subject the interval resamples
subjects (as the verification audit does); without identities (UTKFace) it is a Wilson
score interval, which treats images as independent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, selection_rate
from scipy import stats

from facegate.errors import ErrorCode, FacegateError
from facegate.evaluation.demographics import (
    LOW_QUALITY,
    NO_FACE,
    UNREADABLE,
    AuditInput,
    AuditSettings,
    Group,
    bootstrap_interval,
    level_name,
    levels,
    subject_weights,
)


@dataclass(frozen=True, slots=True)
class DetectionRate:
    group: Group
    n_images: int
    no_face: int
    low_quality: int
    failure_rate: float
    failure_rate_ci: tuple[float, float]
    ci_method: str  # "subject bootstrap" or "Wilson"
    small: bool  # fewer than `min_images` images


@dataclass(frozen=True, slots=True)
class Detection:
    overall: DetectionRate
    groups: tuple[DetectionRate, ...]  # every level, marginals first, the intersection last
    unreadable: int
    unlabelled_images: Mapping[str, int]  # per level name, readable images left out




def detect_failures(data: AuditInput, columns: Sequence[str], settings: AuditSettings) -> Detection:
    """Share of readable images per group with no face found or the face dropped by quality."""
    readable = data.failure != UNREADABLE
    if not readable.any():
        raise FacegateError(ErrorCode.INVALID_MANIFEST, "no readable image in the manifest")
    failed = (data.failure == NO_FACE) | (data.failure == LOW_QUALITY)
    out: list[DetectionRate] = []
    unlabelled: dict[str, int] = {}
    for level in [(), *levels(columns)]:
        rows = readable.copy()
        for c in level:
            rows &= data.labels[c] != ""
        unlabelled[level_name(level)] = int(readable.sum() - rows.sum())
        if not rows.any():
            continue
        columns_of_level = {c: data.labels[c][rows] for c in level}
        features = pd.DataFrame(columns_of_level or {"everyone": np.full(int(rows.sum()), "all")})
        frame = MetricFrame(  # a failure is a "selected" image: selection_rate is the failure rate
            metrics={"n_images": count, "failure_rate": selection_rate},
            y_true=failed[rows], y_pred=failed[rows], sensitive_features=features,
        )
        present = frame.by_group[frame.by_group["n_images"] > 0]  # it lists every combination
        for key, row in present.iterrows():
            group = tuple(zip(level, key if isinstance(key, tuple) else (key,)))
            in_group = rows.copy()
            for c, value in group:
                in_group &= data.labels[c] == value
            ci, method = _interval(data.subjects[in_group], failed[in_group], settings)
            n = int(row["n_images"])
            no_face = int((data.failure[in_group] == NO_FACE).sum())
            out.append(DetectionRate(group, n, no_face, int(failed[in_group].sum()) - no_face,
                                     float(row["failure_rate"]), ci, method, n < settings.min_images))
    return Detection(out[0], tuple(out[1:]), int((~readable).sum()), unlabelled)


def wilson(errors: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (sound at 0 and small n)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    p = errors / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _interval(subjects: np.ndarray, failed: np.ndarray, settings: AuditSettings) -> tuple[tuple[float, float], str]:
    """Subject bootstrap when every image names its subject, else Wilson."""
    n, errors = len(failed), int(failed.sum())
    if not (subjects != "").all():
        return wilson(errors, n, settings.confidence), "Wilson"
    names, of = np.unique(subjects, return_inverse=True)
    weights = subject_weights(len(names), settings.n_boot, np.random.default_rng(settings.seed))
    num = weights @ np.bincount(of, weights=failed, minlength=len(names))
    den = weights @ np.bincount(of, minlength=len(names))
    return bootstrap_interval(num, den, errors, n, settings.confidence), "subject bootstrap"
