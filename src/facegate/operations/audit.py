"""Reading the audit trail: verify the chain, export it, and the transparency report.

Reading the trail is an operation like any other: it is itself recorded (after the read,
so `verify` checks the chain as it was found). What is read depends on the role the gate
admitted it under (the rule of its decision): `oversight` (and the local operator, who
holds every role) reads the whole installation's trail and report; `auditor` reads only
its own tenant's entries and report; anyone else is refused (ROLE_REQUIRED). `verify`
walks the whole chain for either role, since a chain can only be checked whole; it
answers with counts and hashes, never another tenant's entries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from facegate.engine import Facegate
from facegate.governance.operations import Role
from facegate.gate import Caller
from facegate.governance import (
    AuditEntry,
    Operation,
    TransparencyReport,
    VerifyResult,
    append_entry,
    export_jsonl,
    read_entries,
    transparency_report,
    verify,
)


def scope(record: AuditEntry) -> str | None:
    """Whose entries the admitted reader may see: None (all) under oversight, else its own."""
    return None if record.rule == f"role:{Role.OVERSIGHT.value}" else record.tenant


def verify_chain(engine: Facegate, caller: Caller) -> VerifyResult:
    def act(session, record) -> VerifyResult:  # type: ignore[no-untyped-def]
        result = verify(session)
        append_entry(session, record.with_details(verified_ok=result.ok, entries=result.entries))
        return result

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def export(engine: Facegate, caller: Caller, out: TextIO, since_seq: int | None = None, limit: int | None = None) -> int:
    def act(session, record) -> int:  # type: ignore[no-untyped-def]
        count = export_jsonl(session, out, since_seq=since_seq, limit=limit, tenant=scope(record))
        append_entry(session, record.with_details(exported=count, since_seq=since_seq, scope=scope(record) or "all"))
        return count

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def page(engine: Facegate, caller: Caller, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    def act(session, record) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        rows = read_entries(session, after_seq=after_seq, limit=limit, tenant=scope(record))
        append_entry(session, record.with_details(
            after_seq=after_seq, returned=len(rows), scope=scope(record) or "all"
        ))
        return rows

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def report(
    engine: Facegate, caller: Caller, since: datetime | None = None, until: datetime | None = None
) -> TransparencyReport:
    def act(session, record) -> TransparencyReport:  # type: ignore[no-untyped-def]
        result = transparency_report(session, since=since, until=until, tenant=scope(record))
        append_entry(session, record.with_details(scope=scope(record) or "all"))
        return result

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)
