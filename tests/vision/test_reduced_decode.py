"""Large photos are decoded at working size (JPEG by its own decoder in draft mode), and the
faces found are reported in the photo's own pixels, with the template of the small photo."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.vision import Pipeline
from facegate.vision.image import ImageLimits, decode_image, decode_reduced

OBAMA = Path("face_recognition") / "tests" / "test_images" / "obama.jpg"


def enlarged(peers: Path, width: int, fmt: str, **options: object) -> tuple[bytes, float]:
    photo = Image.open(peers / OBAMA).convert("RGB")
    factor = width / photo.size[0]
    out = io.BytesIO()
    photo.resize((width, round(photo.size[1] * factor)), Image.Resampling.BICUBIC).save(out, fmt, **options)
    return out.getvalue(), factor


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_large_photo_is_decoded_at_working_size(peers: Path, fmt: str) -> None:
    data, _ = enlarged(peers, 5000, fmt)
    limits = ImageLimits(work_pixels=2_000_000)
    with Image.open(io.BytesIO(data)) as header:
        width, height = header.size
    image, factor = decode_reduced(data, limits)
    assert image.shape[0] * image.shape[1] <= 2_000_000 * 1.01 and image.dtype == np.uint8
    assert factor == pytest.approx(width / image.shape[1], rel=1e-6)
    assert (image.shape[0] * factor) == pytest.approx(height, abs=factor)
    original = (peers / OBAMA).read_bytes()  # under the working size: decoded as ever
    small, same = decode_reduced(original, limits)
    assert same == 1.0 and np.array_equal(small, decode_image(original))


def test_jpeg_draft_mode_never_builds_the_full_size_pixels(peers: Path) -> None:
    data, _ = enlarged(peers, 6000, "JPEG", quality=90)
    with Image.open(io.BytesIO(data)) as img:
        requested = img.draft("RGB", (img.size[0] // 5, img.size[1] // 5))
        assert requested is not None and img.size[0] <= 6000 // 4  # the decoder itself scales by 1/4
        img.load()


def test_faces_of_a_reduced_photo_are_in_the_photos_pixels(pipeline: Pipeline, peers: Path) -> None:
    [reference] = pipeline.analyze((peers / OBAMA).read_bytes())
    for fmt in ("JPEG", "PNG"):
        data, factor = enlarged(peers, 5300, fmt)  # 35 megapixels, over the 12 of working size
        face = pipeline.analyze(data)[0]  # the largest (MTCNN also finds a faint one in the upscaled blur)
        assert face.box.left == pytest.approx(reference.box.left * factor, rel=0.05)
        assert face.box.width == pytest.approx(reference.box.width * factor, rel=0.05)
        assert face.landmarks[0][0] == pytest.approx(reference.landmarks[0][0] * factor, rel=0.02)
        assert face.quality.face_size == min(face.box.width, face.box.height)
        assert float(face.template @ reference.template) > 0.99
