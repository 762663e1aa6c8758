"""Detectors by name, and HOG on a smartly scaled image, on real photos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.detect import HOG_WINDOW, HogDetector, open_detector, scale_image
from facegate.vision.types import Box

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LFW = DATA / "lfw"
GROUP = DATA / "peers" / "insightface" / "python-package" / "t1.jpg"  # 1280x886, 6 faces


def _photo(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"test photo missing: {path} (see DESIGN.md, Data at hand)")
    return np.asarray(Image.open(path).convert("RGB"))


def _lfw(count: int) -> list[np.ndarray]:
    manifest = LFW / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"LFW test data missing: {manifest} (see DESIGN.md, Data at hand)")
    with manifest.open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    return [_photo(LFW / p) for p in paths[:: len(paths) // count][:count]]


def _iou(a: Box, b: Box) -> float:
    w = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    h = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / (a.area + b.area - w * h)


def test_scale_makes_the_smallest_wanted_face_fill_the_window() -> None:
    assert HogDetector(40, smart_scale=True).scale == 2.0
    assert HogDetector(HOG_WINDOW, smart_scale=True).scale == 1.0
    assert HogDetector(160, smart_scale=True).scale == 0.5  # big faces only: the photo shrinks
    assert HogDetector(40).scale == 1.0 and HogDetector(40).upsample == 1  # plain HOG: dlib's 2x step


def test_scale_image_sizes() -> None:
    image = np.zeros((100, 60, 3), np.uint8)
    assert scale_image(image, 1.0) is image
    assert scale_image(image, 0.5).shape == (50, 30, 3)
    assert scale_image(image, 4 / 3).shape == (133, 80, 3)
    assert scale_image(np.zeros((1, 1, 3), np.uint8), 0.25).shape[:2] == (0, 0)


def test_scaled_hog_finds_lfw_faces_where_plain_hog_does() -> None:
    plain = HogDetector(40)
    scaled = HogDetector(40, smart_scale=True)
    both = 0
    for image in _lfw(12):
        a, b = plain.detect(image), scaled.detect(image)
        if a:
            assert b, "smart scaling lost a face that dlib's upsampling finds"
            assert _iou(a[0].box, b[0].box) > 0.6
            assert b[0].detector == "hog-scaled"
            both += 1
    assert both >= 10


def test_downscaled_group_photo_keeps_the_wanted_faces_in_original_coordinates() -> None:
    image = _photo(GROUP)
    reference = HogDetector(40).detect(image)
    assert len(reference) == 6
    found = HogDetector(100, smart_scale=True).detect(image)  # scanned at 0.8x
    wanted = [r for r in reference if r.box.width >= 100]
    assert len(wanted) >= 4 and len(found) == len(wanted)
    for r in wanted:
        assert max(_iou(d.box, r.box) for d in found) > 0.6
    for d in found:
        assert max(d.box.width, d.box.height) >= 100
        assert d.box.left + d.box.width <= image.shape[1] and d.box.top + d.box.height <= image.shape[0]


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3)])
def test_tiny_images_have_no_faces(shape: tuple[int, int, int]) -> None:
    assert HogDetector(40, smart_scale=True).detect(np.zeros(shape, np.uint8)) == []


def test_smart_scale_and_upsample_are_exclusive() -> None:
    with pytest.raises(FacegateError) as err:
        HogDetector(40, upsample=1, smart_scale=True)
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


def test_open_detector_by_name(tmp_path: Path) -> None:
    assert open_detector("hog").name == "hog"
    assert open_detector("hog-scaled", 60).name == "hog-scaled"
    assert open_detector("cnn-onnx", cache_dir=tmp_path).name == "cnn-onnx"
    assert open_detector("mtcnn", cache_dir=tmp_path).name == "mtcnn"
    for needs_cache in ("cnn-onnx", "mtcnn"):
        with pytest.raises(FacegateError) as err:
            open_detector(needs_cache)
        assert err.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(FacegateError) as err:
        open_detector("retinaface")
    assert err.value.code == ErrorCode.UNKNOWN_MODEL


def test_cnn_onnx_is_upsampled_enough_for_the_smallest_wanted_face(tmp_path: Path) -> None:
    """The MMOD window is 80 px: a 40 px minimum needs one 2x step, an 80 px one none."""
    small = np.asarray(Image.fromarray(_lfw(1)[0]).resize((110, 110), Image.Resampling.BILINEAR))  # face ~45 px
    wanted_40 = open_detector("cnn-onnx", 40, cache_dir=tmp_path)
    wanted_80 = open_detector("cnn-onnx", 80, cache_dir=tmp_path)
    assert (wanted_40.upsample, wanted_80.upsample) == (1, 0)  # type: ignore[attr-defined]
    found = wanted_40.detect(small)
    assert len(found) == 1 and 35 <= found[0].box.width <= 60
    assert wanted_80.detect(small) == []
