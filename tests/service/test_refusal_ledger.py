"""Aggregated audit entries for refusals before authentication, on a real engine and catalog
with a clock the test moves: one entry opens each address's minute, one closes it with the
count, and the chain still verifies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Operation
from facegate.governance.audit import AuditEntry, MatchRef, append_entry
from facegate.governance.audit_verify import verify
from facegate.operations import retention
from facegate.service.refusals import RefusalLedger
from facegate.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # on a minute boundary

    def __call__(self) -> float:
        return self.now


def entries(engine: Facegate) -> list[dict[str, Any]]:
    """The audit log as stored (either backend)."""
    with engine.db.connect() as db:
        return [dict(r) for r in db.execute(text("SELECT * FROM audit_log ORDER BY seq")).mappings()]


def rows(engine: Facegate) -> list[tuple[str, str, dict[str, object]]]:
    return [(e["code"], e["request_id"], json.loads(e["details"])) for e in entries(engine)]


def test_one_entry_opens_a_minute_and_one_closes_it_with_the_count(settings: Settings) -> None:
    engine, clock = Facegate(settings), Clock()
    ledger = RefusalLedger(lambda: engine.gate, clock)
    bad_key = FacegateError(ErrorCode.UNAUTHENTICATED, "unknown key")
    limited = FacegateError(ErrorCode.RATE_LIMITED, "too many")
    for i in range(500):
        ledger.refused("127.0.0.9", Operation.LIST, bad_key if i < 30 else limited, f"r{i}")
        clock.now += 0.1  # 500 refusals in 50 seconds
    ledger.refused("127.0.0.8", Operation.SEARCH_IMAGE, bad_key, "other")
    assert [(code, rid) for code, rid, _ in rows(engine)] == [("UNAUTHENTICATED", "r0"), ("UNAUTHENTICATED", "other")]
    assert ledger.flush() == 0  # the minute is not over: nothing to close
    clock.now += 15
    assert ledger.flush() == 2
    written = rows(engine)
    assert len(written) == 3  # the lone refusal of .8 is fully told by its opening entry
    code, _, closed = written[2]
    assert code == "RATE_LIMITED"  # the most frequent code of the minute
    assert closed == {"aggregated": "closed", "client": "127.0.0.9", "count": 500,
                      "codes": {"UNAUTHENTICATED": 30, "RATE_LIMITED": 470},
                      "window_start": "2027-01-15T08:00:00+00:00"}
    with engine.sessions() as session:
        assert verify(session).ok


def test_a_refusal_in_a_new_minute_closes_the_old_one_first(settings: Settings) -> None:
    engine, clock = Facegate(settings), Clock()
    ledger = RefusalLedger(lambda: engine.gate, clock)
    bad_key = FacegateError(ErrorCode.UNAUTHENTICATED, "unknown key")
    for _ in range(3):
        ledger.refused("127.0.0.9", Operation.LIST, bad_key, "a")
    clock.now += 60
    ledger.refused("127.0.0.9", Operation.LIST, bad_key, "b")
    phases = [(d["aggregated"], d["count"]) for _, _, d in rows(engine)]
    assert phases == [("open", 1), ("closed", 3), ("open", 1)]
    ledger.flush(everything=True)  # shutdown: a window with one refusal adds nothing
    assert len(rows(engine)) == 3


def test_the_flood_gate_counts_only_into_a_window_already_on_record(settings: Settings) -> None:
    engine, clock = Facegate(settings), Clock()
    ledger = RefusalLedger(lambda: engine.gate, clock)
    assert not ledger.count_if_open("127.0.0.9", ErrorCode.RATE_LIMITED)  # must go the recorded way
    ledger.refused("127.0.0.9", Operation.LIST, FacegateError(ErrorCode.UNAUTHENTICATED, "no key"), "a")
    assert all(ledger.count_if_open("127.0.0.9", ErrorCode.RATE_LIMITED) for _ in range(99))
    clock.now += 60
    assert not ledger.count_if_open("127.0.0.9", ErrorCode.RATE_LIMITED)  # a new minute opens on record
    ledger.flush()
    [_, (_, _, closed)] = rows(engine)
    assert (closed["count"], closed["codes"]) == (100, {"UNAUTHENTICATED": 1, "RATE_LIMITED": 99})


def test_aggregated_entries_are_format_2_and_retention_leaves_them_and_the_chain_whole(settings: Settings) -> None:
    """Audit entry format 2 (audit line): the opening and closing entries carry no redactable
    content, so retention's redaction of an aged search beside them touches neither, and
    the chain verifies before and after."""
    engine, clock = Facegate(settings), Clock()
    ledger = RefusalLedger(lambda: engine.gate, clock)
    bad_key = FacegateError(ErrorCode.UNAUTHENTICATED, "unknown key")
    for _ in range(4):
        ledger.refused("127.0.0.9", Operation.SEARCH_IMAGE, bad_key, "flood")
    aged = AuditEntry(
        time=datetime(2021, 3, 1, 10, tzinfo=UTC), operation="search_image", decision="allow",
        rule="purpose:photo_library", policy_version="sha256:0123456789abcdef", tenant="local",
        purpose="photo_library", probe_sha256="ab" * 32, results=(MatchRef("face-1", "subject", 90.0),),
    )
    with engine.sessions.begin() as session:
        append_entry(session, aged)
    clock.now += 60
    assert ledger.flush() == 1
    run = retention.apply(engine, Caller(request_id="retention-test"))
    found = entries(engine)
    refusals = [r for r in found if r["rule"] == "request:invalid"]
    [searched] = [r for r in found if r["purpose"] == "photo_library"]
    assert list(run.redacted) == [searched["seq"]] and searched["redacted_at"] is not None
    assert [json.loads(r["details"])["aggregated"] for r in refusals] == ["open", "closed"]
    assert json.loads(refusals[1]["details"])["count"] == 4
    assert all(r["format"] == searched["format"] and r["redacted_at"] is None for r in refusals)
    assert searched["format"] is not None  # format 2, written by the audit line's append_entry
    with engine.sessions() as session:
        assert verify(session).ok
