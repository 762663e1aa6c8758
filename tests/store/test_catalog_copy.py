"""The copy of an embedded catalog into PostgreSQL (store/catalog_copy.py) at the level of
rows: values cross as stored (a JSON `null` stays distinct from SQL NULL), a queued video
search's upload moves from the data directory into the database, and a row the server
refuses stops the copy with the table named and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog_copy import copy_catalog, occupied
from facegate.store.crypto import TemplateCodec
from facegate.store.db import open_engine, server_url, sqlite_url
from facegate.store.migrations import migrate
from tests.store.conftest import NOW


def _source(tmp_path: Path, sector: str = "nonprofit") -> str:
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants VALUES ('t', :sector, 'active', '[\"operator\"]', :now)"),
                     {"sector": sector, "now": NOW})
        conn.execute(text("INSERT INTO collections (collection_id, description, model_id, template_id, dimension, "
                          "created_at, keep_thumbnails) VALUES ('c', '', 'm', 't', 128, :now, 0)"), {"now": NOW})
        for grantee, purposes in (("sql-null", None), ("json-null", "null"), ("listed", '["research"]')):
            conn.execute(text("INSERT INTO collection_grants (collection_id, grantee, operation, purposes, "
                              "granted_by, granted_at) VALUES ('c', :g, 'search', :p, 'local', :now)"),
                         {"g": grantee, "p": purposes, "now": NOW})
    engine.dispose()
    return sqlite_url(tmp_path)


def test_json_values_cross_as_stored(tmp_path: Path, postgres_url_factory: Callable[..., str]) -> None:
    source, target = open_engine(_source(tmp_path)), open_engine(server_url(postgres_url_factory()))
    try:
        report = copy_catalog(source, target, TemplateCodec(None))
        assert report.rows["collection_grants"] == 3 and report.rows["tenants"] == 1
        with target.connect() as conn:
            found = conn.execute(text("SELECT grantee, purposes IS NULL, purposes::text FROM collection_grants "
                                      "ORDER BY row_id")).all()
            next_grant = conn.execute(text("SELECT nextval(pg_get_serial_sequence('collection_grants', 'row_id'))"))
            assert next_grant.scalar() == 4
        assert [tuple(r) for r in found] == [("sql-null", True, None), ("json-null", False, "null"),
                                             ("listed", False, '["research"]')]
    finally:
        source.dispose()
        target.dispose()


def test_a_row_the_server_refuses_stops_the_copy_with_nothing_written(
    tmp_path: Path, postgres_url_factory: Callable[..., str]
) -> None:
    """SQLite never checked string lengths; PostgreSQL does."""
    source, target = open_engine(_source(tmp_path, sector="x" * 65)), open_engine(server_url(postgres_url_factory()))
    try:
        with pytest.raises(FacegateError) as refused:
            copy_catalog(source, target, TemplateCodec(None))
        assert refused.value.code is ErrorCode.INTERNAL and refused.value.details == {"table": "tenants"}
        assert "refused a row of tenants" in refused.value.message and "x" * 65 not in refused.value.message
        with target.connect() as conn:
            assert occupied(conn) == {}
    finally:
        source.dispose()
        target.dispose()


def test_a_queued_video_search_takes_its_upload_into_the_database(
    tmp_path: Path, postgres_url_factory: Callable[..., str]
) -> None:
    source = open_engine(_source(tmp_path))
    video = tmp_path / "uploads" / "queued.mp4"
    video.parent.mkdir()
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with source.begin() as conn:
        for job_id, status, path in (("queued1", "queued", str(video)), ("done1", "succeeded", str(tmp_path / "gone"))):
            conn.execute(text(
                "INSERT INTO video_jobs (job_id, request_id, collection_id, fps, status, progress, attempts, "
                "video_path, video_sha256, video_bytes, created_at, updated_at) "
                "VALUES (:j, 'r', 'c', 4.0, :s, 0, 0, :p, 'x', 1, :now, :now)"), {"j": job_id, "s": status, "p": path, "now": NOW})
    target = open_engine(server_url(postgres_url_factory()))
    try:
        report = copy_catalog(source, target, TemplateCodec(None))
        assert report.uploads == 1 and report.rows["video_jobs"] == 2
        with target.connect() as conn:
            jobs = conn.execute(text("SELECT job_id, video_path FROM video_jobs ORDER BY job_id")).all()
            uploads = conn.execute(text("SELECT job_id, content FROM video_uploads")).all()
        assert [tuple(j) for j in jobs] == [("done1", str(tmp_path / "gone")), ("queued1", "database:queued1")]
        assert [(j, bytes(c)) for j, c in uploads] == [("queued1", video.read_bytes())]
        assert video.is_file()  # the data directory keeps its own
    finally:
        source.dispose()
        target.dispose()
