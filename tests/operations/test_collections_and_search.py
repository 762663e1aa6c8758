"""Operator flows through the engine's operations on real photos: enrol, search, erase,
and exactly one audit entry per operation, allowed or refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Limits
from facegate.governance import verify
from facegate.governance.audit import entry_count
from facegate.operations import collections, faces, search
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"
ME = Caller()


def photo(peers: Path, name: str) -> bytes:
    return (peers / FR / name).read_bytes()


def audit_entries(engine: Facegate) -> int:
    with engine.sessions.begin() as session:
        return entry_count(session)


@pytest.fixture()
def enrolled(engine: Facegate, peers: Path) -> Facegate:
    collections.create_collection(engine, ME, "people")
    faces.index_faces(engine, ME, "people", photo(peers, "obama.jpg"), subject="obama", external_image_id="o1")
    faces.index_faces(engine, ME, "people", photo(peers, "biden.jpg"), subject="biden", external_image_id="b1")
    return engine


def test_search_finds_the_right_person(enrolled: Facegate, peers: Path) -> None:
    result = search.search_image(enrolled, ME, "people", photo(peers, "obama2.jpg")).value
    assert [m.subject for m in result.matches] == ["obama"]
    best = result.matches[0]
    assert best.external_image_id == "o1" and best.similarity >= result.threshold
    assert 0 < best.estimated_fmr < 1e-3
    assert result.subjects[0].subject == "obama"


def test_search_by_face_and_subject(enrolled: Facegate, peers: Path) -> None:
    added = faces.index_faces(enrolled, ME, "people", photo(peers, "obama3.jpg"), subject="obama").value
    face_id = added.indexed[0].face_id
    by_face = search.search_face(enrolled, ME, "people", face_id).value
    assert face_id not in [m.face_id for m in by_face.matches]
    assert by_face.matches and all(m.subject == "obama" for m in by_face.matches)
    by_subject = search.search_subject(enrolled, ME, "people", "obama").value
    assert by_subject.subjects == []  # obama's faces match no other subject


def test_stricter_threshold_only(enrolled: Facegate, peers: Path) -> None:
    loose = search.search_image(enrolled, ME, "people", photo(peers, "obama2.jpg"), Limits(threshold=1.0))
    default = search.search_image(enrolled, ME, "people", photo(peers, "obama2.jpg"))
    assert loose.decision.threshold == default.decision.threshold  # never looser than the purpose
    strict = search.search_image(enrolled, ME, "people", photo(peers, "obama2.jpg"), Limits(threshold=99.99))
    assert strict.value.matches == [] and strict.decision.threshold == pytest.approx(99.99)


def test_erased_subject_never_returns(enrolled: Facegate, peers: Path, settings: Settings) -> None:
    erased = faces.erase_subject(enrolled, ME, "people", "obama").value
    assert len(erased.face_ids) == 1
    assert search.search_image(enrolled, ME, "people", photo(peers, "obama2.jpg")).value.matches == []
    enrolled.close()
    again = Facegate(settings)  # a restart: indexes reopened from disk and the catalog
    assert search.search_image(again, ME, "people", photo(peers, "obama2.jpg")).value.matches == []
    assert [m.subject for m in search.search_image(again, ME, "people", photo(peers, "biden.jpg")).value.matches] == ["biden"]


def test_errors_have_codes_and_change_nothing(enrolled: Facegate, peers: Path) -> None:
    no_face = (peers / "insightface" / "inspireface" / "crop" / "no_face.png").read_bytes()
    cases = [
        (lambda: collections.create_collection(enrolled, ME, "people"), ErrorCode.COLLECTION_EXISTS),
        (lambda: search.search_image(enrolled, ME, "nobody", photo(peers, "obama2.jpg")), ErrorCode.COLLECTION_NOT_FOUND),
        (lambda: faces.index_faces(enrolled, ME, "nobody", photo(peers, "obama2.jpg")), ErrorCode.COLLECTION_NOT_FOUND),
        (lambda: search.search_image(enrolled, ME, "people", no_face), ErrorCode.NO_FACE),
        (lambda: search.search_image(enrolled, ME, "people", b"not an image"), ErrorCode.INVALID_IMAGE),
        (lambda: faces.index_faces(enrolled, ME, "people", no_face), ErrorCode.NO_FACE),
    ]
    for call, code in cases:
        before = audit_entries(enrolled)
        stats = collections.describe_collection(enrolled, ME, "people").value
        with pytest.raises(FacegateError) as info:
            call()
        assert info.value.code == code
        assert audit_entries(enrolled) == before + 2  # the describe above + the refused call
        after = collections.describe_collection(enrolled, ME, "people").value
        assert (after.face_count, after.subject_count) == (stats.face_count, stats.subject_count)
    with enrolled.sessions.begin() as session:
        assert verify(session).ok


def test_every_operation_one_audit_entry(engine: Facegate, peers: Path) -> None:
    steps = [
        lambda: collections.create_collection(engine, ME, "c"),
        lambda: faces.index_faces(engine, ME, "c", photo(peers, "obama.jpg"), subject="obama"),
        lambda: faces.list_faces(engine, ME, "c"),
        lambda: search.search_image(engine, ME, "c", photo(peers, "obama2.jpg")),
        lambda: faces.list_subjects(engine, ME, "c"),
        lambda: faces.erase_subject(engine, ME, "c", "obama"),
        lambda: collections.delete_collection(engine, ME, "c"),
    ]
    for step in steps:
        before = audit_entries(engine)
        step()
        assert audit_entries(engine) == before + 1


def test_reindexing_the_same_image_is_idempotent(enrolled: Facegate, peers: Path) -> None:
    again = faces.index_faces(enrolled, ME, "people", photo(peers, "obama.jpg"), subject="obama", external_image_id="o1")
    assert again.value.already_indexed
    assert collections.describe_collection(enrolled, ME, "people").value.face_count == 2


def test_model_binding(enrolled: Facegate) -> None:
    info = collections.describe_collection(enrolled, ME, "people").value.collection
    assert info.template_id == enrolled.template_id and info.dimension == 128


def test_search_with_another_template_space_is_refused(enrolled: Facegate, peers: Path, settings: Settings) -> None:
    """A collection is bound to the template space that made it: an engine without the
    mirror average (another recipe, same dimension) may not search it."""
    other = Facegate(settings)
    other.config = replace(other.config, flip=False)
    assert other.template_id != enrolled.template_id
    with pytest.raises(FacegateError) as info:
        faces.index_faces(other, ME, "people", photo(peers, "obama2.jpg"))
    assert info.value.code == ErrorCode.MODEL_MISMATCH
    # this recipe has no calibration either: it cannot match anything, anywhere
    with pytest.raises(FacegateError) as info:
        search.search_image(other, ME, "people", photo(peers, "obama2.jpg"))
    assert info.value.code == ErrorCode.UNKNOWN_MODEL
