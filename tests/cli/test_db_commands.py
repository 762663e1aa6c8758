"""`facegate db migrate`, `db copy` and `db credentials-key` through the real CLI, against a
real PostgreSQL.

An embedded installation made through the CLI from real photos (tenants, a key with AWS
credentials, a collection keeping thumbnails, faces, an erased face, searches with leads,
a signed checkpoint) is copied to an empty database: every row with its ids, the audit
chain verifying there, the pgvector column filled, sequences past every id ever used; then
a server-mode engine serves the copy. A target that holds anything is refused unchanged."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, make_url, text

from facegate.cli import main
from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import authenticate
from facegate.operations import audit, search
from facegate.operations.catalog_copy import copy_to_server
from facegate.settings import Settings
from facegate.store.catalog_copy import tables
from facegate.store.db import open_engine, server_url
from facegate.store.migrations import head
from tests.conftest import LFW

GALLERY = "gallery"


def photo(person: str, n: int) -> str:
    return str(LFW / person / f"{person}_{n:04d}.jpg")


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def rows(home: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "catalog.sqlite3") as db:
        return db.execute(query).fetchall()


def target_rows(engine: Engine, query: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(query))]


@dataclass(frozen=True)
class Installation:
    home: Path
    key: str
    face_ids: list[str]
    erased: str


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Installation:
    root = tmp_path_factory.mktemp("embedded")
    home = root / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    at = ("--data-dir", str(home))
    assert run("tenant", "create", "ngo-a", "--sector", "commercial", "--purposes", "photo_library", *at)[0] == 0
    assert run("tenant", "create", "ngo-b", "--sector", "nonprofit", *at)[0] == 0
    code, key = run("key", "create", "ngo-a", "--holder", "Ada", *at)
    assert code == 0 and key["aws_access_key_id"]
    assert run("collection", "create", GALLERY, "--keep-thumbnails", *at)[0] == 0
    code, tony = run("index", GALLERY, photo("Tony_Blair", 1), photo("Tony_Blair", 2), "--subject", "tony", *at)
    assert code == 0
    code, colin = run("index", GALLERY, photo("Colin_Powell", 1), photo("Colin_Powell", 2), "--subject", "colin", *at)
    assert code == 0
    face_ids = [f["face_id"] for f in tony["indexed"] + colin["indexed"]]
    erased = face_ids.pop()  # the highest row id: the copy must never hand it out again
    assert run("faces", "delete", GALLERY, erased, *at)[0] == 0
    assert run("search", GALLERY, photo("Tony_Blair", 3), "--purpose", "account_deduplication", *at)[0] == 0
    assert run("search", GALLERY, "--face-id", face_ids[2], *at)[0] == 0
    signing_key = root / "audit-key.pem"
    assert run("audit", "keygen", "--out", str(signing_key))[0] == 0
    assert run("audit", "checkpoint", *at, env={"FACEGATE_AUDIT_SIGNING_KEY": str(signing_key)})[0] == 0
    assert run("collection", "list", *at)[0] == 0  # the log goes on after the checkpoint
    assert rows(home, "SELECT count(*) FROM reviews")[0][0] >= 1
    return Installation(home, str(key["key"]), face_ids, erased)


def copy(home: Path, url: str) -> tuple[int, dict]:
    return run("db", "copy", "--to", url, "--data-dir", str(home))


def test_db_migrate_reports_its_revisions_on_both_backends(
    tmp_path: Path, postgres_url_factory: Callable[..., str]
) -> None:
    home = tmp_path / "home"
    assert run("db", "migrate", "--data-dir", str(home)) == (
        0, {"backend": "sqlite", "from": None, "to": head(), "database": str(home / "catalog.sqlite3")})
    assert run("db", "migrate", "--data-dir", str(home))[1]["from"] == head()
    url = make_url(postgres_url_factory(migrated=False)).set(password="s3cret-pw")  # trust auth ignores it
    shown = url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["db", "migrate", "--database-url", shown, "--data-dir", str(home), "--json"])
    assert result.exit_code == 1 and "not both" in result.stdout
    for args, env in ((["--database-url", shown], {}), ([], {"FACEGATE_DATABASE_URL": shown})):
        result = CliRunner().invoke(main, ["db", "migrate", *args, "--json"], env={**env, "FACEGATE_HOME": str(home)})
        assert result.exit_code == 0, result.output
        assert "s3cret-pw" not in result.output
        payload = json.loads(result.stdout)
        assert payload["backend"] == "postgresql" and payload["to"] == head() and "***" in payload["database"]
    human = CliRunner().invoke(main, ["db", "migrate", "--database-url", shown])
    assert human.exit_code == 0 and f"already at revision {head()}" in human.stdout and "s3cret-pw" not in human.output


def test_an_embedded_installation_copies_to_postgresql_and_serves_from_there(
    installation: Installation, postgres_url_factory: Callable[..., str], tmp_path: Path, model_cache: Path,
) -> None:
    home = installation.home
    source_counts = {t.name: rows(home, f"SELECT count(*) FROM {t.name}")[0][0] for t in tables()}
    url = postgres_url_factory(migrated=False)
    code, report = copy(home, url)
    assert code == 0, report
    assert report["target_revision"] == head() and report["to"] == make_url(url).render_as_string(hide_password=True)
    copied_entries = source_counts["audit_log"] + 1  # the copy carries the entry that starts it
    assert report["rows"] == {**source_counts, "audit_log": copied_entries}
    assert report["audit"]["ok"] and report["audit"]["entries"] == copied_entries
    # the source records the copy: its start (which the copy carries), then its finish
    recorded = rows(home, "SELECT seq, tenant, decision, details FROM audit_log WHERE operation = 'catalog_copy'")
    assert [(seq, tenant, decision) for seq, tenant, decision, _ in recorded] == [
        (copied_entries, "local", "allow"), (copied_entries + 1, "local", "allow")]
    start, finish = (json.loads(details) for *_, details in recorded)
    assert (start["phase"], start["to"]) == ("start", report["to"])  # as printed: the password hidden
    assert (finish["phase"], finish["to"], finish["rows"]) == ("finish", report["to"], report["rows"])
    assert report["embeddings"] == source_counts["faces"] == len(installation.face_ids)
    assert report["credentials_key_file"] == str(home / "credentials.kek")
    target = open_engine(server_url(url))
    try:
        for query in (  # ids, hashes and bytes as they were
            "SELECT row_id, face_id, collection_id, subject_row_id, template, thumbnail FROM faces ORDER BY row_id",
            "SELECT seq, collection_id, face_row_id, op FROM face_changes ORDER BY seq",
            f"SELECT seq, time, entry_hash, prev_hash, results, details FROM audit_log WHERE seq <= {copied_entries} "
            "ORDER BY seq",
            "SELECT checkpoint_id, seq, checkpoint_hash, document FROM audit_checkpoints",
            "SELECT review_id, audit_seq, face_id, status, probe_thumbnail FROM reviews ORDER BY review_id",
            "SELECT key_id, tenant, secret_sha256, holder, aws_access_key_id, aws_secret_sealed FROM api_keys",
            "SELECT name, value FROM catalog_settings WHERE name = 'template_key'",
        ):
            copied = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in target_rows(target, query)]
            assert copied == rows(home, query), query
        assert target_rows(target, "SELECT seq, entry_hash FROM audit_head") == rows(
            home, f"SELECT seq, entry_hash FROM audit_log WHERE seq = {copied_entries}")
        # times: naive UTC text in SQLite, the same instant (aware, UTC) in PostgreSQL
        (created,) = rows(home, f"SELECT created_at FROM collections WHERE collection_id = '{GALLERY}'")[0]
        (copied,) = target_rows(target, f"SELECT created_at FROM collections WHERE collection_id = '{GALLERY}'")[0]
        assert copied.tzinfo is not None and copied.astimezone(UTC).replace(tzinfo=None).isoformat(" ") == created
        # the pgvector column holds each plain template exactly
        for row_id, template, embedding in target_rows(
                target, "SELECT row_id, template, embedding::text FROM faces ORDER BY row_id"):
            assert np.array_equal(np.frombuffer(bytes(template), dtype=np.float32),
                                  np.array(json.loads(embedding), dtype=np.float32)), row_id
        # the HNSW index, dropped for the load, is there again
        assert target_rows(target, "SELECT indexname FROM pg_indexes WHERE tablename = 'faces' "
                                   "AND indexdef LIKE '%hnsw%'") == [("ix_faces_halfvec_hnsw_128",)]
        # no id is ever handed out again, not even the erased face's
        (highest_face,) = rows(home, "SELECT seq FROM sqlite_sequence WHERE name = 'faces'")[0]
        assert report["next_ids"]["faces.row_id"] == highest_face + 1
        assert target_rows(target, "SELECT nextval(pg_get_serial_sequence('faces', 'row_id'))") == [(highest_face + 1,)]
    finally:
        target.dispose()

    # `facegate audit verify` on the copy, and a server-mode engine serving it
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    (server_home / "models").symlink_to(model_cache, target_is_directory=True)
    code, verified = run("audit", "verify", "--data-dir", str(server_home), env={"FACEGATE_DATABASE_URL": url})
    assert code == 0 and verified["ok"] and verified["entries"] == copied_entries
    engine = Facegate(Settings(home=server_home, database_url=url, credentials_key_file=home / "credentials.kek"))
    try:
        with engine.sessions() as session:
            view, _ = authenticate(session, installation.key, engine.now())
        assert view.name == "ngo-a"
        found = search.search_face(engine, Caller(), GALLERY, installation.face_ids[0]).value
        assert installation.face_ids[1] in {m.face_id for m in found.matches}
        assert installation.erased not in {m.face_id for m in found.matches}
        assert audit.verify_chain(engine, Caller()).ok
    finally:
        engine.close()


def test_a_target_that_holds_anything_is_refused_and_left_unchanged(
    installation: Installation, postgres_url_factory: Callable[..., str],
) -> None:
    url = postgres_url_factory()  # migrated
    target = open_engine(server_url(url))
    try:
        with target.begin() as conn:
            conn.execute(text("INSERT INTO tenants (name, sector, status, roles, created_at) "
                              "VALUES ('already-here', 'nonprofit', 'active', '[]', now())"))
        before = {t.name: target_rows(target, f"SELECT count(*) FROM {t.name}") for t in tables()}
        result = CliRunner().invoke(main, ["db", "copy", "--to", url, "--data-dir", str(installation.home), "--json"])
        assert result.exit_code == 1
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "DATABASE_NOT_EMPTY" and "tenants (1)" in error["message"]
        assert "nothing was written" in error["message"] and error["tables"] == {"tenants": 1}
        assert {t.name: target_rows(target, f"SELECT count(*) FROM {t.name}") for t in tables()} == before
        human = CliRunner().invoke(main, ["db", "copy", "--to", url, "--data-dir", str(installation.home)])
        assert human.exit_code == 1 and "DATABASE_NOT_EMPTY" in human.stderr
        started = rows(installation.home, "SELECT details FROM audit_log WHERE operation = 'catalog_copy'")
        assert [json.loads(d)["to"] for (d,) in started].count(make_url(url).render_as_string(hide_password=True)) == 0
    finally:
        target.dispose()


def test_a_keyed_installation_copies_sealed_and_leaves_the_pgvector_column_empty(
    tmp_path: Path, model_cache: Path, postgres_url_factory: Callable[..., str],
) -> None:
    home = tmp_path / "keyed"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    keyed = {"FACEGATE_TEMPLATE_KEY": base64.b64encode(os.urandom(32)).decode()}
    assert run("collection", "create", GALLERY, "--data-dir", str(home), env=keyed)[0] == 0
    assert run("index", GALLERY, photo("Tony_Blair", 1), "--data-dir", str(home), env=keyed)[0] == 0
    url = postgres_url_factory(migrated=False)
    code, refused = run("db", "copy", "--to", url, "--data-dir", str(home))  # without the key: refused
    assert code == 1 and refused["error"]["code"] == "TEMPLATE_KEY_MISMATCH"
    code, report = run("db", "copy", "--to", url, "--data-dir", str(home), env=keyed)
    assert code == 0 and report["rows"]["faces"] == 1 and report["embeddings"] == 0 and report["audit"]["ok"]
    target = open_engine(server_url(url))
    try:
        assert target_rows(target, "SELECT embedding IS NULL FROM faces") == [(True,)]
    finally:
        target.dispose()


def test_copy_refuses_what_is_not_a_postgresql_url_or_a_data_directory(tmp_path: Path) -> None:
    code, out = run("db", "copy", "--to", "sqlite:///elsewhere.db", "--data-dir", str(tmp_path))
    assert code == 1 and out["error"]["code"] == "INVALID_SETTINGS" and "--to" in out["error"]["message"]
    code, out = run("db", "copy", "--to", "postgresql://u:pw@localhost/x", "--data-dir", str(tmp_path / "none"))
    assert code == 1 and out["error"]["code"] == "FILE_NOT_FOUND" and "pw" not in json.dumps(out)


def test_credentials_key_makes_a_private_key_file_once(tmp_path: Path) -> None:
    out = tmp_path / "credentials.kek"
    assert run("db", "credentials-key", "--out", str(out)) == (0, {"credentials_key_file": str(out)})
    assert out.stat().st_mode & 0o777 == 0o600 and len(base64.b64decode(out.read_bytes().strip())) == 32
    key = out.read_bytes()
    code, again = run("db", "credentials-key", "--out", str(out))
    assert code == 1 and again["error"]["code"] == "INVALID_ARGUMENT" and out.read_bytes() == key
    engine = Facegate(Settings(home=tmp_path, database_url="postgresql://u@localhost/x", credentials_key_file=out))
    assert engine.secret_box.open(engine.secret_box.seal("s3cret", "AKFG"), "AKFG") == "s3cret"


def test_a_copy_whose_chain_does_not_verify_exits_1_and_says_whether_the_source_was_broken(
    tmp_path: Path, postgres_url_factory: Callable[..., str],
) -> None:
    home = tmp_path / "home"
    for name in ("one", "two"):
        assert run("collection", "create", name, "--data-dir", str(home))[0] == 0
    with sqlite3.connect(home / "catalog.sqlite3") as db:  # an intruder edited an entry before the move
        db.execute("UPDATE audit_log SET collection = 'three' WHERE seq = 1")
    code, report = copy(home, postgres_url_factory(migrated=False))
    assert code == 1 and report["rows"]["audit_log"] == 3  # a faithful copy (its start entry too), which says so
    assert (report["audit"]["ok"], report["audit"]["first_bad_entry"]) == (False, 1)
    assert report["source_audit"]["ok"] is False


def test_a_copy_the_server_refuses_is_on_the_sources_record_with_its_code(
    tmp_path: Path, postgres_url_factory: Callable[..., str],
) -> None:
    home = tmp_path / "home"
    assert run("tenant", "create", "ngo", "--sector", "nonprofit", "--data-dir", str(home))[0] == 0
    with sqlite3.connect(home / "catalog.sqlite3") as db:  # SQLite never checked the length; PostgreSQL does
        db.execute("UPDATE tenants SET sector = ? WHERE name = 'ngo'", ("x" * 65,))
    url = postgres_url_factory(migrated=False)
    code, out = copy(home, url)
    assert code == 1 and out["error"]["code"] == "INTERNAL" and "tenants" in out["error"]["message"]
    recorded = rows(home, "SELECT details FROM audit_log WHERE operation = 'catalog_copy' ORDER BY seq")
    assert [(d["phase"], d.get("error")) for d in (json.loads(r) for (r,) in recorded)] == [
        ("start", None), ("finish", "INTERNAL")]
    target = open_engine(server_url(url))
    try:
        assert target_rows(target, "SELECT count(*) FROM audit_log") == [(0,)]  # nothing written there
    finally:
        target.dispose()


def test_a_copy_interrupted_midway_still_finishes_its_record(
    tmp_path: Path, postgres_url_factory: Callable[..., str],
) -> None:
    """Ctrl-C during the copy (here from its progress callback, after the first batch): the
    source's record is finished as INTERRUPTED, the interrupt reaches the caller, and the
    target holds nothing."""
    home = tmp_path / "home"
    assert run("collection", "create", "one", "--data-dir", str(home))[0] == 0
    source = Facegate(Settings(home=home, database_url=None))
    url = postgres_url_factory()
    target = open_engine(server_url(url))

    def press_ctrl_c(what: str, done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            copy_to_server(source, Caller(), target, "postgresql://somewhere/else", batch=10, progress=press_ctrl_c)
        assert target_rows(target, "SELECT count(*) FROM audit_log") == [(0,)]
    finally:
        target.dispose()
        source.close()
    recorded = rows(home, "SELECT details FROM audit_log WHERE operation = 'catalog_copy' ORDER BY seq")
    assert [(d["phase"], d.get("error"), d["to"]) for d in (json.loads(r) for (r,) in recorded)] == [
        ("start", None, "postgresql://somewhere/else"), ("finish", "INTERRUPTED", "postgresql://somewhere/else")]
