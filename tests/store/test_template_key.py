"""The catalog's template key: recorded at creation, checked before any write, re-sealed by
`catalog rekey` (resumable after a failure half-way)."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance.audit_verify import verify
from facegate.operations import retention
from facegate.operations.catalog_keys import rekey
from facegate.settings import Settings
from facegate.store import rekey as rekey_store
from facegate.store.crypto import TemplateCodec
from facegate.store.db import CATALOG_FILE, open_engine, session_factory, sqlite_url
from tests.store.conftest import Photo, enroll, make_collection


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def engine_for(home: Path, template_key: str | None, **kwargs: bool) -> Facegate:
    return Facegate(Settings(home=home, template_key=template_key), **kwargs)


def refused(code: ErrorCode) -> pytest.RaisesExc[FacegateError]:
    return pytest.raises(FacegateError, check=lambda e: e.code is code)


def digest(home: Path) -> str:
    return hashlib.sha256((home / CATALOG_FILE).read_bytes()).hexdigest()


def catalog_with_faces(home: Path, template_key: str | None, photos: dict[str, Photo], template_id: str,
                       names: tuple[str, ...] = ("obama", "biden", "powell1")) -> None:
    engine = engine_for(home, template_key)
    make_collection(engine.sessions, template_id)
    for name in names:
        enroll(engine.sessions, photos[name], template_id, engine.codec)
    engine.close()


def setting(home: Path, name: str) -> str | None:
    with sqlite3.connect(home / CATALOG_FILE) as db:
        row = db.execute("SELECT value FROM catalog_settings WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def test_a_new_catalog_records_its_key_fingerprint_and_is_private(tmp_path: Path) -> None:
    keyed, plain = tmp_path / "keyed", tmp_path / "plain"
    secret = key()
    engine_for(keyed, secret).db.dispose()
    engine_for(plain, None).db  # noqa: B018
    assert setting(keyed, "template_key") == TemplateCodec(base64.b64decode(secret)).fingerprint
    assert setting(keyed, "template_key").startswith("aes256gcm:")
    assert secret not in (keyed / CATALOG_FILE).read_bytes().decode("latin-1")
    assert setting(plain, "template_key") == "none"
    assert (keyed.stat().st_mode & 0o777, (keyed / CATALOG_FILE).stat().st_mode & 0o777) == (0o700, 0o600)


@pytest.mark.parametrize("stored, given", [("key", "other"), ("key", None), (None, "key")])
def test_a_process_with_the_wrong_key_refuses_and_changes_nothing(
    tmp_path: Path, photos: dict[str, Photo], template_id: str, stored: str | None, given: str | None
) -> None:
    keys = {"key": key(), "other": key(), None: None}
    catalog_with_faces(tmp_path, keys[stored], photos, template_id)
    before = digest(tmp_path)
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH) as caught:
        engine_for(tmp_path, keys[given]).db  # noqa: B018
    assert "nothing was written" in caught.value.message
    assert digest(tmp_path) == before


def _downgrade_to_v1(home: Path) -> None:
    """What a catalog written before the fingerprint looks like: revision 0001 only."""
    with sqlite3.connect(home / CATALOG_FILE) as db:
        db.execute("UPDATE alembic_version SET version_num = '0001'")
        db.execute("DROP TABLE catalog_settings")
        db.execute("DROP TABLE policy_versions")


def test_an_old_catalog_is_checked_against_its_templates_before_it_is_migrated(
    tmp_path: Path, photos: dict[str, Photo], template_id: str
) -> None:
    secret = key()
    catalog_with_faces(tmp_path, secret, photos, template_id)
    _downgrade_to_v1(tmp_path)
    before = digest(tmp_path)
    for wrong in (None, key()):
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            engine_for(tmp_path, wrong).db  # noqa: B018
        assert digest(tmp_path) == before  # not even migrated
    engine_for(tmp_path, secret).db.dispose()
    assert setting(tmp_path, "template_key") == TemplateCodec(base64.b64decode(secret)).fingerprint


def test_a_catalog_left_mixed_by_the_old_bug_is_claimed_by_its_key_and_rekey_repairs_it(
    tmp_path: Path, photos: dict[str, Photo], template_id: str
) -> None:
    secret, new = key(), key()
    catalog_with_faces(tmp_path, secret, photos, template_id, ("obama", "biden"))
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:  # as migration step 4 leaves a mixed catalog
        db.execute("DELETE FROM catalog_settings")
    engine = open_engine(sqlite_url(tmp_path))  # what the bug did: an unkeyed process stored a plain one
    enroll(session_factory(engine), photos["powell1"], template_id, TemplateCodec(None))
    engine.dispose()
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):  # neither state is a third key's
        engine_for(tmp_path, key()).db  # noqa: B018
    owner = engine_for(tmp_path, secret, rekeying=True)
    report = rekey(owner, Caller(), base64.b64decode(new))
    assert (report.resealed, report.templates) == (3, 3)
    fresh = engine_for(tmp_path, new)
    assert fresh.vectors.search("people", photos["powell1"].faces[0].template[None, :], max_results=1)[0]


def test_rekey_resumes_after_a_failure_half_way_and_is_audited(
    tmp_path: Path, photos: dict[str, Photo], template_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = key(), key()
    catalog_with_faces(tmp_path, old, photos, template_id, ("obama", "biden", "powell1", "sandler1"))
    monkeypatch.setattr(rekey_store, "BATCH", 1)

    def fail_after_two(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        rekey(engine_for(tmp_path, old, rekeying=True), Caller(), base64.b64decode(new), fail_after_two)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        blobs = [bytes(b) for (b,) in db.execute("SELECT template FROM faces ORDER BY row_id")]
    new_codec = TemplateCodec(base64.b64decode(new))
    assert [new_codec.seals(b) for b in blobs] == [True, True, False, False]
    before = digest(tmp_path)
    for who in (old, new):  # half-way, nobody but the rekey may open the catalog
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            engine_for(tmp_path, who).db  # noqa: B018
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):  # nor resume it towards another key
        rekey(engine_for(tmp_path, old, rekeying=True), Caller(), base64.b64decode(key()))
    report = rekey(engine_for(tmp_path, old, rekeying=True), Caller(), base64.b64decode(new))
    assert (report.resealed, report.templates) == (2, 4)
    engine = engine_for(tmp_path, new)
    for name in ("obama", "sandler1"):
        [hit] = engine.vectors.search("people", photos[name].faces[0].template[None, :], max_results=1)[0]
        assert hit.similarity > 0.99
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        phases = db.execute(
            "SELECT json_extract(details, '$.phase'), json_extract(details, '$.error') FROM audit_log WHERE operation = 'catalog_rekey' ORDER BY seq"
        ).fetchall()
    assert phases == [("start", None), (None, "TEMPLATE_KEY_MISMATCH"), ("start", None), ("finish", None)]


def test_a_running_process_cannot_write_under_a_key_replaced_meanwhile(
    tmp_path: Path, photos: dict[str, Photo], template_id: str
) -> None:
    old, new = key(), key()
    catalog_with_faces(tmp_path, old, photos, template_id, ("obama",))
    running = engine_for(tmp_path, old)
    running.db  # noqa: B018 - started before the rekey
    rekey(engine_for(tmp_path, old, rekeying=True), Caller(), base64.b64decode(new))
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
        enroll(running.sessions, photos["biden"], template_id, running.codec)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        assert db.execute("SELECT count(*) FROM faces").fetchone()[0] == 1


def test_rekey_to_the_key_in_use_is_refused(tmp_path: Path) -> None:
    secret = key()
    with refused(ErrorCode.INVALID_ARGUMENT):
        rekey(engine_for(tmp_path, secret, rekeying=True), Caller(), base64.b64decode(secret))


def test_retention_cannot_erase_during_an_interrupted_rekey_and_erases_under_the_new_key_after(
    tmp_path: Path, photos: dict[str, Photo], template_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit line's retention erases faces; a rekey re-seals them. Half-way through a
    rekey a retention run is refused before it writes (the catalog is closed to all but the
    rekey); once the rekey is done, retention erases the aged faces under the new key, the
    faces it keeps are all sealed with it, and the audit chain verifies."""
    old, new = key(), key()
    catalog_with_faces(tmp_path, old, photos, template_id, ("obama", "biden", "powell1", "sandler1"))
    monkeypatch.setattr(rekey_store, "BATCH", 1)

    def fail_after_one(done: int, total: int) -> None:
        if done == 1:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        rekey(engine_for(tmp_path, old, rekeying=True), Caller(), base64.b64decode(new), fail_after_one)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        db.execute("UPDATE collections SET retention_days = 1")
    before = digest(tmp_path)
    later = datetime.now(UTC) + timedelta(days=2)
    for who in (old, new):
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            retention.apply(engine_for(tmp_path, who), Caller(request_id="retention"), at=later)
    assert digest(tmp_path) == before
    rekey(engine_for(tmp_path, old, rekeying=True), Caller(), base64.b64decode(new))
    engine = engine_for(tmp_path, new)
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        recent = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
        db.execute("UPDATE faces SET created_at = ?", (recent.isoformat(sep=" "),))
        db.execute("UPDATE faces SET created_at = '2000-01-01 00:00:00' WHERE row_id = (SELECT min(row_id) FROM faces)")
    run = retention.apply(engine, Caller(request_id="retention"), at=datetime.now(UTC))
    assert run.erased_faces == 1
    new_codec = TemplateCodec(base64.b64decode(new))
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:
        blobs = [bytes(b) for (b,) in db.execute("SELECT template FROM faces")]
    assert len(blobs) == 3 and all(new_codec.seals(b) for b in blobs)
    with engine.sessions() as session:
        assert verify(session).ok
