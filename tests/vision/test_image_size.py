"""The size Rekognition's fractional boxes are measured against: the decoded image's, after
EXIF rotation, read from the header; None for bytes that are no image (never an error:
decoding them is what refuses them, inside the gate)."""

from __future__ import annotations

import io

from PIL import Image

from facegate.vision.image import decode_image, image_size


def _jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.new("RGB", (width, height), (90, 120, 150)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_size_follows_exif_rotation_as_decoding_does() -> None:
    for orientation in (None, 1, 3, 6, 8):
        data = _jpeg(64, 40, orientation)
        height, width = decode_image(data).shape[:2]
        assert image_size(data) == (width, height)
    assert image_size(_jpeg(64, 40, 6)) == (40, 64)


def test_no_image_no_size() -> None:
    assert image_size(b"") is None
    assert image_size(b"GIF89a broken") is None
