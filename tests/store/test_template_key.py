"""The catalog's template key: recorded at creation, checked before any write, re-sealed by
`catalog rekey` (resumable after a failure half-way), on both backends. "Changes nothing"
means the catalog file byte for byte, or every row of the database (tests/at_rest.py)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
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
from facegate.store.db import CATALOG_FILE, open_engine, server_url, session_factory, sqlite_url
from tests.at_rest import RawCatalog
from tests.store.conftest import Photo, enroll, make_collection


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Place:
    """One installation: its data directory and, in server mode, its database."""

    home: Path
    database_url: str | None

    def engine(self, template_key: str | None, **kwargs: bool) -> Facegate:
        return Facegate(Settings(home=self.home, template_key=template_key, database_url=self.database_url), **kwargs)

    @property
    def raw(self) -> RawCatalog:
        return RawCatalog(self.home, self.database_url)

    def url(self) -> str:
        return sqlite_url(self.home) if self.database_url is None else server_url(self.database_url)


@pytest.fixture
def places(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Callable[[str], Place]:
    """`places(name)`: a new installation on this test's backend (a database of its own on a server)."""

    def make(name: str) -> Place:
        url = None if backend == "sqlite" else request.getfixturevalue("postgres_url_factory")()
        return Place(tmp_path / name, url)

    return make


@pytest.fixture
def place(places: Callable[[str], Place]) -> Place:
    return places("home")


def engine_for(place: Place, template_key: str | None, **kwargs: bool) -> Facegate:
    return place.engine(template_key, **kwargs)


def refused(code: ErrorCode) -> pytest.RaisesExc[FacegateError]:
    return pytest.raises(FacegateError, check=lambda e: e.code is code)


def digest(place: Place) -> str:
    return place.raw.digest()


def catalog_with_faces(place: Place, template_key: str | None, photos: dict[str, Photo], template_id: str,
                       names: tuple[str, ...] = ("obama", "biden", "powell1")) -> None:
    engine = engine_for(place, template_key)
    make_collection(engine.sessions, template_id)
    for name in names:
        enroll(engine.sessions, photos[name], template_id, engine.codec)
    engine.close()


def setting(place: Place, name: str) -> str | None:
    rows = place.raw.rows("SELECT value FROM catalog_settings WHERE name = :name", name=name)
    return rows[0][0] if rows else None


def templates(place: Place) -> list[bytes]:
    return [bytes(b) for (b,) in place.raw.rows("SELECT template FROM faces ORDER BY row_id")]


def test_a_new_catalog_records_its_key_fingerprint_and_is_private(places: Callable[[str], Place]) -> None:
    keyed, plain = places("keyed"), places("plain")
    secret = key()
    engine_for(keyed, secret).db.dispose()
    engine_for(plain, None).db.dispose()
    assert setting(keyed, "template_key") == TemplateCodec(base64.b64decode(secret)).fingerprint
    assert setting(keyed, "template_key").startswith("aes256gcm:")
    at_rest = keyed.raw.stored_bytes()
    assert secret.encode() not in at_rest and base64.b64decode(secret) not in at_rest
    assert setting(plain, "template_key") == "none"
    if keyed.database_url is None:  # the file is the catalog: only its owner may read it
        assert (keyed.home.stat().st_mode & 0o777, (keyed.home / CATALOG_FILE).stat().st_mode & 0o777) == (0o700, 0o600)
    else:  # the database is the catalog: nothing of it in the data directory
        assert not (keyed.home / CATALOG_FILE).exists() and not (plain.home / CATALOG_FILE).exists()


@pytest.mark.parametrize("stored, given", [("key", "other"), ("key", None), (None, "key")])
def test_a_process_with_the_wrong_key_refuses_and_changes_nothing(
    place: Place, photos: dict[str, Photo], template_id: str, stored: str | None, given: str | None
) -> None:
    keys = {"key": key(), "other": key(), None: None}
    catalog_with_faces(place, keys[stored], photos, template_id)
    before = digest(place)
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH) as caught:
        engine_for(place, keys[given]).db  # noqa: B018
    assert "nothing was written" in caught.value.message
    assert digest(place) == before


def _downgrade_to_v1(home: Path) -> None:
    """What a catalog written before the fingerprint looks like: revision 0001 only."""
    with sqlite3.connect(home / CATALOG_FILE) as db:
        db.execute("UPDATE alembic_version SET version_num = '0001'")
        db.execute("DROP TABLE catalog_settings")
        db.execute("DROP TABLE policy_versions")


def test_an_old_catalog_is_checked_against_its_templates_before_it_is_migrated(
    tmp_path: Path, photos: dict[str, Photo], template_id: str
) -> None:
    """SQLite only: catalogs from before the fingerprint are embedded data directories."""
    place = Place(tmp_path, None)
    secret = key()
    catalog_with_faces(place, secret, photos, template_id)
    _downgrade_to_v1(tmp_path)
    before = digest(place)
    for wrong in (None, key()):
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            engine_for(place, wrong).db  # noqa: B018
        assert digest(place) == before  # not even migrated
    engine_for(place, secret).db.dispose()
    assert setting(place, "template_key") == TemplateCodec(base64.b64decode(secret)).fingerprint


def test_a_catalog_left_mixed_by_the_old_bug_is_claimed_by_its_key_and_rekey_repairs_it(
    place: Place, photos: dict[str, Photo], template_id: str
) -> None:
    """The old bug left embedded catalogs mixed; `db copy` carries one to a server as it is."""
    secret, new = key(), key()
    catalog_with_faces(place, secret, photos, template_id, ("obama", "biden"))
    place.raw.execute("DELETE FROM catalog_settings")  # as migration step 4 leaves a mixed catalog
    engine = open_engine(place.url())  # what the bug did: an unkeyed process stored a plain one
    enroll(session_factory(engine), photos["powell1"], template_id, TemplateCodec(None))
    engine.dispose()
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):  # neither state is a third key's
        engine_for(place, key()).db  # noqa: B018
    owner = engine_for(place, secret, rekeying=True)
    report = rekey(owner, Caller(), base64.b64decode(new))
    assert (report.resealed, report.templates) == (3, 3)
    fresh = engine_for(place, new)
    assert fresh.vectors.search("people", photos["powell1"].faces[0].template[None, :], max_results=1)[0]
    if place.raw.server:  # the plain one's searchable copy went with its re-seal
        assert [n for (n,) in place.raw.rows("SELECT count(*) FROM faces WHERE embedding IS NOT NULL")] == [0]


def test_rekey_resumes_after_a_failure_half_way_and_is_audited(
    place: Place, photos: dict[str, Photo], template_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = key(), key()
    catalog_with_faces(place, old, photos, template_id, ("obama", "biden", "powell1", "sandler1"))
    monkeypatch.setattr(rekey_store, "BATCH", 1)

    def fail_after_two(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        rekey(engine_for(place, old, rekeying=True), Caller(), base64.b64decode(new), fail_after_two)
    new_codec = TemplateCodec(base64.b64decode(new))
    assert [new_codec.seals(b) for b in templates(place)] == [True, True, False, False]
    before = digest(place)
    for who in (old, new):  # half-way, nobody but the rekey may open the catalog
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            engine_for(place, who).db  # noqa: B018
    assert digest(place) == before
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):  # nor resume it towards another key
        rekey(engine_for(place, old, rekeying=True), Caller(), base64.b64decode(key()))
    report = rekey(engine_for(place, old, rekeying=True), Caller(), base64.b64decode(new))
    assert (report.resealed, report.templates) == (2, 4)
    engine = engine_for(place, new)
    for name in ("obama", "sandler1"):
        [hit] = engine.vectors.search("people", photos[name].faces[0].template[None, :], max_results=1)[0]
        assert hit.similarity > 0.99
    entries = place.raw.rows("SELECT details FROM audit_log WHERE operation = 'catalog_rekey' ORDER BY seq")
    phases = [(d.get("phase"), d.get("error")) for d in (json.loads(details) for (details,) in entries)]
    assert phases == [("start", None), (None, "TEMPLATE_KEY_MISMATCH"), ("start", None), ("finish", None)]


def test_a_running_process_cannot_write_under_a_key_replaced_meanwhile(
    place: Place, photos: dict[str, Photo], template_id: str
) -> None:
    old, new = key(), key()
    catalog_with_faces(place, old, photos, template_id, ("obama",))
    running = engine_for(place, old)
    running.db  # noqa: B018 - started before the rekey
    rekey(engine_for(place, old, rekeying=True), Caller(), base64.b64decode(new))
    with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
        enroll(running.sessions, photos["biden"], template_id, running.codec)
    assert [n for (n,) in place.raw.rows("SELECT count(*) FROM faces")] == [1]


def test_rekey_to_the_key_in_use_is_refused(place: Place) -> None:
    secret = key()
    with refused(ErrorCode.INVALID_ARGUMENT):
        rekey(engine_for(place, secret, rekeying=True), Caller(), base64.b64decode(secret))


def test_retention_cannot_erase_during_an_interrupted_rekey_and_erases_under_the_new_key_after(
    place: Place, photos: dict[str, Photo], template_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit line's retention erases faces; a rekey re-seals them. Half-way through a
    rekey a retention run is refused before it writes (the catalog is closed to all but the
    rekey); once the rekey is done, retention erases the aged faces under the new key, the
    faces it keeps are all sealed with it, and the audit chain verifies."""
    old, new = key(), key()
    catalog_with_faces(place, old, photos, template_id, ("obama", "biden", "powell1", "sandler1"))
    monkeypatch.setattr(rekey_store, "BATCH", 1)

    def fail_after_one(done: int, total: int) -> None:
        if done == 1:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        rekey(engine_for(place, old, rekeying=True), Caller(), base64.b64decode(new), fail_after_one)
    place.raw.execute("UPDATE collections SET retention_days = 1")
    before = digest(place)
    later = datetime.now(UTC) + timedelta(days=2)
    for who in (old, new):
        with refused(ErrorCode.TEMPLATE_KEY_MISMATCH):
            retention.apply(engine_for(place, who), Caller(request_id="retention"), at=later)
    assert digest(place) == before
    rekey(engine_for(place, old, rekeying=True), Caller(), base64.b64decode(new))
    engine = engine_for(place, new)
    recent = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    place.raw.execute(
        ("UPDATE faces SET created_at = :at", {"at": recent.isoformat(sep=" ")}),
        "UPDATE faces SET created_at = '2000-01-01 00:00:00' WHERE row_id = (SELECT min(row_id) FROM faces)",
    )
    run = retention.apply(engine, Caller(request_id="retention"), at=datetime.now(UTC))
    assert run.erased_faces == 1
    new_codec = TemplateCodec(base64.b64decode(new))
    blobs = templates(place)
    assert len(blobs) == 3 and all(new_codec.seals(b) for b in blobs)
    with engine.sessions() as session:
        assert verify(session).ok
