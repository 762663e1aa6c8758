"""Face detectors: MTCNN (the fast default), dlib's HOG and dlib's MMOD CNN.

Each detector takes an RGB array and returns `Detection`s with boxes clipped to the image
and faces smaller than the configured minimum dropped. The HOG scan window is 80x80 px,
so the image is enlarged just enough for the smallest wanted face to fill it: by dlib's
2x pyramid-up steps ("hog"), or ("hog-scaled") by exactly the factor that makes a
`min_face_size` face 80 px, which also shrinks big photos when small faces are not wanted.
The MMOD CNN runs in dlib ("cnn") or, same boxes, in ONNX Runtime ("cnn-onnx", see
`detect_onnx`). "mtcnn" (see `detect_mtcnn`) runs MTCNN on ONNX Runtime and reports
boxes in dlib's convention.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.detect_mtcnn import MtcnnDetector
from facegate.vision.detect_onnx import OnnxMmodDetector
from facegate.vision.models import MMOD_FILE, model_path
from facegate.vision.types import Box, Detection

if TYPE_CHECKING:
    import dlib

HOG_WINDOW = 80  # side of dlib's frontal_face_detector scan window, in pixels
MMOD_WINDOW = 80  # the MMOD net's 80x80 window: unscaled, it finds faces from about 70 px up
DETECTORS = ("mtcnn", "hog", "hog-scaled", "cnn", "cnn-onnx")


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


def upsample_for(min_face_size: int, window: int) -> int:
    """How many 2x pyramid-up steps make a face of `min_face_size` px fill the scan window."""
    if min_face_size >= window:
        return 0
    return max(0, math.ceil(math.log2(window / max(min_face_size, 1)) - 0.25))


class HogDetector:
    """dlib's frontal HOG + linear SVM detector.

    With `smart_scale`, the image is resized once by HOG_WINDOW / min_face_size (up or
    down, Pillow bilinear) and scanned without dlib's 2x upsampling; boxes are mapped back.
    """

    def __init__(self, min_face_size: int = 40, upsample: int | None = None, smart_scale: bool = False) -> None:
        if smart_scale and min_face_size < 1:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "smart scaling needs a min_face_size of at least 1 px")
        if smart_scale and upsample is not None:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "smart scaling replaces upsample; give one or the other")
        import dlib  # noqa: PLC0415 - loaded with the model, not with facegate

        self._detector = dlib.get_frontal_face_detector()
        self.min_face_size = min_face_size
        self.name = "hog-scaled" if smart_scale else "hog"
        self.scale = HOG_WINDOW / min_face_size if smart_scale else 1.0
        self.upsample = 0 if smart_scale else (upsample_for(min_face_size, HOG_WINDOW) if upsample is None else upsample)

    def detect(self, image: np.ndarray) -> list[Detection]:
        scaled = scale_image(image, self.scale)
        if scaled.shape[0] == 0 or scaled.shape[1] == 0:
            return []
        rects, scores, _ = self._detector.run(scaled, self.upsample, 0.0)
        found = [(_scale_rect(r, 1 / self.scale), s) for r, s in zip(rects, scores)]
        return _keep(image, found, self.min_face_size, self.name)


def scale_image(image: np.ndarray, scale: float) -> np.ndarray:
    """`image` resized by `scale` (rounded to whole pixels), unchanged when scale is 1."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (round(width * scale), round(height * scale))
    if min(size) < 1:
        return np.zeros((0, 0, 3), np.uint8)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def _scale_rect(rect: dlib.rectangle, factor: float) -> dlib.rectangle:
    import dlib  # noqa: PLC0415 - already loaded by the detector

    if factor == 1.0:
        return rect
    return dlib.rectangle(
        round(rect.left() * factor),
        round(rect.top() * factor),
        round((rect.right() + 1) * factor) - 1,
        round((rect.bottom() + 1) * factor) - 1,
    )


class CnnDetector:
    """dlib's MMOD CNN detector (`mmod_human_face_detector.dat`): slow on CPU, finds more."""

    name = "cnn"

    def __init__(self, min_face_size: int = 40, upsample: int | None = None) -> None:
        import dlib  # noqa: PLC0415 - loaded with the model, not with facegate

        self._detector = dlib.cnn_face_detection_model_v1(str(model_path(MMOD_FILE)))
        self.min_face_size = min_face_size
        self.upsample = upsample_for(min_face_size, MMOD_WINDOW) if upsample is None else upsample

    def detect(self, image: np.ndarray) -> list[Detection]:
        found = self._detector(image, self.upsample)
        return _keep(image, [(d.rect, d.confidence) for d in found], self.min_face_size, self.name)


def open_detector(
    name: str, min_face_size: int = 40, upsample: int | None = None, cache_dir: Path | None = None
) -> Detector:
    """Build a detector by name; an unknown name is refused, never silently replaced.

    "cnn-onnx" and "mtcnn" keep their converted models in `cache_dir`, which they
    therefore need.
    """
    if name == "hog":
        return HogDetector(min_face_size, upsample)
    if name == "hog-scaled":
        return HogDetector(min_face_size, upsample, smart_scale=True)
    if name == "cnn":
        return CnnDetector(min_face_size, upsample)
    if name in ("cnn-onnx", "mtcnn"):
        if cache_dir is None:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"the {name} detector needs a model cache directory")
        if name == "cnn-onnx":
            up = upsample_for(min_face_size, MMOD_WINDOW) if upsample is None else upsample
            return OnnxMmodDetector(model_path(MMOD_FILE), cache_dir, min_face_size, up)
        if upsample is not None:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "the mtcnn detector scans by min_face_size, not upsample")
        return MtcnnDetector(cache_dir, min_face_size)
    raise FacegateError(ErrorCode.UNKNOWN_MODEL, f"unknown detector {name!r}; use one of {', '.join(DETECTORS)}")


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
