"""Five-point landmarks and aligned 150x150 face chips, the embedder's input.

The chip geometry is dlib's `get_face_chip` with 25% padding, the exact crop the ResNet
embedder was trained on; any other crop costs accuracy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from facegate.vision.models import LANDMARKS5_FILE, model_path
from facegate.vision.types import Box

if TYPE_CHECKING:
    import dlib

CHIP_SIZE = 150
CHIP_PADDING = 0.25


class Aligner:
    """Landmarks by dlib's 5-point shape predictor; chips by similarity transform."""

    def __init__(self) -> None:
        import dlib  # noqa: PLC0415 - loaded with the model, not with facegate

        self._predictor = dlib.shape_predictor(str(model_path(LANDMARKS5_FILE)))

    def landmarks(self, image: np.ndarray, box: Box) -> dlib.full_object_detection:
        import dlib  # noqa: PLC0415 - already loaded by __init__

        rect = dlib.rectangle(box.left, box.top, box.left + box.width - 1, box.top + box.height - 1)
        return self._predictor(image, rect)

    @staticmethod
    def points(shape: dlib.full_object_detection) -> tuple[tuple[int, int], ...]:
        return tuple((shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts))

    @staticmethod
    def chip(image: np.ndarray, shape: dlib.full_object_detection) -> np.ndarray:
        """The (150, 150, 3) uint8 aligned chip of one face."""
        import dlib  # noqa: PLC0415 - already loaded by __init__

        return np.asarray(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
