"""MTCNN on ONNX Runtime finds the faces dlib's HOG finds, smaller ones too, and none in noise.

Its boxes are put in dlib's convention because dlib's shape predictor aligns the faces:
the test holds the predictor's points from an MTCNN box to those from dlib's own HOG box.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import mtcnn_net
from facegate.vision.align import Aligner
from facegate.vision.detect import HogDetector, open_detector
from facegate.vision.detect_mtcnn import MtcnnDetector, nms, to_dlib_box
from facegate.vision.torch_weights import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    TorchFormatError,
    load_state_dict,
)
from facegate.vision.types import Box

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LFW = DATA / "lfw"
PEERS = DATA / "peers"
LFW_PHOTOS = 40
MAX_POINT_SHIFT = 0.08  # of the eye distance: worst predictor point, MTCNN box vs HOG box


def _photo(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"test photo missing: {path} (see DESIGN.md, Data at hand)")
    return np.asarray(Image.open(path).convert("RGB"))


def _lfw_sample(count: int) -> list[Path]:
    with (LFW / "manifest.csv").open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    return [LFW / p for p in paths[:: len(paths) // count][:count]]


def _central(box: Box, size: int) -> bool:
    cx, cy = box.left + box.width / 2, box.top + box.height / 2
    return size / 4 <= cx <= 3 * size / 4 and size / 4 <= cy <= 3 * size / 4


@pytest.fixture(scope="module")
def mtcnn(model_cache: Path) -> MtcnnDetector:
    return MtcnnDetector(model_cache, 40)


# --- the weights, read without PyTorch ------------------------------------------------


def test_weights_are_read_without_torch() -> None:
    weights = load_state_dict((mtcnn_net.weights_dir() / "onet.pt").read_bytes())
    assert weights["conv1.weight"].shape == (32, 3, 3, 3)
    assert weights["dense6_3.weight"].shape == (10, 256)  # the landmark head
    assert all(w.dtype == np.float32 and np.isfinite(w).all() for w in weights.values())
    assert "torch" not in sys.modules


class _Hostile:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("where", [0, 1, 2, 3])
def test_a_weights_file_cannot_run_code(where: int) -> None:
    """Whichever of the file's pickles carries it, a call to os.system is refused."""
    parts: list[object] = [LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}, {}]
    parts[where] = _Hostile()
    with pytest.raises(TorchFormatError, match="refusing to build"):
        load_state_dict(b"".join(pickle.dumps(x) for x in parts))


@pytest.mark.parametrize("mangle", [lambda b: b[:-100], lambda b: b"PK\x03\x04" + b[4:], lambda b: b"not a file"])
def test_damaged_weights_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    data = (mtcnn_net.weights_dir() / "pnet.pt").read_bytes()
    with pytest.raises(TorchFormatError):
        load_state_dict(mangle(data))


def test_converted_nets_are_cached_and_rebuilt_when_damaged(tmp_path: Path) -> None:
    first = mtcnn_net.ensure_onnx("rnet", tmp_path)
    assert mtcnn_net.ensure_onnx("rnet", tmp_path) == first
    good = first.read_bytes()
    first.write_bytes(good[: len(good) // 2])
    assert mtcnn_net.ensure_onnx("rnet", tmp_path) == first
    assert first.read_bytes() == good


def test_missing_weights_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FacegateError) as err:
        open_detector("mtcnn", 40, cache_dir=tmp_path)
    assert err.value.code == ErrorCode.UNKNOWN_MODEL
    assert "pip install --no-deps facenet-pytorch" in err.value.message


def test_upsample_is_refused_rather_than_ignored(tmp_path: Path) -> None:
    with pytest.raises(FacegateError) as err:
        open_detector("mtcnn", 40, upsample=1, cache_dir=tmp_path)
    assert err.value.code == ErrorCode.INVALID_ARGUMENT


# --- faces found ----------------------------------------------------------------------


def test_lfw_faces_are_found_and_aligned_as_from_hog_boxes(mtcnn: MtcnnDetector) -> None:
    hog, aligner = HogDetector(40), Aligner()
    shifts = []
    for path in _lfw_sample(LFW_PHOTOS):
        image = _photo(path)
        found = [d for d in mtcnn.detect(image) if _central(d.box, 250)]
        assert found, f"no central face in {path.name}"
        assert found[0].detector == "mtcnn" and 0.7 <= found[0].confidence <= 1.0
        reference = [d for d in hog.detect(image) if _central(d.box, 250)]
        if not reference:
            continue
        ref = np.array(aligner.points(aligner.landmarks(image, reference[0].box)), float)
        got = np.array(aligner.points(aligner.landmarks(image, found[0].box)), float)
        eye_distance = np.linalg.norm(ref[0:2].mean(axis=0) - ref[2:4].mean(axis=0))
        shifts.append(np.abs(got - ref).max() / eye_distance)
    assert len(shifts) >= LFW_PHOTOS - 2
    assert max(shifts) <= MAX_POINT_SHIFT, f"worst landmark shift {max(shifts):.3f} of the eye distance"


def test_small_faces_down_to_the_minimum_are_found(mtcnn: MtcnnDetector) -> None:
    """LFW photos shrunk to 110 px hold faces about 45 px wide (by dlib's HOG boxes)."""
    hits = 0
    sample = _lfw_sample(30)
    for path in sample:
        small = np.asarray(Image.fromarray(_photo(path)).resize((110, 110), Image.Resampling.BILINEAR))
        hits += any(_central(d.box, 110) for d in mtcnn.detect(small))
    assert hits >= 0.95 * len(sample)


def test_faces_below_the_minimum_are_not_reported(model_cache: Path) -> None:
    image = _photo(_lfw_sample(1)[0])  # a face about 110 px wide
    assert MtcnnDetector(model_cache, 40).detect(image)
    assert MtcnnDetector(model_cache, 200).detect(image) == []


def test_group_photo_gives_its_six_faces(mtcnn: MtcnnDetector) -> None:
    found = mtcnn.detect(_photo(PEERS / "insightface" / "python-package" / "t1.jpg"))
    assert len(found) == 6
    assert [d.box.area for d in found] == sorted((d.box.area for d in found), reverse=True)


@pytest.mark.parametrize("kind", ["noise", "flat", "tiny"])
def test_no_face_where_there_is_none(mtcnn: MtcnnDetector, kind: str) -> None:
    rng = np.random.default_rng(7)
    image = {
        "noise": rng.integers(0, 256, (300, 400, 3), dtype=np.uint8),
        "flat": np.full((300, 400, 3), 128, np.uint8),
        "tiny": np.full((5, 5, 3), 200, np.uint8),
    }[kind]
    assert mtcnn.detect(image) == []


def test_non_rgb_input_is_refused(mtcnn: MtcnnDetector) -> None:
    with pytest.raises(FacegateError) as err:
        mtcnn.detect(np.zeros((50, 50), np.uint8))
    assert err.value.code == ErrorCode.INVALID_IMAGE


# --- geometry -------------------------------------------------------------------------


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.99], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [3, 1, 2]  # [3] is small: low IoU with [1]
    assert nms(boxes, scores, 0.7, by_min=True).tolist() == [3, 2]  # [3] lies inside [1] and [0]


def test_dlib_box_is_a_square_around_eyes_and_mouth() -> None:
    points = np.array([[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]], np.float32)
    x1, y1, x2, y2 = to_dlib_box(points)
    assert x2 - x1 == y2 - y1 == round(2.06 * 20)
    assert x1 < 40 and x2 > 60 and y1 < 50 and y2 > 70
