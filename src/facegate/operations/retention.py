"""Applying retention: one gated, audited run over audit entries, leads and faces."""

from __future__ import annotations

from datetime import datetime

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import Operation
from facegate.governance.retention import RetentionRun, apply_retention


def apply(engine: Facegate, caller: Caller, at: datetime | None = None, dry_run: bool = False) -> RetentionRun:
    """Redact, purge and erase what is past its retention at `at` (default: now).

    The run and its audit entry commit together; erased faces then leave the vector indexes.
    """
    moment = at or engine.now()
    run = engine.gate.run_recorded(
        caller, Operation.RETENTION,
        lambda session, record: apply_retention(session, engine.policy, at=moment, record=record, dry_run=dry_run),
    )  # fmt: skip
    for collection_id in run.erased:
        engine.vectors.refresh(collection_id)
    return run
