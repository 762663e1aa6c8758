"""dlib's tiled image pyramid for the MMOD detector, rebuilt in numpy.

Why: dlib's `input_rgb_image_pyramid<pyramid_down<N>>` does not feed the network one
image but one tensor in which the image and all its downscaled copies are packed side by
side, so a single pass of the fully convolutional net scans every scale. To run that net
elsewhere (see `detect_onnx`) the same tensor must be built, and the boxes found in it
mapped back to the image, exactly as dlib does (dlib/dnn/input.h, image_pyramid.h):

* level sizes: each level is floor((N-1)/N * size) of the previous one, down to 5 rows;
* layout: levels stacked top-down on the left with `padding` rows between them until the
  rest fits in a second column, which runs bottom-up along the right edge; the whole is
  framed by `outer_padding`; everything not covered by a level is zero (the mean colour);
* level 0 holds (pixel - mean) / 256; each further level is bilinearly resized (corner
  aligned) from the previous one, in float, inside the tensor;
* a point p of level k maps to the image as p * (N/(N-1)) + 0.3, applied k times.

The 2x upsampling the Python binding does before detection (`pyramid_up` with dlib's
`pyramid_down<2>`) and its inverse on boxes are here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_LEVEL_ROWS = 5  # dlib stops the pyramid before a level would have fewer rows


@dataclass(frozen=True, slots=True)
class Tile:
    """One pyramid level's place in the tiled tensor (inclusive corners, dlib style)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def rows(self) -> int:
        return self.bottom - self.top + 1

    @property
    def cols(self) -> int:
        return self.right - self.left + 1


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each level sits in a (rows, cols) tensor; empty for an empty image."""

    tiles: tuple[Tile, ...]
    rows: int
    cols: int


def level_sizes(rows: int, cols: int, n: int) -> list[tuple[int, int]]:
    """(rows, cols) of every pyramid level, the image itself first."""
    if rows * cols == 0:
        return []
    rate = (n - 1.0) / n
    sizes = [(rows, cols)]
    while True:
        rows, cols = math.floor(rate * rows), math.floor(rate * cols)
        if rows * cols == 0 or rows < MIN_LEVEL_ROWS:
            return sizes
        sizes.append((rows, cols))


def tile_layout(rows: int, cols: int, n: int, padding: int, outer_padding: int) -> Layout:
    """dlib's packing of the pyramid levels of a rows x cols image into one tensor."""
    sizes = level_sizes(rows, cols, n)
    if not sizes:
        return Layout((), 0, 0)
    first_rows, width = sizes[0]
    total_height = sum(r + padding for r, _ in sizes) - 2 * padding
    height = 0
    prev_width = 0
    for r, c in sizes:  # first column: until the rest fits beside the previous level
        if c <= width - prev_width - padding and (height - first_rows) * 2 >= total_height - first_rows:
            break
        height += r + padding
        prev_width = c
    height -= padding
    tiles: list[Tile] = []
    y = outer_padding
    i = 0
    while y < height + outer_padding and i < len(sizes):
        r, c = sizes[i]
        tiles.append(Tile(outer_padding, y, outer_padding + c - 1, y + r - 1))
        y += r + padding
        i += 1
    y -= padding
    while i < len(sizes):  # second column: right-aligned, bottom-up
        r, c = sizes[i]
        right, bottom = outer_padding + width - 1, y - 1
        tile = Tile(right - (c - 1), bottom - (r - 1), right, bottom)
        if _intersects(tile, tiles[0]):
            break
        tiles.append(tile)
        y -= r + padding
        i += 1
    return Layout(tuple(tiles), height + 2 * outer_padding, width + 2 * outer_padding)


def _intersects(a: Tile, b: Tile) -> bool:
    return max(a.left, b.left) <= min(a.right, b.right) and max(a.top, b.top) <= min(a.bottom, b.bottom)


def _lerp_axis(src: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation along one axis, corners onto corners (dlib's resize_image)."""
    n_in = src.shape[axis]
    pos = np.arange(size) * ((n_in - 1) / max(size - 1, 1))
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    shape = [1] * src.ndim
    shape[axis] = size
    frac = (pos - lo).astype(np.float32).reshape(shape)
    a = np.take(src, lo, axis=axis)
    return a + (np.take(src, hi, axis=axis) - a) * frac


def resize_planes(src: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bilinear resize of (channels, rows, cols) float32 planes, rows then columns.

    dlib interpolates both axes at once in double; doing it one axis at a time in float32
    is the same formula and differs from it by float rounding only (~1e-7 of the range).
    """
    return _lerp_axis(_lerp_axis(src, rows, 1), cols, 2)


def pyramid_tensor(image: np.ndarray, layout: Layout, mean_rgb: tuple[float, float, float]) -> np.ndarray:
    """The (1, 3, rows, cols) float32 input tensor for an RGB uint8 image."""
    out = np.zeros((1, 3, layout.rows, layout.cols), np.float32)
    if not layout.tiles:
        return out
    planes = out[0]
    t = layout.tiles[0]
    mean = np.asarray(mean_rgb, np.float32).reshape(3, 1, 1)
    level = (image.transpose(2, 0, 1).astype(np.float32) - mean) / np.float32(256)
    planes[:, t.top : t.bottom + 1, t.left : t.right + 1] = level
    for tile in layout.tiles[1:]:
        level = resize_planes(level, tile.rows, tile.cols)
        planes[:, tile.top : tile.bottom + 1, tile.left : tile.right + 1] = level
    return out


def nearest_tile(tiles: tuple[Tile, ...], x: float, y: float) -> int:
    """Index of the tile holding (x, y), or else of the tile closest to it (dlib's nearest_rect)."""
    best, best_dist = 0, math.inf
    for i, t in enumerate(tiles):
        dx = min(max(x, t.left), t.right) - x
        dy = min(max(y, t.top), t.bottom) - y
        if dx == 0 and dy == 0:
            return i
        dist = math.hypot(dx, dy)
        if dist < best_dist:
            best, best_dist = i, dist
    return best


def tensor_to_image(
    tiles: tuple[Tile, ...], n: int, box: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """A (left, top, right, bottom) box in tensor space mapped to the original image."""
    left, top, right, bottom = box
    level = nearest_tile(tiles, round_pixel((left + right) / 2), round_pixel((top + bottom) / 2))
    tile = tiles[level]
    corners = np.array([left - tile.left, top - tile.top, right - tile.left, bottom - tile.top])
    for _ in range(level):
        corners = corners * (n / (n - 1.0)) + 0.3
    return (float(corners[0]), float(corners[1]), float(corners[2]), float(corners[3]))


def round_pixel(value: float) -> int:
    """dlib's conversion of a real coordinate to a pixel (std::round: halves away from 0)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def upsample_2x(image: np.ndarray) -> np.ndarray:
    """`pyramid_up(img, pyramid_down<2>)`: (rows, cols) -> (2*rows + 1, 2*cols + 2), bilinear.

    The odd extra row and two columns come from dlib mapping the image rectangle up with
    p -> (p + (1.25, 0.75)) * 2 and rounding the corners.
    """
    rows, cols = image.shape[:2]
    if rows == 0 or cols == 0:
        return image
    planes = image.transpose(2, 0, 1).astype(np.float32)
    up = resize_planes(planes, 2 * rows + 1, 2 * cols + 2)
    return np.ascontiguousarray(up.transpose(1, 2, 0)).astype(np.uint8)  # dlib truncates too


def box_down_2x(box: tuple[float, float, float, float], times: int) -> tuple[int, int, int, int]:
    """A pixel box found on a `times`-upsampled image, mapped back (pyramid_down<2>.rect_down)."""
    left, top, right, bottom = box
    for _ in range(times):
        left, top, right, bottom = left / 2 - 1.25, top / 2 - 0.75, right / 2 - 1.25, bottom / 2 - 0.75
    return (round_pixel(left), round_pixel(top), round_pixel(right), round_pixel(bottom))
