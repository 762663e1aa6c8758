"""The pipeline on real photos: it finds the faces a person sees, and its templates match
the same person and separate different people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.engine import Facegate
from facegate.settings import Settings
from facegate.vision import Pipeline, QualityFilter
from facegate.vision.calibration import load_calibration, similarity, similarity_matrix
from facegate.vision.quality import passes, pose

FR = Path("face_recognition") / "tests" / "test_images"


def largest(pipeline: Pipeline, path: Path) -> np.ndarray:
    faces = pipeline.analyze_file(path)
    assert faces, f"no face in {path}"
    return faces[0].template


def test_group_photo_finds_every_face(pipeline: Pipeline, peers: Path) -> None:
    faces = pipeline.analyze_file(peers / "insightface" / "python-package" / "t1.jpg")
    assert len(faces) == 6
    boxes = [f.box for f in faces]
    assert all(b.width >= 80 for b in boxes)
    # six different people: no two of them match at the calibrated default threshold
    t = np.stack([f.template for f in faces])
    sims = similarity_matrix(t, t)
    threshold = load_calibration(pipeline.template_id).default_threshold
    assert (sims[~np.eye(6, dtype=bool)] < threshold).all()


def test_face_fields_are_sane(pipeline: Pipeline, peers: Path) -> None:
    face = pipeline.analyze_file(peers / FR / "obama.jpg")[0]
    assert len(face.landmarks) == 5
    assert face.template.shape == (128,) and abs(np.linalg.norm(face.template) - 1) < 1e-5
    assert face.quality.level in (QualityFilter.HIGH, QualityFilter.MEDIUM)
    assert abs(face.quality.yaw) < 25 and abs(face.quality.roll) < 15
    assert face.box.left >= 0 and face.box.top >= 0


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (FR / "obama.jpg", FR / "obama2.jpg", True),
        (FR / "obama.jpg", FR / "obama3.jpg", True),
        (FR / "obama.jpg", FR / "biden.jpg", False),
        (Path("deepface/img1.jpg"), Path("deepface/img2.jpg"), True),
        (Path("deepface/img1.jpg"), Path("deepface/img3.jpg"), False),
    ],
)
def test_known_pairs(pipeline: Pipeline, peers: Path, a: Path, b: Path, same: bool) -> None:
    threshold = load_calibration(pipeline.template_id).default_threshold
    score = float(similarity(largest(pipeline, peers / a), largest(pipeline, peers / b))[0])
    assert (score >= threshold) == same, score


def test_lfw_pairs_from_the_protocol(pipeline: Pipeline, lfw: Path) -> None:
    """The first same-person and different-person pairs of pairs.txt's first fold."""
    threshold = load_calibration(pipeline.template_id).default_threshold
    same = [("Abel_Pacheco", 1, 4), ("Akhmed_Zakayev", 1, 3), ("Akhmed_Zakayev", 2, 3)]
    for name, i, j in same:
        a = largest(pipeline, lfw / name / f"{name}_{i:04d}.jpg")
        b = largest(pipeline, lfw / name / f"{name}_{j:04d}.jpg")
        assert similarity(a, b)[0] >= threshold, (name, i, j)
    different = [("Abdel_Madi_Shabneh", 1, "Dean_Barker", 1), ("Abdel_Madi_Shabneh", 1, "Giancarlo_Fisichella", 1)]
    for n1, i, n2, j in different:
        a = largest(pipeline, lfw / n1 / f"{n1}_{i:04d}.jpg")
        b = largest(pipeline, lfw / n2 / f"{n2}_{j:04d}.jpg")
        assert similarity(a, b)[0] < threshold, (n1, n2)


def test_no_face_gives_empty(pipeline: Pipeline, peers: Path) -> None:
    assert pipeline.analyze_file(peers / "insightface" / "inspireface" / "crop" / "no_face.png") == []


def test_flip_averaging_is_symmetric(pipeline: Pipeline, peers: Path) -> None:
    """A mirrored photo gives (almost) the same template: the mirror average is built in."""
    image = pipeline.decode((peers / FR / "obama.jpg").read_bytes())
    a = pipeline.faces(image)[0].template
    b = pipeline.faces(np.ascontiguousarray(image[:, ::-1]))[0].template
    assert float(a @ b) > 0.99


def test_quality_filter_levels(pipeline: Pipeline, peers: Path) -> None:
    face = pipeline.analyze_file(peers / FR / "obama.jpg")[0]
    assert passes(face.quality, QualityFilter.NONE)
    assert passes(face.quality, QualityFilter.LOW)


def test_pose_from_landmarks() -> None:
    frontal = ((60, 50), (45, 50), (20, 50), (35, 50), (40, 70))
    yaw, roll = pose(frontal)
    assert abs(yaw) < 1 and abs(roll) < 1e-6
    turned = ((60, 50), (45, 50), (20, 50), (35, 50), (55, 70))
    assert abs(pose(turned)[0]) > 30


def test_empty_and_tiny_images(pipeline: Pipeline) -> None:
    assert pipeline.faces(np.zeros((1, 1, 3), np.uint8)) == []
    assert pipeline.faces(np.full((40, 40, 3), 128, np.uint8)) == []


def test_large_photo_is_detected_at_bounded_scale(pipeline: Pipeline, peers: Path) -> None:
    """A 14-megapixel portrait is searched at about 2 megapixels; boxes come back in the
    full image's pixels and the face is still found once."""
    image = pipeline.decode((peers / "deepface" / "img40.jpg").read_bytes())
    assert image.shape[0] * image.shape[1] > 4 * pipeline.config.detect_max_pixels
    faces = pipeline.faces(image)
    assert len(faces) == 1
    box = faces[0].box
    assert box.width > 1000 and box.left + box.width <= image.shape[1] and box.top + box.height <= image.shape[0]


@pytest.mark.parametrize(
    ("env", "value"), [("FACEGATE_EMBEDDER_RUNTIME", "dlib"), ("FACEGATE_DETECTOR", "hog")]
)
def test_reference_paths_stay_selectable(
    pipeline: Pipeline, peers: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    """The fast path is the default; dlib's own embedder runtime and dlib's HOG detector are
    chosen by settings and give the same template space (same faces, templates within the
    ONNX-vs-dlib tolerance, or the same person for a different detector's box)."""
    monkeypatch.setenv(env, value)
    settings = Settings(home=model_cache.parent / f"home-{value}")
    reference = Facegate(settings).pipeline
    assert (reference.config.runtime, reference.config.detector) == (
        ("dlib", "mtcnn") if value == "dlib" else ("onnx", "hog")
    )
    assert reference.template_id == pipeline.template_id
    photo = peers / "face_recognition" / "tests" / "test_images" / "obama.jpg"
    fast, ref = pipeline.analyze_file(photo), reference.analyze_file(photo)
    assert len(fast) == len(ref) == 1
    cos = float(np.dot(fast[0].template, ref[0].template))
    assert cos > (0.9999 if value == "dlib" else 0.97)
