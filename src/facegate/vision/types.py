"""Plain, frozen data that the vision stages hand to each other and to callers.

dlib objects never leave the stage that made them; everything else in facegate sees these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    """A face rectangle in pixels of the decoded (EXIF-rotated) image, clipped to it."""

    left: int
    top: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def centre(self) -> tuple[float, float]:
        return self.left + self.width / 2, self.top + self.height / 2

    def to_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


@dataclass(frozen=True, slots=True)
class Detection:
    """What a detector found: a box and the detector's own confidence score."""

    box: Box
    confidence: float
    detector: str


class QualityFilter(StrEnum):
    """How strict enrolment and search are about face quality (as Rekognition's filter)."""

    NONE = "NONE"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(frozen=True, slots=True)
class Quality:
    """Measured quality of one face; `level` is the highest filter level it passes."""

    face_size: int  # inter-ocular-independent size: min(width, height) of the box
    sharpness: float  # variance of the Laplacian on the aligned grey chip
    brightness: float  # mean grey level of the chip, 0..255
    yaw: float  # degrees, estimated from the 5 landmarks; 0 = frontal
    roll: float  # degrees, in-plane rotation of the eye line
    level: QualityFilter

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "face_size": self.face_size,
            "sharpness": round(self.sharpness, 2),
            "brightness": round(self.brightness, 2),
            "yaw": round(self.yaw, 1),
            "roll": round(self.roll, 1),
            "level": self.level.value,
        }


@dataclass(frozen=True, slots=True)
class Face:
    """One analysed face: where it is, its landmarks, its quality and its template."""

    box: Box
    confidence: float
    landmarks: tuple[tuple[int, int], ...]  # 5 points: eye corners and nose base (dlib order)
    quality: Quality
    template: np.ndarray = field(repr=False)  # unit-length float32, the biometric template
    # A small JPEG crop of the face (vision/thumbnail.py), made only when asked for: a
    # collection that keeps thumbnails. Biometric data too: never shown in repr or to_dict.
    thumbnail: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view without the template (templates are never shown or logged)."""
        return {
            "box": self.box.to_dict(),
            "confidence": round(self.confidence, 4),
            "landmarks": [{"x": x, "y": y} for x, y in self.landmarks],
            "quality": self.quality.to_dict(),
        }
