"""MTCNN's image pyramid packed into one canvas, so P-Net runs once per photo.

Why: P-Net is fully convolutional with a 12x12 receptive field and no padding, so its
output for a 12x12 window depends on those pixels only. Scanning every pyramid level in
a single run over a canvas holding all of them gives the same scores as one run per
level, without a runtime call, a resize from the full photo and a round of numpy per
level (7 levels for a 250x250 photo, 15 for 1920x1080). Windows that straddle two levels
or the canvas background are dropped.

Levels are packed in shelves (next fit, in decreasing size) on a canvas as wide as the
first level: the canvas is about a quarter larger than the levels' total area. Each level
is resized from the one before it, with a box filter, as classic image pyramids are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

WINDOW = 12  # P-Net's receptive field
STRIDE = 2  # its output stride


@dataclass(frozen=True, slots=True)
class Level:
    """One level: its size and scale against the photo, and its place on the canvas."""

    width: int
    height: int
    left: int
    top: int
    scale_x: float
    scale_y: float


@dataclass(frozen=True, slots=True)
class Pyramid:
    canvas: np.ndarray  # (rows, cols, 3) uint8, zero between levels
    levels: tuple[Level, ...]
    owner: np.ndarray  # (rows, cols) int16: the level under each canvas pixel, -1 for none


def level_sizes(width: int, height: int, first_scale: float, factor: float) -> list[tuple[int, int]]:
    """(width, height) of each level whose shorter side still holds one P-Net window."""
    sizes = []
    scale = first_scale
    while min(width, height) * scale >= WINDOW:
        sizes.append((max(WINDOW, round(width * scale)), max(WINDOW, round(height * scale))))
        scale *= factor
    return sizes


def build(image: Image.Image, first_scale: float, factor: float) -> Pyramid | None:
    """The packed pyramid of an RGB image, or None when no level holds a window."""
    sizes = level_sizes(image.width, image.height, first_scale, factor)
    if not sizes:
        return None
    places = _pack(sizes)
    cols = sizes[0][0]
    rows = max(top + h for (_, top), (_, h) in zip(places, sizes))
    canvas = np.zeros((rows, cols, 3), np.uint8)
    owner = np.full((rows, cols), -1, np.int16)
    levels = []
    source = image
    for index, ((w, h), (left, top)) in enumerate(zip(sizes, places)):
        filt = Image.Resampling.BOX if w <= source.width else Image.Resampling.BILINEAR
        source = source.resize((w, h), filt)
        canvas[top : top + h, left : left + w] = np.asarray(source)
        owner[top : top + h, left : left + w] = index
        levels.append(Level(w, h, left, top, w / image.width, h / image.height))
    return Pyramid(canvas, tuple(levels), owner)


def _pack(sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(left, top) of each level: shelves as wide as the first level, next fit, even offsets."""
    shelf_width = sizes[0][0]
    places = []
    x = y = shelf_height = 0
    for w, h in sizes:
        if x and x + w > shelf_width:
            x, y = 0, y + shelf_height
            shelf_height = 0
        places.append((x, y))
        x += w + (w % 2)  # even offsets keep each level's cells on its own 2-pixel grid
        shelf_height = max(shelf_height, h + (h % 2))
    return places


def windows(pyramid: Pyramid, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P-Net output cells as windows on the photo: (K, 4) float boxes, their levels, and
    the mask of the cells kept, those whose whole 12x12 window lies inside one level."""
    y, x = rows * STRIDE, cols * STRIDE
    last_y = np.minimum(y + WINDOW - 1, pyramid.owner.shape[0] - 1)
    last_x = np.minimum(x + WINDOW - 1, pyramid.owner.shape[1] - 1)
    level = pyramid.owner[y, x]
    keep = (level >= 0) & (pyramid.owner[last_y, last_x] == level) & (y + WINDOW <= pyramid.owner.shape[0])
    keep &= x + WINDOW <= pyramid.owner.shape[1]
    lv = level[keep]
    left = np.array([v.left for v in pyramid.levels], np.float32)[lv]
    top = np.array([v.top for v in pyramid.levels], np.float32)[lv]
    sx = np.array([v.scale_x for v in pyramid.levels], np.float32)[lv]
    sy = np.array([v.scale_y for v in pyramid.levels], np.float32)[lv]
    x1, y1 = (x[keep] - left) / sx, (y[keep] - top) / sy
    boxes = np.stack([x1, y1, x1 + WINDOW / sx, y1 + WINDOW / sy], axis=1).astype(np.float32)
    return boxes, lv, keep
