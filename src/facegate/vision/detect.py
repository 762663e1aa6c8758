"""Face detectors: dlib's HOG (fast, frontal) and MMOD CNN (slower, more poses).

Each detector takes an RGB array and returns `Detection`s with boxes clipped to the image
and faces smaller than the configured minimum dropped. The HOG scan window is 80x80 px,
so the image is upsampled just enough for the smallest wanted face to fill it.
"""

from __future__ import annotations

import math
from typing import Protocol

import dlib
import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.models import MMOD_FILE, model_path
from facegate.vision.types import Box, Detection

HOG_WINDOW = 80  # side of dlib's frontal_face_detector scan window, in pixels


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


def upsample_for(min_face_size: int, window: int) -> int:
    """How many 2x pyramid-up steps make a face of `min_face_size` px fill the scan window."""
    if min_face_size >= window:
        return 0
    return max(0, math.ceil(math.log2(window / max(min_face_size, 1)) - 0.25))


class HogDetector:
    """dlib's frontal HOG + linear SVM detector."""

    name = "hog"

    def __init__(self, min_face_size: int = 40, upsample: int | None = None) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self.min_face_size = min_face_size
        self.upsample = upsample_for(min_face_size, HOG_WINDOW) if upsample is None else upsample

    def detect(self, image: np.ndarray) -> list[Detection]:
        rects, scores, _ = self._detector.run(image, self.upsample, 0.0)
        return _keep(image, [(r, s) for r, s in zip(rects, scores)], self.min_face_size, self.name)


class CnnDetector:
    """dlib's MMOD CNN detector (`mmod_human_face_detector.dat`): slow on CPU, finds more."""

    name = "cnn"

    def __init__(self, min_face_size: int = 40, upsample: int | None = None) -> None:
        self._detector = dlib.cnn_face_detection_model_v1(str(model_path(MMOD_FILE)))
        self.min_face_size = min_face_size
        # The MMOD net finds faces of about 40-50 px at scale 1.
        self.upsample = upsample_for(min_face_size, 40) if upsample is None else upsample

    def detect(self, image: np.ndarray) -> list[Detection]:
        found = self._detector(image, self.upsample)
        return _keep(image, [(d.rect, d.confidence) for d in found], self.min_face_size, self.name)


def open_detector(name: str, min_face_size: int = 40, upsample: int | None = None) -> Detector:
    """Build a detector by name; an unknown name is refused, never silently replaced."""
    if name == "hog":
        return HogDetector(min_face_size, upsample)
    if name == "cnn":
        return CnnDetector(min_face_size, upsample)
    raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"unknown detector {name!r}; use hog or cnn")


def clip_box(rect: dlib.rectangle, width: int, height: int) -> Box | None:
    """dlib's rectangle (inclusive corners, may leave the image) as a clipped `Box`."""
    left, top = max(0, rect.left()), max(0, rect.top())
    right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
    if right - left < 2 or bottom - top < 2:
        return None
    return Box(left, top, right - left, bottom - top)


def _keep(
    image: np.ndarray, found: list[tuple[dlib.rectangle, float]], min_size: int, name: str
) -> list[Detection]:
    height, width = image.shape[:2]
    out: list[Detection] = []
    for rect, score in found:
        box = clip_box(rect, width, height)
        if box is not None and max(rect.width(), rect.height()) >= min_size:
            out.append(Detection(box=box, confidence=float(score), detector=name))
    return sorted(out, key=lambda d: -d.box.area)
