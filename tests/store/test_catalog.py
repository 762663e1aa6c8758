"""Catalog operations on a real catalog (SQLite, and PostgreSQL in server mode) with faces
from real photos: what is stored, what is refused (with which code), and what deletion and
erasure leave behind."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog import (
    create_collection,
    delete_collection,
    describe_collection,
    get_collection,
    list_collections,
)
from facegate.store.crypto import TemplateCodec
from facegate.store.faces import (
    delete_faces,
    faces_by_row_ids,
    find_indexed_image,
    get_faces,
    list_faces,
)
from facegate.store.subjects import (
    associate_faces,
    create_subject,
    delete_subject,
    disassociate_faces,
    erase_subject,
    get_subject,
    list_subjects,
)
from facegate.store.tables import FaceChangeRow, FaceRow, SubjectRow
from facegate.store.templates import templates_of
from tests.at_rest import RawCatalog
from tests.store.conftest import NOW, Photo, enroll, make_collection

Sessions = sessionmaker[Session]


def refused(code: ErrorCode) -> pytest.RaisesExc[FacegateError]:
    return pytest.raises(FacegateError, check=lambda e: e.code is code)


def changes(sessions: Sessions, collection_id: str = "people") -> list[tuple[int, str]]:
    with sessions.begin() as s:
        rows = s.execute(
            select(FaceChangeRow.face_row_id, FaceChangeRow.op)
            .where(FaceChangeRow.collection_id == collection_id)
            .order_by(FaceChangeRow.seq)
        )
        return [(r, op) for r, op in rows]


def test_collection_lifecycle_and_its_refusals(sessions: Sessions, template_id: str) -> None:
    made = make_collection(sessions, template_id)
    assert made.collection_id == "people" and made.template_id == template_id
    assert made.created_at == NOW
    with refused(ErrorCode.COLLECTION_EXISTS):
        make_collection(sessions, template_id)
    make_collection(sessions, template_id, "archive")
    with sessions.begin() as s:
        assert [c.collection_id for c in list_collections(s)] == ["archive", "people"]
        assert get_collection(s, collection_id="people") == made
        stats = describe_collection(s, collection_id="people")
        assert (stats.collection, stats.face_count, stats.subject_count) == (made, 0, 0)
        delete_collection(s, collection_id="people")
    with sessions.begin() as s:
        for operation in (get_collection, describe_collection, delete_collection):
            with refused(ErrorCode.COLLECTION_NOT_FOUND):
                operation(s, collection_id="people")
        assert [c.collection_id for c in list_collections(s)] == ["archive"]


@pytest.mark.parametrize("bad", ["", "a/b", "../etc", "has space", "x" * 129, "café", "a\x00"])
def test_collection_ids_outside_the_safe_alphabet_are_refused(
    sessions: Sessions, template_id: str, bad: str
) -> None:
    with refused(ErrorCode.INVALID_ARGUMENT):
        make_collection(sessions, template_id, bad)
    for good in ("a", "Missing-Persons_2020.v1", "x" * 128):
        make_collection(sessions, template_id, good)
    with sessions.begin() as s:
        assert len(list_collections(s)) == 3


def test_operations_leave_the_transaction_to_the_caller(sessions: Sessions, template_id: str) -> None:
    with sessions() as s:
        create_collection(
            s, collection_id="draft", model_id="m", template_id=template_id, dimension=128, now=NOW
        )
        s.rollback()
    with sessions.begin() as s:
        assert list_collections(s) == []


def test_added_faces_keep_what_the_pipeline_found(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    photo = photos["obama"]
    [stored] = enroll(sessions, photo, template_id, codec, subject_id="obama", external_image_id="o.jpg")
    face = photo.faces[0]
    assert (stored.box, stored.landmarks, stored.subject) == (face.box, face.landmarks, "obama")
    assert stored.confidence == pytest.approx(face.confidence)
    assert stored.quality == face.quality.to_dict()
    assert (stored.image_sha256, stored.external_image_id, stored.created_at) == (
        photo.sha256,
        "o.jpg",
        NOW,
    )
    assert "template" not in stored.to_dict() and stored.to_dict()["face_id"] == stored.face_id
    assert changes(sessions) == [(stored.row_id, "add")]
    with sessions.begin() as s:
        stats = describe_collection(s, collection_id="people")
        assert (stats.face_count, stats.subject_count) == (1, 1)
        assert get_faces(s, collection_id="people", face_ids=[stored.face_id]) == [stored]


def test_faces_of_another_model_or_collection_are_refused_and_change_nothing(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    photo = photos["obama"]
    with refused(ErrorCode.MODEL_MISMATCH):
        enroll(sessions, photo, "arcface-r100", codec, subject_id="obama")
    with refused(ErrorCode.COLLECTION_NOT_FOUND):
        enroll(sessions, photo, template_id, codec, collection_id="nobody")
    short = Photo(
        "short", photo.sha256, [replace(photo.faces[0], template=photo.faces[0].template[:64])]
    )
    with refused(ErrorCode.MODEL_MISMATCH):
        enroll(sessions, short, template_id, codec)
    zero = Photo("zero", photo.sha256, [replace(photo.faces[0], template=np.zeros(128, np.float32))])
    with refused(ErrorCode.INVALID_ARGUMENT):  # would break every later index build
        enroll(sessions, zero, template_id, codec)
    with sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(FaceRow)) == 0
        assert s.scalar(select(func.count()).select_from(SubjectRow)) == 0
    assert changes(sessions) == []


def test_an_indexed_image_is_found_again_by_hash_and_external_id(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    stored = enroll(sessions, photos["two_people"], template_id, codec, external_image_id="group.jpg")
    with sessions.begin() as s:
        sha = photos["two_people"].sha256
        again = find_indexed_image(
            s, collection_id="people", image_sha256=sha, external_image_id="group.jpg"
        )
        assert again == stored and len(again) == 2
        assert (
            find_indexed_image(s, collection_id="people", image_sha256=sha, external_image_id=None) == []
        )
        other = photos["obama"].sha256
        assert (
            find_indexed_image(
                s, collection_id="people", image_sha256=other, external_image_id="group.jpg"
            )
            == []
        )


def test_listing_pages_neither_repeat_nor_skip_while_faces_are_deleted(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    stored = [f for p in photos.values() for f in enroll(sessions, p, template_id, codec)]
    assert len(stored) == 12
    with sessions.begin() as s:
        first = list_faces(s, collection_id="people", limit=5)
        assert first.items == stored[:5] and first.next_token is not None
        delete_faces(s, collection_id="people", face_ids=[stored[2].face_id, stored[7].face_id])
    seen, token = list(first.items), first.next_token
    while token is not None:
        with sessions.begin() as s:
            page = list_faces(s, collection_id="people", limit=5, next_token=token)
        seen += page.items
        token = page.next_token
    assert seen == stored[:7] + stored[8:]
    with sessions.begin() as s:
        with refused(ErrorCode.INVALID_ARGUMENT):
            list_faces(s, collection_id="people", next_token="not-a-token")
        with refused(ErrorCode.INVALID_ARGUMENT):
            list_faces(s, collection_id="people", limit=0)
        assert list_faces(s, collection_id="people", limit=11).next_token is None


def test_get_faces_names_the_missing_ones(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    make_collection(sessions, template_id, "other")
    a = enroll(sessions, photos["obama"], template_id, codec)[0]
    b = enroll(sessions, photos["biden"], template_id, codec)[0]
    elsewhere = enroll(sessions, photos["powell1"], template_id, codec, collection_id="other")[0]
    with sessions.begin() as s:
        assert get_faces(s, collection_id="people", face_ids=[b.face_id, a.face_id]) == [b, a]
        with pytest.raises(FacegateError) as caught:
            get_faces(s, collection_id="people", face_ids=[a.face_id, elsewhere.face_id, "nope"])
        assert caught.value.code is ErrorCode.FACE_NOT_FOUND
        assert caught.value.details["face_ids"] == [elsewhere.face_id, "nope"]


def test_deleted_faces_leave_catalog_and_log_a_removal(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    a = enroll(sessions, photos["obama"], template_id, codec)[0]
    b = enroll(sessions, photos["biden"], template_id, codec)[0]
    with sessions.begin() as s:
        result = delete_faces(s, collection_id="people", face_ids=[a.face_id, "unknown", a.face_id])
    assert (result.deleted, result.unknown) == ([a.face_id], ["unknown"])
    assert changes(sessions) == [(a.row_id, "add"), (b.row_id, "add"), (a.row_id, "remove")]
    with sessions.begin() as s:
        # an index that still holds a's key can never turn it into a result
        assert faces_by_row_ids(s, collection_id="people", row_ids=[a.row_id, b.row_id]) == {b.row_id: b}
        assert describe_collection(s, collection_id="people").face_count == 1


def test_subjects_group_faces_and_count_them(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    with sessions.begin() as s:
        made = create_subject(
            s, collection_id="people", subject_id="case:17", now=NOW, attributes={"k": "v"}
        )
        assert (made.face_count, made.attributes) == (0, {"k": "v"})
        with refused(ErrorCode.SUBJECT_EXISTS):
            create_subject(s, collection_id="people", subject_id="case:17", now=NOW)
        with refused(ErrorCode.INVALID_ARGUMENT):
            create_subject(s, collection_id="people", subject_id="no spaces", now=NOW)
        with refused(ErrorCode.SUBJECT_NOT_FOUND):
            get_subject(s, collection_id="people", subject_id="nobody")
    p1, p2 = (
        enroll(sessions, photos[n], template_id, codec, subject_id="powell")[0]
        for n in ("powell1", "powell2")
    )
    loose = enroll(sessions, photos["powell3"], template_id, codec)[0]
    obama = enroll(sessions, photos["obama"], template_id, codec, subject_id="obama")[0]
    with sessions.begin() as s:
        joined = associate_faces(
            s,
            collection_id="people",
            subject_id="powell",
            face_ids=[loose.face_id, p1.face_id, obama.face_id, "gone"],
        )
        assert (joined.associated, joined.conflicting, joined.unknown) == (
            [loose.face_id, p1.face_id],
            [obama.face_id],
            ["gone"],
        )
        with refused(ErrorCode.SUBJECT_NOT_FOUND):
            associate_faces(s, collection_id="people", subject_id="nobody", face_ids=[loose.face_id])
    with sessions.begin() as s:
        assert get_subject(s, collection_id="people", subject_id="powell").face_count == 3
        page = list_subjects(s, collection_id="people", limit=2)
        assert [(x.subject_id, x.face_count) for x in page.items] == [("case:17", 0), ("powell", 3)]
        rest = list_subjects(s, collection_id="people", limit=2, next_token=page.next_token)
        assert [(x.subject_id, x.face_count) for x in rest.items] == [("obama", 1)]
        assert rest.next_token is None
        powell = list_faces(s, collection_id="people", subject_id="powell").items
        assert [f.face_id for f in powell] == [p1.face_id, p2.face_id, loose.face_id]
        assert {f.subject for f in powell} == {"powell"}


def test_deleting_a_subject_keeps_its_faces_and_names_them_in_enrolment_order(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    p1, p2 = (enroll(sessions, photos[n], template_id, codec, subject_id="powell")[0] for n in ("powell1", "powell2"))
    loose = enroll(sessions, photos["powell3"], template_id, codec)[0]
    with sessions.begin() as s:  # rewritten rows: a server's table no longer holds them in enrolment order
        assert disassociate_faces(s, collection_id="people", subject_id="powell", face_ids=[p1.face_id]).associated == [
            p1.face_id
        ]
        joined = associate_faces(s, collection_id="people", subject_id="powell", face_ids=[loose.face_id, p1.face_id])
        assert joined.associated == [loose.face_id, p1.face_id]
    with sessions.begin() as s:
        gone = delete_subject(s, collection_id="people", subject_id="powell")
        assert gone.face_ids == [p1.face_id, p2.face_id, loose.face_id]
        assert [(f.face_id, f.subject) for f in list_faces(s, collection_id="people").items] == [
            (p1.face_id, None), (p2.face_id, None), (loose.face_id, None),
        ]  # fmt: skip
        with refused(ErrorCode.SUBJECT_NOT_FOUND):
            get_subject(s, collection_id="people", subject_id="powell")
    assert changes(sessions) == [(f.row_id, "add") for f in (p1, p2, loose)]  # no face left the index


def test_erasing_a_subject_removes_it_and_all_its_faces(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    powell = [
        enroll(sessions, photos[n], template_id, codec, subject_id="powell")[0]
        for n in ("powell1", "powell2")
    ]
    obama = enroll(sessions, photos["obama"], template_id, codec, subject_id="obama")[0]
    with sessions.begin() as s:
        erased = erase_subject(s, collection_id="people", subject_id="powell")
    assert erased.face_ids == [f.face_id for f in powell]
    assert changes(sessions)[-2:] == [(powell[0].row_id, "remove"), (powell[1].row_id, "remove")]
    with sessions.begin() as s:
        assert [f.face_id for f in list_faces(s, collection_id="people").items] == [obama.face_id]
        assert faces_by_row_ids(s, collection_id="people", row_ids=[f.row_id for f in powell]) == {}
        assert [x.subject_id for x in list_subjects(s, collection_id="people").items] == ["obama"]
        with refused(ErrorCode.SUBJECT_NOT_FOUND):
            erase_subject(s, collection_id="people", subject_id="powell")


def test_templates_come_back_exactly_and_are_sealed_at_rest_with_a_key(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, tmp_path: Path, database_url: str | None
) -> None:
    codec = TemplateCodec(os.urandom(32))
    make_collection(sessions, template_id)
    powell = [
        enroll(sessions, photos[n], template_id, codec, subject_id="powell")[0]
        for n in ("powell1", "powell2")
    ]
    obama = enroll(sessions, photos["obama"], template_id, codec)[0]
    with sessions.begin() as s:
        got = templates_of(
            s, collection_id="people", codec=codec, face_ids=[obama.face_id, powell[0].face_id]
        )
        assert got.face_ids == [obama.face_id, powell[0].face_id]
        assert got.row_ids.tolist() == [obama.row_id, powell[0].row_id]
        np.testing.assert_array_equal(got.vectors[0], photos["obama"].faces[0].template)
        by_subject = templates_of(s, collection_id="people", codec=codec, subject_id="powell")
        assert by_subject.face_ids == [f.face_id for f in powell] and by_subject.vectors.shape == (
            2,
            128,
        )
        with refused(ErrorCode.INVALID_ARGUMENT):
            templates_of(s, collection_id="people", codec=codec)
        with refused(ErrorCode.FACE_NOT_FOUND):
            templates_of(s, collection_id="people", codec=codec, face_ids=["gone"])
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            templates_of(
                s, collection_id="people", codec=TemplateCodec(os.urandom(32)), subject_id="powell"
            )
    plain = photos["obama"].faces[0].template.astype(np.float32).tobytes()
    raw = RawCatalog(tmp_path, database_url)
    blobs = [bytes(b) for (b,) in raw.rows("SELECT template FROM faces")]
    assert len(blobs) == 3 and not any(plain[:64] in b for b in blobs)
    if raw.server:  # no searchable plaintext copy beside a sealed template
        assert [n for (n,) in raw.rows("SELECT count(*) FROM faces WHERE embedding IS NOT NULL")] == [0]
    sessions.kw["bind"].dispose()  # SQLite: checkpoint the log, then look at every byte at rest
    assert plain[:64] not in raw.stored_bytes()


def test_deleting_a_collection_takes_faces_subjects_and_log_with_it(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    make_collection(sessions, template_id)
    make_collection(sessions, template_id, "kept")
    enroll(sessions, photos["obama"], template_id, codec, subject_id="obama")
    enroll(sessions, photos["biden"], template_id, codec)
    kept = enroll(sessions, photos["powell1"], template_id, codec, collection_id="kept", subject_id="p")
    with sessions.begin() as s:
        gone = delete_collection(s, collection_id="people")
    assert (gone.face_count, gone.subject_count) == (2, 1)
    with sessions.begin() as s:
        for table in (FaceRow, SubjectRow, FaceChangeRow):
            assert s.scalar(select(func.count()).where(table.collection_id == "people")) == 0
        assert list_faces(s, collection_id="kept").items == kept
    assert changes(sessions, "kept") == [(kept[0].row_id, "add")]
    make_collection(sessions, template_id)
    with sessions.begin() as s:
        assert describe_collection(s, collection_id="people").face_count == 0
