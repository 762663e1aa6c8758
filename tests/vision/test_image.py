"""The decoder refuses broken input with a stable code and copes with every odd but valid image."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.image import ImageLimits, decode_image, load_image


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def code_of(data: bytes, limits: ImageLimits = ImageLimits()) -> ErrorCode:
    with pytest.raises(FacegateError) as info:
        decode_image(data, limits)
    return info.value.code


def test_truncated_jpeg_is_refused(lfw: Path) -> None:
    data = (lfw / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").read_bytes()
    assert code_of(data[: len(data) // 2]) == ErrorCode.INVALID_IMAGE


def test_zip_renamed_jpg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(FacegateError) as info:
        load_image(path)
    assert info.value.code == ErrorCode.INVALID_IMAGE


def test_text_and_empty_are_refused() -> None:
    assert code_of(b"hello, I am not a picture") == ErrorCode.INVALID_IMAGE
    assert code_of(b"") == ErrorCode.INVALID_IMAGE


def test_unsupported_format_is_refused() -> None:
    assert code_of(encode(Image.new("RGB", (8, 8)), "TIFF")) == ErrorCode.INVALID_IMAGE


def test_pixel_limit_refuses_a_decompression_bomb() -> None:
    bomb = encode(Image.new("L", (20000, 20000)), "PNG")  # ~400 KB on disk, 400 MP decoded
    assert code_of(bomb) == ErrorCode.IMAGE_TOO_LARGE


def test_byte_limit() -> None:
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)), "PNG")
    assert len(data) > 1000
    assert code_of(data, ImageLimits(max_bytes=1000)) == ErrorCode.IMAGE_TOO_LARGE


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FacegateError) as info:
        load_image(tmp_path / "nope.jpg")
    assert info.value.code == ErrorCode.FILE_NOT_FOUND


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("RGB", "JPEG"), ("L", "JPEG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("LA", "PNG"),
     ("P", "GIF"), ("RGB", "WEBP"), ("RGB", "BMP"), ("I;16", "PNG"), ("1", "PNG")],
)
def test_every_mode_becomes_rgb(mode: str, fmt: str) -> None:
    img = Image.new(mode, (31, 17))
    out = decode_image(encode(img, fmt))
    assert out.shape == (17, 31, 3) and out.dtype == np.uint8


def test_one_pixel_image() -> None:
    assert decode_image(encode(Image.new("RGB", (1, 1)), "PNG")).shape == (1, 1, 3)


def test_transparent_pixels_become_white() -> None:
    out = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"))
    assert (out == 255).all()


def test_exif_orientation_is_applied(lfw: Path) -> None:
    src = Image.open(lfw / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").crop((0, 0, 250, 120))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    out = decode_image(encode(src, "JPEG", exif=exif.tobytes()))
    assert out.shape == (250, 120, 3)


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(buf.getvalue())
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        out = decode_image(data)
    except FacegateError as exc:
        assert exc.code in (ErrorCode.INVALID_IMAGE, ErrorCode.IMAGE_TOO_LARGE)
    else:
        assert out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_corrupted_real_jpeg_never_crashes(lfw: Path, data: st.DataObject) -> None:
    raw = bytearray((lfw / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    try:
        decode_image(bytes(raw[:cut]))
    except FacegateError as exc:
        assert exc.code in (ErrorCode.INVALID_IMAGE, ErrorCode.IMAGE_TOO_LARGE)
