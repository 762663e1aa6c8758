"""The audit trail over HTTP: verify the chain, export it page by page, the transparency report.

Answered by role (the gate answers others 403 ROLE_REQUIRED): `oversight` reads the whole
installation's trail and report, `auditor` only its own tenant's entries and report;
`verify` checks the whole chain for both. Each read is itself recorded.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query

from facegate.errors import ErrorCode
from facegate.governance import Operation
from facegate.operations import audit as ops
from facegate.service.admission import gated
from facegate.service.deps import CallerDep, EngineDep
from facegate.service.errors import RequestRefused
from facegate.service.responses import (
    AuditPage,
    ChainVerified,
    CheckpointOut,
    ConsistencyProofOut,
    TransparencyReportOut,
)
from facegate.service.routes import api_router
from facegate.service.schemas import TimeQuery

router = api_router("/v1/audit", "audit")


@router.get("/verify", response_model=ChainVerified, openapi_extra=gated(Operation.AUDIT_READ))
def verify(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    """Re-walk the hash chain; `first_bad_entry` names the first edited, missing or moved entry."""
    found = ops.verify_chain(engine, caller).to_dict()
    if "file" in found.get("checkpoint", {}):  # the kept file's name, not where the host keeps it
        found["checkpoint"]["file"] = Path(found["checkpoint"]["file"]).name
    return found


@router.get("/checkpoint", response_model=CheckpointOut, openapi_extra=gated(Operation.AUDIT_READ))
def checkpoint(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    """The latest signed checkpoint: keep it, and later `facegate audit verify --checkpoint FILE`."""
    return ops.latest_checkpoint(engine, caller)


@router.get("/consistency", response_model=ConsistencyProofOut, openapi_extra=gated(Operation.AUDIT_READ))
def consistency(
    engine: EngineDep, caller: CallerDep,
    from_checkpoint: Annotated[str, Query(pattern="^[0-9a-f]{64}$",
                                          description="The `checkpoint_hash` of the earlier checkpoint you kept.")],
) -> dict[str, Any]:
    """Proof that the latest checkpoint's log extends the one the earlier checkpoint signed
    (found by its hash: check that `checkpoints[0]` is the very one you kept)."""
    return ops.prove_consistency(engine, caller, from_checkpoint)


@router.get("/export", response_model=AuditPage, openapi_extra=gated(Operation.AUDIT_READ))
def export(
    engine: EngineDep, caller: CallerDep,
    after_seq: Annotated[int, Query(ge=0, le=2**62, description="Entries after this sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Entries as they were hashed, with `prev_hash` and `entry_hash`, oldest first."""
    entries = ops.page(engine, caller, after_seq=after_seq, limit=limit)
    return {"entries": entries, "next_after_seq": entries[-1]["seq"] if len(entries) == limit else None}


def _moment(value: str | None, name: str) -> datetime | None:
    """A time the schema's pattern already admitted; a date that does not exist (2026-02-30) is refused."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise RequestRefused(ErrorCode.INVALID_ARGUMENT, f"{name} is not a valid time", field=name) from None


@router.get("/report", response_model=TransparencyReportOut, openapi_extra=gated(Operation.AUDIT_READ))
def report(
    engine: EngineDep, caller: CallerDep,
    since: TimeQuery = None,
    until: TimeQuery = None,
) -> dict[str, Any]:
    """Transparency report: requests and denials by sector, purpose, operation, decision and month."""
    return ops.report(engine, caller, _moment(since, "since"), _moment(until, "until")).to_dict()
