"""How often an operation takes the installation's write lock (SQLite's BEGIN IMMEDIATE; in
server mode the advisory lock every host shares): once, to act and record. The first
decision reads a snapshot; a denial is decided again under the lock and recorded there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import PolicyDenied, read_entries
from facegate.operations import admin, collections


@contextmanager
def lock_count(engine: Facegate) -> Iterator[list[str]]:
    """The write-lock statements run while the block runs."""
    taken: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement == "BEGIN IMMEDIATE" or "pg_advisory_xact_lock" in statement:
            taken.append(statement)

    event.listen(engine.db, "before_cursor_execute", seen)
    try:
        yield taken
    finally:
        event.remove(engine.db, "before_cursor_execute", seen)


def test_an_operation_takes_the_write_lock_once_allowed_or_denied(engine: Facegate) -> None:
    admin.new_tenant(engine, Caller(), "acme", "commercial", ["photo_library"])
    admin.new_tenant(engine, Caller(), "readers", "commercial", ["photo_library"], ["reviewer"])
    collections.create_collection(engine, Caller(tenant="acme", purpose="photo_library"), "people")
    with lock_count(engine) as taken:
        listed = collections.list_collections(engine, Caller(tenant="acme", purpose="photo_library"))
    assert [c.collection_id for c in listed.value] == ["people"]
    assert len(taken) == 1
    with lock_count(engine) as taken, pytest.raises(PolicyDenied) as denied:
        collections.list_collections(engine, Caller(tenant="readers", purpose="photo_library"))
    assert denied.value.code.value == "ROLE_REQUIRED"
    assert len(taken) == 1
    with engine.sessions.begin() as session:
        last = list(read_entries(session, limit=1000))[-1]
    assert (last["tenant"], last["decision"], last["code"]) == ("readers", "deny", "ROLE_REQUIRED")
