"""Looking a key up is a read: it neither waits for nor holds the installation's write lock.

Every writing transaction takes that lock (SQLite's BEGIN IMMEDIATE; in server mode an
advisory lock that every host shares), so a key check that took it made each request,
a bad key's included, queue behind every writer of every host, and let a flood of bad keys
through one host fill the queue that audited writes through the others wait in. Here a
writer holds the lock (as another host's long transaction would) while keys are checked."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from facegate.engine import Facegate
from facegate.errors import ErrorCode
from facegate.gate import Caller
from facegate.operations import admin
from facegate.operations import console as console_ops
from facegate.service.admission import authenticate_header, binding_of
from facegate.service.errors import RequestRefused
from facegate.settings import Settings
from facegate.store.sealing import write_new_kek

WAIT = 10.0  # seconds; the lock is held far longer (until the checks are done)


@pytest.fixture()
def engine(tmp_path: Path, model_cache: Path, database_url: str | None) -> Iterator[Facegate]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    write_new_kek(tmp_path / "credentials.kek")
    made = Facegate(Settings(home=home, database_url=database_url, credentials_key_file=tmp_path / "credentials.kek"))
    yield made
    made.close()


def unblocked(call: Callable[[], Any]) -> Any:
    """`call()`'s result (or the error it raised), failing if it waits for the write lock."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(WAIT)
    assert not worker.is_alive(), "waited for the write lock another writer holds"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_keys_are_checked_while_another_writer_holds_the_lock(engine: Facegate) -> None:
    admin.new_tenant(engine, Caller(), "acme", "commercial", ["photo_library"])
    key = admin.new_key(engine, Caller(), "acme", purpose="photo_library")
    console = console_ops.sign_in(engine, key.key, "r1")
    revoked = admin.new_key(engine, Caller(), "acme")
    admin.drop_key(engine, Caller(), revoked.key_id)

    with engine.db.connect() as writer, writer.begin():  # takes the write lock as it begins
        writer.execute(text("SELECT 1"))
        assert unblocked(lambda: authenticate_header(engine, f"Bearer {key.key}")) == ("acme", key.key_id, None)
        assert unblocked(lambda: binding_of(engine, key.key_id)) == ("photo_library", None)
        assert unblocked(lambda: console_ops.signed_in(engine, console.token)).session.tenant == "acme"
        for bad in (f"fg_{key.key_id}_{'x' * 43}", revoked.key, "fg_0123456789abcdef_nope"):
            with pytest.raises(RequestRefused) as refused:
                unblocked(lambda bad=bad: authenticate_header(engine, f"Bearer {bad}"))
            assert refused.value.code is ErrorCode.UNAUTHENTICATED
