"""Per-face quality: size, sharpness, brightness and pose, and the filter levels.

Measures are cheap and computed on the aligned chip so that they compare across photos
of any resolution. Pose comes from the 5 landmarks (dlib order: outer and inner corner of
one eye, outer and inner corner of the other, base of the nose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facegate.vision.types import Quality, QualityFilter


@dataclass(frozen=True, slots=True)
class QualityBar:
    """What a face must reach to pass one filter level."""

    min_face_size: int
    min_sharpness: float
    brightness: tuple[float, float]
    max_abs_yaw: float


# Ordered from strictest to most lenient. Set by judgment, not fitted to a data set;
# deliberately lenient at LOW, which drops only unusable faces (on LFW 0.23% of photos
# fall below it; docs/fairness.md).
BARS: dict[QualityFilter, QualityBar] = {
    QualityFilter.HIGH: QualityBar(80, 60.0, (60.0, 200.0), 25.0),
    QualityFilter.MEDIUM: QualityBar(40, 20.0, (40.0, 220.0), 40.0),
    QualityFilter.LOW: QualityBar(20, 5.0, (15.0, 245.0), 70.0),
}


def assess(chip: np.ndarray, face_size: int, landmarks: tuple[tuple[int, int], ...]) -> Quality:
    """Measure one face and grade it against the filter bars."""
    grey = chip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    inner = grey[30:120, 30:120]  # the face itself, without the padded background
    sharpness = float(_laplacian(inner).var())
    brightness = float(inner.mean())
    yaw, roll = pose(landmarks)
    level = QualityFilter.NONE
    for candidate, bar in BARS.items():
        if (
            face_size >= bar.min_face_size
            and sharpness >= bar.min_sharpness
            and bar.brightness[0] <= brightness <= bar.brightness[1]
            and abs(yaw) <= bar.max_abs_yaw
        ):
            level = candidate
            break
    return Quality(face_size, sharpness, brightness, yaw, roll, level)


def passes(quality: Quality, wanted: QualityFilter) -> bool:
    """Whether a face is good enough for the requested filter (NONE lets all pass)."""
    order = [QualityFilter.NONE, QualityFilter.LOW, QualityFilter.MEDIUM, QualityFilter.HIGH]
    return order.index(quality.level) >= order.index(wanted)


def pose(landmarks: tuple[tuple[int, int], ...]) -> tuple[float, float]:
    """(yaw, roll) in degrees from 5 landmarks; yaw is a coarse frontal-ness estimate.

    Roll is the angle of the line through the eye centres. Yaw compares the nose base's
    horizontal offset from the eye midpoint to half the eye distance: at 90 degrees the
    nose would sit on the far eye.
    """
    if len(landmarks) < 5:
        return 0.0, 0.0
    pts = np.asarray(landmarks[:5], dtype=np.float64)
    eye_a, eye_b, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    delta = eye_a - eye_b
    eye_dist = float(np.hypot(*delta)) or 1.0
    roll = math.degrees(math.atan2(delta[1], delta[0]))
    axis = delta / eye_dist
    offset = float(np.dot(nose - (eye_a + eye_b) / 2.0, axis)) / (eye_dist / 2.0)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, offset))))
    return yaw, roll


def _laplacian(grey: np.ndarray) -> np.ndarray:
    return (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]
    )
