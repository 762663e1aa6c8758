"""Bulk analysis: batched embedding gives each photo the templates it gets alone, in order,
with refusals in place; two worker processes give the same as one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from facegate.errors import ErrorCode
from facegate.vision import Pipeline
from facegate.vision.parallel import BATCH, analyze_batch, analyze_files, analyze_inline


def _lfw(lfw: Path, count: int) -> list[Path]:
    with (lfw / "manifest.csv").open(newline="") as f:
        paths = sorted(row["path"] for row in csv.DictReader(f))
    return [lfw / p for p in paths[:: len(paths) // count][:count]]


@pytest.fixture(scope="module")
def mixed(lfw: Path, peers: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Photos with one and several faces, a file that is not an image and a missing one."""
    bad = tmp_path_factory.mktemp("bad") / "archive.jpg"
    bad.write_bytes(b"PK\x03\x04 a zip renamed .jpg")
    group = peers / "insightface" / "python-package" / "t1.jpg"
    photos = _lfw(lfw, 2 * BATCH)
    return [*photos[:3], bad, group, *photos[3:], bad.with_name("missing.jpg")]


def test_batched_templates_equal_one_photo_at_a_time(pipeline: Pipeline, mixed: list[Path]) -> None:
    batched = list(analyze_inline(pipeline, mixed))
    assert [r.path for r in batched] == mixed
    assert batched[3].error is not None and batched[3].error.code == ErrorCode.INVALID_IMAGE
    assert batched[-1].error is not None and batched[-1].error.code == ErrorCode.FILE_NOT_FOUND
    assert len(batched[4].faces) == 6
    for path, result in zip(mixed, batched):
        if result.error is not None:
            continue
        alone = analyze_batch(pipeline, [path])[0]
        assert [f.box for f in alone.faces] == [f.box for f in result.faces]
        for a, b in zip(alone.faces, result.faces):
            assert float(np.dot(a.template, b.template)) > 0.99999


def test_two_workers_give_what_one_gives(pipeline: Pipeline, mixed: list[Path]) -> None:
    one = list(analyze_inline(pipeline, mixed))
    two = list(analyze_files(mixed, pipeline.config, workers=2))
    assert [(r.path, r.image_sha256, len(r.faces)) for r in one] == [(r.path, r.image_sha256, len(r.faces)) for r in two]
    for a, b in zip(one, two):
        for fa, fb in zip(a.faces, b.faces):
            assert float(np.dot(fa.template, fb.template)) > 0.99999


def test_central_picks_the_face_nearest_the_centre(pipeline: Pipeline, peers: Path) -> None:
    group = peers / "insightface" / "python-package" / "t1.jpg"
    largest = analyze_batch(pipeline, [group], max_faces=1)[0].faces[0]
    central = analyze_batch(pipeline, [group], max_faces=1, central=True)[0].faces[0]
    all_faces = analyze_batch(pipeline, [group])[0].faces
    width, height = 1280, 886
    nearest = min(all_faces, key=lambda f: np.hypot(f.box.centre[0] - width / 2, f.box.centre[1] - height / 2))
    assert central.box == nearest.box
    assert largest.box == max(all_faces, key=lambda f: f.box.area).box
