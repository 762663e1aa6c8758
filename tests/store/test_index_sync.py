"""The vector index against the catalog: searches find enrolled people, never a deleted or
erased face, in this process or a later one, and a lost or damaged index file is rebuilt.

"Another process" is a second `VectorStore` over the same data directory: it shares
nothing in memory with the first, exactly like a second service worker.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.store import collection_indexes
from facegate.store.catalog import delete_collection
from facegate.store.crypto import TemplateCodec
from facegate.store.faces import StoredFace, delete_faces
from facegate.store.subjects import erase_subject
from facegate.store.tables import FaceRow
from facegate.store.collection_indexes import VectorStore, nearest
from facegate.store.index_sync import IndexSettings, _file_lock
from tests.store.conftest import Photo, enroll, make_collection

Sessions = sessionmaker[Session]
GALLERY = {
    "obama": "obama",
    "biden": "biden",
    "powell1": "powell",
    "powell2": "powell",
    "sandler1": "sandler",
    "pacino1": "pacino",
    "two_people": None,
}


def store(tmp_path: Path, sessions: Sessions, codec: TemplateCodec, **settings: object) -> VectorStore:
    return VectorStore(tmp_path, sessions, codec, IndexSettings(**settings))  # type: ignore[arg-type]


def fill(
    sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> list[StoredFace]:
    make_collection(sessions, template_id)
    return [
        face
        for name, subject in GALLERY.items()
        for face in enroll(sessions, photos[name], template_id, codec, subject_id=subject)
    ]


def probe(photos: dict[str, Photo], name: str) -> np.ndarray:
    return photos[name].faces[0].template[None, :]


def agrees_with_catalog(vectors: VectorStore, sessions: Sessions) -> bool:
    index = vectors.vectors("people").index
    with sessions.begin() as s:
        rows = s.scalars(select(FaceRow.row_id).where(FaceRow.collection_id == "people")).all()
    return index is not None and index.keys().tolist() == sorted(rows)


def test_a_search_finds_the_same_person_best_first(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    stored = fill(sessions, photos, template_id, codec)
    vectors = store(tmp_path, sessions, codec)
    [matches] = vectors.search("people", probe(photos, "powell3"), max_results=3)
    assert [m.face.subject for m in matches[:2]] == ["powell", "powell"]
    sims = [m.similarity for m in matches]
    assert sims == sorted(sims, reverse=True) and sims[1] > 0.9 > sims[2]
    by_row = {f.row_id: f for f in stored}
    expected = probe(photos, "powell3")[0] @ photos["powell1"].faces[0].template
    top = [m for m in matches if m.face.row_id == stored[2].row_id][0]
    assert top.similarity == pytest.approx(float(expected), abs=1e-5)
    assert all(m.face == by_row[m.face.row_id] for m in matches)
    [few] = vectors.search("people", probe(photos, "powell3"), max_results=5, min_similarity=0.9)
    assert {m.face.subject for m in few} == {"powell"}
    [others] = vectors.search(
        "people", probe(photos, "powell3"), max_results=2, exclude_row_ids=[stored[2].row_id]
    )
    assert others[0].face.row_id == stored[3].row_id and stored[2].row_id not in {
        m.face.row_id for m in others
    }
    assert vectors.vectors("people").index.kind == "exact"


def test_search_refuses_what_it_cannot_answer(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)
    vectors = store(tmp_path, sessions, codec)
    for bad, code in (("nobody", ErrorCode.COLLECTION_NOT_FOUND), ("../x", ErrorCode.INVALID_ARGUMENT)):
        with pytest.raises(FacegateError, check=lambda e, c=code: e.code is c):
            vectors.search(bad, probe(photos, "obama"), max_results=1)
    with pytest.raises(FacegateError, check=lambda e: e.code is ErrorCode.MODEL_MISMATCH):
        vectors.search("people", np.ones((1, 512), dtype=np.float32) / np.sqrt(512), max_results=1)


def test_deleted_and_erased_faces_never_come_back_even_after_a_restart(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    stored = fill(sessions, photos, template_id, codec)
    first = store(tmp_path, sessions, codec)
    assert {
        m.face.subject for m in first.search("people", probe(photos, "powell3"), max_results=20)[0]
    } >= {"powell"}
    first.persist("people")  # the file on disk still holds Powell and Obama
    with sessions.begin() as s:
        erase_subject(s, collection_id="people", subject_id="powell")
        delete_faces(s, collection_id="people", face_ids=[stored[0].face_id])
    gone = {stored[0].row_id, stored[2].row_id, stored[3].row_id}
    for vectors in (first, store(tmp_path, sessions, codec)):  # this process, then a "restart"
        for name in ("powell3", "obama2"):
            [matches] = vectors.search("people", probe(photos, name), max_results=20)
            assert len(matches) == len(stored) - 3
            assert not gone & {m.face.row_id for m in matches}
        assert agrees_with_catalog(vectors, sessions)
    assert store(tmp_path, sessions, codec).vectors("people").origin == "file"


def test_a_deleted_index_file_is_rebuilt_on_open(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)
    before = store(tmp_path, sessions, codec).search("people", probe(photos, "obama2"), max_results=5)
    path = tmp_path / "indexes" / "people.exact.idx"
    assert path.is_file()  # a fresh index is saved at once
    path.unlink()
    again = store(tmp_path, sessions, codec)
    assert again.search("people", probe(photos, "obama2"), max_results=5) == before
    assert again.vectors("people").origin == "rebuilt" and path.is_file()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "one_bit"])
def test_a_corrupted_index_file_is_rebuilt_on_open(
    tmp_path: Path,
    sessions: Sessions,
    photos: dict[str, Photo],
    template_id: str,
    codec: TemplateCodec,
    damage: str,
) -> None:
    fill(sessions, photos, template_id, codec)
    before = store(tmp_path, sessions, codec).search("people", probe(photos, "biden"), max_results=3)
    path = tmp_path / "indexes" / "people.exact.idx"
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"\x00not an index" * 50)
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    again = store(tmp_path, sessions, codec)
    assert again.search("people", probe(photos, "biden"), max_results=3) == before
    assert again.vectors("people").origin == "rebuilt"
    assert agrees_with_catalog(again, sessions)


def test_another_process_sees_new_faces_and_a_stale_file_catches_up(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)
    reader, writer = store(tmp_path, sessions, codec), store(tmp_path, sessions, codec)
    assert (
        reader.search("people", probe(photos, "sandler2"), max_results=1)[0][0].face.subject == "sandler"
    )
    [added] = enroll(sessions, photos["sandler2"], template_id, codec, subject_id="sandler")
    assert writer.refresh("people") == 0  # it opened after the commit: the open replayed it
    [match] = reader.search("people", probe(photos, "sandler2"), max_results=1)[0]
    assert match.face == added and match.similarity == pytest.approx(1.0, abs=1e-5)
    assert reader.refresh("people") == 0
    # nobody saved since the add: a new process loads the older file and replays the log
    later = store(tmp_path, sessions, codec)
    assert later.vectors("people").origin == "file"
    assert later.search("people", probe(photos, "sandler2"), max_results=1)[0][0].face == added
    assert agrees_with_catalog(later, sessions)


def test_refresh_applies_committed_changes_to_an_open_index(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    stored = fill(sessions, photos, template_id, codec)
    vectors = store(tmp_path, sessions, codec, autosave_every=2)
    vectors.refresh("people")
    saved = (tmp_path / "indexes" / "people.exact.idx").stat().st_mtime_ns
    enroll(sessions, photos["pacino2"], template_id, codec, subject_id="pacino")
    assert vectors.refresh("people") == 1
    with sessions.begin() as s:
        delete_faces(s, collection_id="people", face_ids=[f.face_id for f in stored[:2]])
    assert vectors.refresh("people") == 2  # two changes since the save: saved again
    assert (tmp_path / "indexes" / "people.exact.idx").stat().st_mtime_ns != saved
    assert vectors.vectors("people").unsaved == 0 and agrees_with_catalog(vectors, sessions)


def test_a_long_backlog_is_replayed_in_several_transactions(
    tmp_path: Path,
    sessions: Sessions,
    photos: dict[str, Photo],
    template_id: str,
    codec: TemplateCodec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = fill(sessions, photos, template_id, codec)
    vectors = store(tmp_path, sessions, codec)
    vectors.refresh("people")
    monkeypatch.setattr(collection_indexes, "_CHANGES_PER_TRANSACTION", 2)
    with sessions.begin() as s:
        delete_faces(s, collection_id="people", face_ids=[f.face_id for f in stored[3:]])
    enroll(sessions, photos["pacino2"], template_id, codec, subject_id="pacino")
    assert vectors.refresh("people") == 6  # 5 removals and an add, 2 per transaction
    assert agrees_with_catalog(vectors, sessions) and len(vectors.vectors("people").index) == 4


def test_index_writers_take_turns_across_processes(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)
    vectors = store(tmp_path, sessions, codec)
    vectors.refresh("people")
    path = tmp_path / "indexes" / "people.exact.idx"
    before = path.stat().st_mtime_ns
    with _file_lock(tmp_path / "indexes"):  # another writer holds the lock (flock, like a process)
        writer = threading.Thread(target=vectors.persist, args=("people",))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and path.stat().st_mtime_ns == before
    writer.join(10)
    assert not writer.is_alive() and path.stat().st_mtime_ns != before


def test_auto_kind_grows_into_hnsw_past_the_threshold(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)  # 8 faces
    vectors = store(tmp_path, sessions, codec, hnsw_threshold=9)
    assert vectors.vectors("people").index.kind == "exact"
    enroll(sessions, photos["pacino2"], template_id, codec, subject_id="pacino")
    vectors.refresh("people")
    assert vectors.vectors("people").index.kind == "hnsw" and agrees_with_catalog(vectors, sessions)
    assert sorted(p.name for p in (tmp_path / "indexes").glob("*.idx")) == ["people.hnsw.idx"]
    [matches] = vectors.search("people", probe(photos, "pacino2"), max_results=2)
    assert [m.face.subject for m in matches] == ["pacino", "pacino"]
    reopened = store(tmp_path, sessions, codec, hnsw_threshold=9)
    assert (
        reopened.vectors("people").origin == "file" and reopened.vectors("people").index.kind == "hnsw"
    )


def test_dropping_a_deleted_collection_removes_its_index_and_a_new_one_starts_clean(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)
    vectors, bystander = store(tmp_path, sessions, codec), store(tmp_path, sessions, codec)
    bystander.refresh("people")
    with sessions.begin() as s:
        delete_collection(s, collection_id="people")
    vectors.drop("people")
    assert list((tmp_path / "indexes").glob("*.idx")) == []
    with pytest.raises(FacegateError, check=lambda e: e.code is ErrorCode.COLLECTION_NOT_FOUND):
        bystander.search("people", probe(photos, "obama"), max_results=1)
    make_collection(sessions, template_id)
    [face] = enroll(sessions, photos["biden"], template_id, codec)
    for each in (vectors, bystander):
        [matches] = each.search("people", probe(photos, "obama"), max_results=10)
        assert [m.face for m in matches] == [face]


def test_a_stale_index_still_never_returns_a_deleted_face(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    stored = fill(sessions, photos, template_id, codec)
    collection = store(tmp_path, sessions, codec).vectors("people")
    with sessions.begin() as s:
        delete_faces(s, collection_id="people", face_ids=[stored[0].face_id])
    with sessions.begin() as s:  # no catch-up: the index still holds the deleted key
        assert stored[0].row_id in collection.index.keys()
        [matches] = nearest(collection, s, probe(photos, "obama2"), 3)
    assert len(matches) == 3 and stored[0].row_id not in {m.face.row_id for m in matches}


def test_a_save_sweeps_up_the_temp_file_of_a_killed_writer(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str, codec: TemplateCodec
) -> None:
    fill(sessions, photos, template_id, codec)
    vectors = store(tmp_path, sessions, codec)
    vectors.refresh("people")  # opens: a new index is saved at once, creating the directory
    leftover = tmp_path / "indexes" / ".people.exact.idx.k1ll3d.tmp"
    leftover.write_bytes(b"half an index")
    vectors.persist("people")
    assert not leftover.exists() and (tmp_path / "indexes" / "people.exact.idx").is_file()


def test_with_a_template_key_no_index_file_ever_holds_templates(
    tmp_path: Path, sessions: Sessions, photos: dict[str, Photo], template_id: str
) -> None:
    sealed = TemplateCodec(bytes(range(32)))
    fill(sessions, photos, template_id, sealed)
    (tmp_path / "indexes").mkdir()
    plain = tmp_path / "indexes" / "people.exact.idx"
    plain.write_bytes(b"written before the key was configured")
    vectors = store(tmp_path, sessions, sealed)
    assert (
        vectors.search("people", probe(photos, "powell3"), max_results=1)[0][0].face.subject == "powell"
    )
    with sessions.begin() as s:
        erase_subject(s, collection_id="people", subject_id="powell")
    vectors.close()
    assert list((tmp_path / "indexes").glob("*.idx")) == []
    restarted = store(tmp_path, sessions, sealed)
    [matches] = restarted.search("people", probe(photos, "powell3"), max_results=10)
    assert "powell" not in {m.face.subject for m in matches} and len(matches) == 6
    assert restarted.vectors("people").origin == "rebuilt"
    with pytest.raises(FacegateError, check=lambda e: e.code is ErrorCode.TEMPLATE_KEY_MISMATCH):
        store(tmp_path, sessions, TemplateCodec(bytes(32))).search(
            "people", probe(photos, "obama"), max_results=1
        )
