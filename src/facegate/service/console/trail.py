"""The audit trail page: filtered entries, one entry's detail, and the state of the chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import Operation
from facegate.governance.audit_query import AuditFilter
from facegate.operations import audit as audit_ops
from facegate.operations import console as ops
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, engine_of
from facegate.service.console.render import page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
Text = Annotated[str | None, Query(max_length=255)]


def _moment(value: str | None, name: str) -> datetime | None:
    """A date or date-time field (UTC unless it says otherwise)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"{name} is not a valid time", field=name) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/audit")
def trail(
    request: Request, user: UserDep, tenant: Text = None, key: Text = None, purpose: Text = None,
    case_reference: Text = None, operation: Text = None, decision: Text = None, since: Text = None,
    until: Text = None, before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """Entries newest first, filtered; the chain verified as it stands (that read is recorded too)."""
    if operation and operation not in set(Operation):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"unknown operation {operation!r}", field="operation")
    if decision and decision not in ("allow", "deny"):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "decision is allow or deny", field="decision")
    flt = AuditFilter(
        tenant=tenant or None, key=key or None, purpose=purpose or None, case_reference=case_reference or None,
        operation=operation or None, decision=decision or None,
        since=_moment(since, "since"), until=_moment(until, "until"),
    )  # fmt: skip
    engine, caller = engine_of(request), user.caller(request.state.request_id)
    state = audit_ops.chain_state(engine, caller)
    entries = ops.audit_trail(engine, caller, flt, before_seq=before, limit=PAGE_SIZE)
    older = entries[-1]["seq"] if len(entries) == PAGE_SIZE else None
    form = {"tenant": tenant, "key": key, "purpose": purpose, "case_reference": case_reference,
            "operation": operation, "decision": decision, "since": since, "until": until}
    return page(request, "audit.html", user=user, entries=entries, chain=state.verified, form=form, older=older,
                operations=[o.value for o in Operation], purposes=sorted(engine.policy.rules.purposes),
                checkpoint=state.checkpoint, not_extended=state.not_extended)


@router.get("/audit/{seq}")
def entry(request: Request, user: UserDep, seq: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    found = ops.audit_entry(engine_of(request), user.caller(request.state.request_id), seq)
    return page(request, "entry.html", user=user, entry=found)
