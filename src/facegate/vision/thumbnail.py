"""A face's thumbnail: a small square JPEG crop around its box, for a reviewer's eyes only.

Kept only where a collection asks for it (`keep_thumbnails`); then it is biometric data like
the template, sealed with the same key and erased with the face. Small on purpose (112
pixels, as an ArcFace chip): enough for a person to compare two faces side by side, too
small to serve as a photo of anyone's surroundings.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from facegate.vision.types import Box

THUMBNAIL_SIZE = 112
_MARGIN = 0.25  # of the box's larger side, on every side: hairline, ears and chin in view
_QUALITY = 85


def face_thumbnail(image: np.ndarray, box: Box, size: int = THUMBNAIL_SIZE) -> bytes:
    """JPEG bytes of a `size`-pixel square around `box` in the decoded RGB `image` (clipped to it)."""
    height, width = image.shape[:2]
    side = max(box.width, box.height) * (1 + 2 * _MARGIN)
    cx, cy = box.centre
    left, top = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    right, bottom = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
    crop = Image.fromarray(image[top:bottom, left:right])
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)  # keeps the aspect of a crop cut by the frame
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=_QUALITY)  # no EXIF, no metadata of the source
    return out.getvalue()
