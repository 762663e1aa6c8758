"""What a newcomer meets first, on real photos: `compare` answers like Rekognition's
CompareFaces (the headline is the best target face, not the largest), and a subject labels
ONE face of a group photo (the central one, or the one picked by its box), through the
engine, a manifest and the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from facegate.cli import main
from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.operations import bulk, collections, faces, vision
from facegate.operations.search import search_image
from facegate.settings import Settings
from facegate.vision.types import Box
from tests.backend import environment

FR = Path("face_recognition") / "tests" / "test_images"
ME = Caller()


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def composite(peers: Path) -> bytes:
    """Biden large on the left, Obama small on the right: the largest face is not Obama's."""
    big = Image.open(peers / FR / "biden.jpg").convert("RGB")
    small = Image.open(peers / FR / "obama2.jpg").convert("RGB")
    big = big.resize((big.width * 900 // big.height, 900))
    small = small.resize((small.width * 420 // small.height, 420))
    canvas = Image.new("RGB", (big.width + small.width + 40, 900), "white")
    canvas.paste(big, (0, 0))
    canvas.paste(small, (big.width + 40, 240))
    return jpeg(canvas)


def test_compare_headline_is_the_best_target_face_not_the_largest(engine: Facegate, peers: Path) -> None:
    source = (peers / FR / "obama.jpg").read_bytes()
    result = vision.compare(engine, ME, source, composite(peers)).value
    targets = result.target_faces
    assert len(targets) == 2
    largest, other = targets[0], targets[1]
    assert largest[0].box.area > other[0].box.area  # detection order: Biden first
    assert not largest[1].match and other[1].match  # Obama, the smaller face, is the match
    answer = result.to_dict()
    assert answer["match"] is True and answer["best_target_index"] == 1
    assert answer["similarity"] == round(other[1].similarity, 4) > round(largest[1].similarity, 4)
    assert [m["target_index"] for m in answer["matches"]] == [1]
    assert [u["target_index"] for u in answer["unmatched"]] == [0]
    assert [t["target_index"] for t in answer["target_faces"]] == [0, 1]
    assert all("similarity" in t and "estimated_fmr" in t for t in answer["target_faces"])


def test_compare_with_no_match_lists_every_face_as_unmatched(engine: Facegate, peers: Path) -> None:
    source = (peers / "deepface" / "couple.jpg").read_bytes()
    answer = vision.compare(engine, ME, (peers / FR / "obama.jpg").read_bytes(), source).value.to_dict()
    assert answer["match"] is False and answer["matches"] == []
    assert len(answer["unmatched"]) == len(answer["target_faces"]) == 2
    best = max(answer["target_faces"], key=lambda t: t["similarity"])
    assert answer["best_target_index"] == best["target_index"] and answer["similarity"] == best["similarity"]


def test_cli_compare_headline_and_table(settings: Settings, peers: Path, tmp_path: Path) -> None:
    target = tmp_path / "two.jpg"
    target.write_bytes(composite(peers))
    args = ["compare", str(peers / FR / "obama.jpg"), str(target), "--data-dir", str(settings.home)]
    human = CliRunner(env=environment(settings)).invoke(main, args)
    assert human.exit_code == 0, human.output
    first = human.output.splitlines()[0]
    assert first.startswith("MATCH: best target face #1"), human.output
    assert "target face" in human.output and "1 match(es), 1 unmatched" in human.output
    machine = CliRunner(env=environment(settings)).invoke(main, [*args, "--json"])
    assert json.loads(machine.output)["match"] is True


COUPLE = Path("deepface") / "couple.jpg"  # two people, side by side
GROUP = Path("insightface") / "python-package" / "t1.jpg"  # six people


def test_a_subject_labels_only_the_central_face(engine: Facegate, peers: Path) -> None:
    collections.create_collection(engine, ME, "people")
    photo = (peers / GROUP).read_bytes()
    found, (width, height) = engine.analyze_sized(photo)
    assert len(found) == 6
    result = faces.index_faces(engine, ME, "people", photo, subject="anna").value
    [labelled] = result.indexed
    centre = (width / 2, height / 2)
    nearest = min(found, key=lambda f: (f.box.centre[0] - centre[0]) ** 2 + (f.box.centre[1] - centre[1]) ** 2)
    assert labelled.subject == "anna" and labelled.box == nearest.box
    assert len(result.unindexed) == 5
    assert {u.reason for u in result.unindexed} == {ErrorCode.NOT_SUBJECT_FACE.value}
    assert all(u.face is not None and u.face.box != nearest.box for u in result.unindexed)
    listed = faces.list_faces(engine, ME, "people").value.items
    assert [f.subject for f in listed] == ["anna"]


def test_a_box_selects_the_subjects_face_and_others_can_be_unlabelled(engine: Facegate, peers: Path) -> None:
    collections.create_collection(engine, ME, "people")
    photo = (peers / COUPLE).read_bytes()
    found, _ = engine.analyze_sized(photo)
    right = max(found, key=lambda f: f.box.left)
    near = Box(right.box.left + 10, right.box.top - 10, right.box.width, right.box.height)  # roughly drawn
    result = faces.index_faces(engine, ME, "people", photo, subject="bob", subject_box=near,
                               index_unlabelled=True).value
    assert [(f.subject, f.box) for f in result.indexed][0] == ("bob", right.box)
    assert [f.subject for f in result.indexed] == ["bob", None] and result.unindexed == []
    # a box where no face is: refused with a code, nothing stored, one audit entry
    with pytest.raises(FacegateError) as refused:
        faces.index_faces(engine, ME, "people", photo, subject="carl", external_image_id="x",
                          subject_box=Box(0, 0, 50, 50))
    assert refused.value.code is ErrorCode.NO_FACE and refused.value.details["field"] == "subject_box"
    assert len(faces.list_faces(engine, ME, "people").value.items) == 2


def test_manifest_of_group_photos_labels_one_face_per_row(engine: Facegate, peers: Path, tmp_path: Path) -> None:
    """The bystanders of a group photo never get the row's subject (issue: 218 faces for 200 rows)."""
    found, _ = engine.analyze_sized((peers / COUPLE).read_bytes())
    left = min(found, key=lambda f: f.box.left).box
    manifest = tmp_path / "faces.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject", "external_id", "subject_box"])  # the earlier column name
        writer.writerow([str(peers / GROUP), "anna", "t1", ""])
        writer.writerow([str(peers / COUPLE), "dora", "c1", f"{left.left},{left.top},{left.width},{left.height}"])
        writer.writerow([str(peers / FR / "obama.jpg"), "obama", "o1", ""])
        writer.writerow([str(peers / COUPLE), "erik", "c2", "1,2,3"])  # a broken box
    collections.create_collection(engine, ME, "gallery")
    report = bulk.index_manifest(engine, ME, "gallery", manifest, workers=1)
    assert sorted((f["subject"], f["external_image_id"]) for f in report.indexed) == [
        ("anna", "t1"), ("dora", "c1"), ("obama", "o1")]
    dora = next(f for f in report.indexed if f["subject"] == "dora")
    assert dora["box"] == left.to_dict()
    reasons = [u["reason"] for u in report.unindexed]
    assert reasons.count("NOT_SUBJECT_FACE") == 5 + 1 and reasons.count("INVALID_MANIFEST") == 1
    # the subject searched finds the labelled face only
    probe = (peers / FR / "obama2.jpg").read_bytes()
    assert [m.subject for m in search_image(engine, ME, "gallery", probe).value.matches] == ["obama"]


def test_cli_index_subject_box_and_external_image_id(settings: Settings, peers: Path) -> None:
    home = ["--data-dir", str(settings.home)]
    runner = CliRunner(env=environment(settings))
    assert runner.invoke(main, ["collection", "create", "people", *home]).exit_code == 0
    detected = json.loads(runner.invoke(main, ["detect", str(peers / COUPLE), *home, "--json"]).output)
    right = max(detected["images"][0]["faces"], key=lambda f: f["box"]["left"])["box"]
    box = f"{right['left']},{right['top']} {right['width']}x{right['height']}"  # as detect prints it
    done = runner.invoke(main, ["index", "people", str(peers / COUPLE), "--subject", "bob", "--subject-box", box,
                                "--external-image-id", "c1", *home, "--json"])
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert [(f["subject"], f["box"], f["external_image_id"]) for f in answer["indexed"]] == [("bob", right, "c1")]
    assert [u["reason"] for u in answer["unindexed"]] == ["NOT_SUBJECT_FACE"]
    legacy = runner.invoke(main, ["index", "people", str(peers / FR / "obama.jpg"), "--subject", "obama",
                                  "--external-id", "o1", *home, "--json"])
    assert json.loads(legacy.output)["indexed"][0]["external_image_id"] == "o1"
    searched = json.loads(runner.invoke(main, ["search", "people", str(peers / FR / "obama2.jpg"), *home,
                                               "--json"]).output)
    assert searched["matches"][0]["external_image_id"] == "o1" and "external_id" not in searched["matches"][0]
    listed = runner.invoke(main, ["faces", "list", "people", *home])
    assert listed.output.splitlines()[0].split()[:3] == ["face", "id", "subject"], listed.output
    bad = runner.invoke(main, ["index", "people", str(peers / COUPLE), "--subject", "x", "--subject-box", "a,b",
                               *home])
    assert bad.exit_code != 0 and "INVALID_ARGUMENT" in bad.output and "Traceback" not in bad.output
