"""The ONNX MMOD detector finds dlib's faces: same count, same boxes, same confidences.

The reference is `dlib.cnn_face_detection_model_v1` itself (not facegate's `CnnDetector`),
so no facegate code sits on both sides of the comparison. dlib's CNN is slow on CPU (about
0.3 s for a 250x250 photo, 4-10 s for the group photos here), which bounds the sample;
the biggest group photo (t1.jpg, ~20 s in dlib) is checked for its 6 faces only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import mmod_pyramid
from facegate.vision.detect_onnx import CONVERTER_VERSION, MODEL_NAME, OnnxMmodDetector
from facegate.vision.models import MMOD_FILE, RESNET_FILE, model_path
from facegate.vision.onnx_cache import cache_paths, sha256_file

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LFW = DATA / "lfw"
PEERS = DATA / "peers"
DAT = model_path(MMOD_FILE)
LFW_PHOTOS = 50  # benchmarks/detect_bench.py --cnn-dlib 100 compares more
MIN_IOU = 0.95
MAX_CONFIDENCE_GAP = 1e-3

Corners = tuple[int, int, int, int]


def _photo(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"test photo missing: {path} (see DESIGN.md, Data at hand)")
    return np.asarray(Image.open(path).convert("RGB"))


def _lfw_sample(count: int) -> list[Path]:
    """`count` photos: every k-th row of the manifest sorted by path, the same on every run."""
    manifest = LFW / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"LFW test data missing: {manifest} (see DESIGN.md, Data at hand)")
    with manifest.open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    return [LFW / p for p in paths[:: len(paths) // count][:count]]


def _iou(a: Corners, b: Corners) -> float:
    inner_w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    inner_h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if inner_w <= 0 or inner_h <= 0:
        return 0.0
    inner = inner_w * inner_h
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)
    return inner / (area(a) + area(b) - inner)


def _dlib_boxes(model: dlib.cnn_face_detection_model_v1, image: np.ndarray, upsample: int) -> list[tuple[Corners, float]]:
    return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence) for d in model(image, upsample)]


def _assert_same(got: list[tuple[Corners, float]], expected: list[tuple[Corners, float]], where: str) -> float:
    """Every dlib detection has one ONNX twin (IoU and confidence); returns the worst IoU."""
    assert len(got) == len(expected), f"{where}: {len(got)} faces, dlib finds {len(expected)}"
    worst = 1.0
    unused = list(got)
    for box, confidence in expected:
        twin = max(unused, key=lambda item: _iou(item[0], box))
        iou = _iou(twin[0], box)
        assert iou >= MIN_IOU, f"{where}: box {twin[0]} vs dlib {box} (IoU {iou:.3f})"
        assert abs(twin[1] - confidence) <= MAX_CONFIDENCE_GAP, f"{where}: confidence {twin[1]} vs {confidence}"
        unused.remove(twin)
        worst = min(worst, iou)
    return worst


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def reference() -> dlib.cnn_face_detection_model_v1:
    return dlib.cnn_face_detection_model_v1(str(DAT))


def test_equals_dlib_on_lfw(cache: Path, reference: dlib.cnn_face_detection_model_v1) -> None:
    detector = OnnxMmodDetector(DAT, cache, min_face_size=0, upsample=0, threads=2)
    faces = 0
    for path in _lfw_sample(LFW_PHOTOS):
        image = _photo(path)
        expected = _dlib_boxes(reference, image, 0)
        _assert_same(detector.find(image), expected, path.name)
        faces += len(expected)
    assert faces >= 0.9 * LFW_PHOTOS  # the comparison is not vacuous


def test_equals_dlib_with_upsampling(cache: Path, reference: dlib.cnn_face_detection_model_v1) -> None:
    detector = OnnxMmodDetector(DAT, cache, min_face_size=0, upsample=1, threads=2)
    for path in _lfw_sample(LFW_PHOTOS)[:2]:
        image = _photo(path)
        _assert_same(detector.find(image), _dlib_boxes(reference, image, 1), path.name)


@pytest.mark.parametrize("name", ["deepface/selfie-many-people.jpg", "facenet-pytorch/multiface.jpg"])
def test_equals_dlib_on_group_photos(cache: Path, reference: dlib.cnn_face_detection_model_v1, name: str) -> None:
    image = _photo(PEERS / name)
    detector = OnnxMmodDetector(DAT, cache, min_face_size=0, upsample=0, threads=2)
    expected = _dlib_boxes(reference, image, 0)
    assert len(expected) >= 5
    _assert_same(detector.find(image), expected, name)


def test_finds_all_six_faces_in_a_group_photo(cache: Path) -> None:
    image = _photo(PEERS / "insightface/python-package/t1.jpg")
    found = OnnxMmodDetector(DAT, cache, min_face_size=40, upsample=0, threads=2).detect(image)
    assert len(found) == 6
    height, width = image.shape[:2]
    for d in found:
        assert d.detector == "cnn-onnx" and d.confidence > 0
        assert 0 <= d.box.left and d.box.left + d.box.width <= width
        assert 0 <= d.box.top and d.box.top + d.box.height <= height
    areas = [d.box.area for d in found]
    assert areas == sorted(areas, reverse=True)


def test_upsampling_matches_dlibs_bilinear_resize() -> None:
    image = _photo(_lfw_sample(LFW_PHOTOS)[3])[:61, :47]
    up = mmod_pyramid.upsample_2x(image)
    assert up.shape == (2 * 61 + 1, 2 * 47 + 2, 3)  # dlib's pyramid_up size
    expected = dlib.resize_image(np.ascontiguousarray(image), up.shape[0], up.shape[1])
    diff = np.abs(up.astype(int) - expected.astype(int))
    # dlib's SIMD resize rounds in float32 its own way: ~3% of pixels land one level apart
    assert diff.max() <= 1 and (diff > 0).mean() < 0.05


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (4, 300, 3)])
def test_tiny_images_have_no_faces(cache: Path, shape: tuple[int, int, int]) -> None:
    assert OnnxMmodDetector(DAT, cache, upsample=1, threads=1).detect(np.zeros(shape, np.uint8)) == []


@pytest.mark.parametrize("bad", [np.zeros((50, 50), np.uint8), np.zeros((50, 50, 3), np.float32), "image"])
def test_rejects_what_is_not_an_rgb_image(cache: Path, bad: object) -> None:
    with pytest.raises(FacegateError) as err:
        OnnxMmodDetector(DAT, cache, threads=1).detect(bad)  # type: ignore[arg-type]
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


def test_cache_is_reused_and_rebuilt_when_corrupt(tmp_path: Path) -> None:
    image = _photo(_lfw_sample(LFW_PHOTOS)[0])
    first = OnnxMmodDetector(DAT, tmp_path, threads=1)
    onnx_path = first.onnx_path
    assert onnx_path == cache_paths(MODEL_NAME, sha256_file(DAT), CONVERTER_VERSION, tmp_path)[0]
    stamp = onnx_path.stat().st_mtime_ns
    assert OnnxMmodDetector(DAT, tmp_path, threads=1).onnx_path.stat().st_mtime_ns == stamp  # reused

    blob = bytearray(onnx_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte inside the weights still parses
    onnx_path.write_bytes(bytes(blob))
    rebuilt = OnnxMmodDetector(DAT, tmp_path, threads=1)
    assert rebuilt.onnx_path.read_bytes() != bytes(blob)
    assert rebuilt.find(image) == first.find(image)

    onnx_path.unlink()
    assert OnnxMmodDetector(DAT, tmp_path, threads=1).onnx_path.is_file()


def test_refuses_a_model_that_is_not_a_detector(tmp_path: Path) -> None:
    with pytest.raises(FacegateError) as err:
        OnnxMmodDetector(model_path(RESNET_FILE), tmp_path, threads=1)
    assert err.value.code == ErrorCode.UNKNOWN_MODEL
