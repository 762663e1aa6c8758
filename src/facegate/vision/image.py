"""Decode untrusted image bytes into an RGB array, or refuse with a stable code.

Pillow is told to refuse truncated files and decompression bombs: a partial image would
give a wrong template without anyone noticing (face_recognition turns on
LOAD_TRUNCATED_IMAGES process-wide; we never do).
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facegate.errors import ErrorCode, FacegateError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO")


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Upper bounds on what we agree to decode. Defaults allow a 40-megapixel photo.

    `work_pixels`: `decode_reduced` hands photos larger than this over at this size (the
    detector works on 2 megapixels at most; 12 keeps every face it can find over 96 pixels
    wide for alignment), so a 40-megapixel photo costs a fraction of its full size in memory.
    """

    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 40_000_000
    work_pixels: int = 12_000_000


def read_image_file(path: Path, limits: ImageLimits = ImageLimits()) -> bytes:
    """The file's bytes; a missing file is `FILE_NOT_FOUND`, not an I/O crash."""
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise _too_large(f"{size} bytes is over the limit of {limits.max_bytes}")
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such file: {path}") from None
    except IsADirectoryError:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"is a directory, not a file: {path}") from None


def load_image(path: Path, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Read and decode a file into an RGB array."""
    return decode_image(read_image_file(path, limits), limits)


def decode_image(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode bytes to an (H, W, 3) uint8 RGB array with EXIF orientation applied.

    JPEG, PNG, WebP, BMP and the first frame of a GIF are accepted; alpha is composited
    on white, greyscale and CMYK are converted. Anything else is `INVALID_IMAGE`; a file
    over the byte or pixel limit is `IMAGE_TOO_LARGE`.
    """
    return _decode(data, limits, reduce=False)[0]


def decode_reduced(data: bytes, limits: ImageLimits = ImageLimits()) -> tuple[np.ndarray, float]:
    """As `decode_image`, but a photo over `limits.work_pixels` comes back at that size,
    with the factor (> 1) that maps its pixels back to the photo's.

    A JPEG is decoded at reduced size by its own decoder (Pillow's draft mode scales the
    DCT by 1/2, 1/4 or 1/8), so the full-size pixels never exist; other formats are decoded
    whole, then reduced at once, and the full-size buffer is released before anything else.
    """
    return _decode(data, limits, reduce=True)


def _decode(data: bytes, limits: ImageLimits, reduce: bool) -> tuple[np.ndarray, float]:
    if len(data) > limits.max_bytes:
        raise _too_large(f"{len(data)} bytes is over the limit of {limits.max_bytes}")
    if not data:
        raise FacegateError(ErrorCode.INVALID_IMAGE, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in ACCEPTED_FORMATS:
                    raise FacegateError(
                        ErrorCode.INVALID_IMAGE, f"unsupported image format {img.format}"
                    )
                width, height = img.size
                if width * height > limits.max_pixels:
                    raise _too_large(
                        f"{width}x{height} pixels is over the limit of {limits.max_pixels}"
                    )
                if width < 1 or height < 1:
                    raise FacegateError(ErrorCode.INVALID_IMAGE, "image has no pixels")
                img.seek(0)
                scale = min(1.0, math.sqrt(limits.work_pixels / (width * height))) if reduce else 1.0
                target = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
                if scale < 1.0 and img.format in ("JPEG", "MPO"):
                    img.draft("RGB", target)  # at least `target`, decoded at 1/2, 1/4 or 1/8
                img.load()
                work = _shrink(img, target) if scale < 1.0 else img
                factor = width / work.size[0]
                rgb = _to_rgb(ImageOps.exif_transpose(work))
    except FacegateError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise _too_large(str(exc)) from None
    except UnidentifiedImageError:
        raise FacegateError(ErrorCode.INVALID_IMAGE, "not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError,
            IndexError, KeyError, TypeError, ZeroDivisionError, struct.error) as exc:
        # Pillow reports truncation and corrupt streams through several exception types.
        raise FacegateError(
            ErrorCode.INVALID_IMAGE, f"not a readable image: {type(exc).__name__}: {exc}"[:300]
        ) from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)), factor


def _shrink(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """`img` at `target` size; the full-size pixels are released as soon as they are read."""
    if img.size == target:
        return img
    step = max(1, min(img.size[0] // target[0], img.size[1] // target[1]))
    small = img.reduce(step) if step > 1 else img.resize(target, Image.Resampling.BOX)
    img.close()  # not when the `with` block ends: this is the largest buffer of the request
    return small.resize(target, Image.Resampling.BOX) if small.size != target else small


_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the decoded, EXIF-rotated image, from its header alone; None when
    the bytes are not a readable image (decoding them is what reports why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                orientation = img.getexif().get(0x0112, 1)
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            IndexError, KeyError, TypeError, ZeroDivisionError, struct.error):
        return None
    return (height, width) if orientation in _ROTATED else (width, height)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Flatten any mode to RGB; transparent pixels become white, as a viewer shows them."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def _too_large(message: str) -> FacegateError:
    return FacegateError(ErrorCode.IMAGE_TOO_LARGE, message)
