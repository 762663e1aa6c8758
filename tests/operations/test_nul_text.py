"""Text holding U+0000 (NUL), which PostgreSQL cannot store (SQLite can), is the caller's bad
input in server mode: INVALID_ARGUMENT with the refusal recorded, never a database error
answered 500 with nothing on the record (the service logged the whole statement)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import read_entries, verify
from facegate.operations import collections, faces
from facegate.settings import Settings


@pytest.fixture()
def server_engine(tmp_path: Path, model_cache: Path, postgres_url_factory) -> Facegate:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    return Facegate(Settings(home=home, database_url=postgres_url_factory()))


def last_entry(engine: Facegate) -> dict:
    with engine.sessions.begin() as session:
        return list(read_entries(session, limit=10_000))[-1]


def test_text_with_nul_is_refused_recorded_and_nothing_else_written(server_engine: Facegate, lfw: Path) -> None:
    engine = server_engine
    with pytest.raises(FacegateError) as refused:
        collections.create_collection(engine, Caller(), "people", description="ad\x00s")
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT and "NUL" in refused.value.message
    entry = last_entry(engine)
    assert (entry["operation"], entry["decision"], entry["details"]["error"]) == ("create_collection", "allow", "INVALID_ARGUMENT")
    assert collections.list_collections(engine, Caller()).value == []

    collections.create_collection(engine, Caller(), "people")
    photo = (lfw / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    with pytest.raises(FacegateError) as refused:
        faces.index_faces(engine, Caller(), "people", photo, external_image_id="ad\x00.jpg")
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
    entry = last_entry(engine)
    assert (entry["operation"], entry["details"]["error"]) == ("index", "INVALID_ARGUMENT")
    assert collections.describe_collection(engine, Caller(), "people").value.face_count == 0
    # a declared purpose with NUL cannot be recorded at all: refused before any decision
    with pytest.raises(FacegateError) as refused:
        collections.list_collections(engine, Caller(purpose="photo\x00library"))
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
    with engine.sessions.begin() as session:
        assert verify(session).ok
