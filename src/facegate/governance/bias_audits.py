"""Recorded demographic audits: the evidence a purpose's `require_bias_audit` gate reads.

`facegate audit-bias --record` measures a model (facegate.evaluation) and stores the
result here, with the dataset's hash, in the same transaction as its audit entry. The
engine hands `recorded_audits(session, model_id)` to `decide`, which re-judges the latest
audit on the required dataset against each purpose's own limits: the `passed` flag stored
here is the verdict of the audit run itself, and a failing one is never overridden.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, append_entry
from facegate.governance.operations import Operation
from facegate.governance.request import BiasAuditSummary
from facegate.store.governance_tables import AuditLogRow, BiasAuditRow


def _summary(row: BiasAuditRow) -> BiasAuditSummary:
    return BiasAuditSummary(
        audit_id=row.audit_id,
        dataset=row.dataset,
        dataset_sha256=row.dataset_sha256,
        threshold=row.threshold,
        max_group_fmr=row.max_group_fmr,
        fmr_ratio=row.fmr_ratio,
        passed=row.passed,
        created_at=row.created_at,
    )


def _json_number(value: float) -> float | str:
    """Audit details are strict JSON: an infinite ratio is written as the string "inf"."""
    return value if math.isfinite(value) else str(value)


def record_bias_audit(
    session: Session,
    *,
    model_id: str,
    template_id: str,
    dataset: str,
    space_id: str | None = None,
    dataset_sha256: str,
    threshold: float,
    max_group_fmr: float,
    fmr_ratio: float | None,
    passed: bool,
    report: Mapping[str, Any],
    record: AuditEntry,
) -> BiasAuditSummary:
    """Store one audit result and its audit entry (operation `bias_audit`), in the caller's transaction.

    `fmr_ratio=None` (fewer than two groups large enough to compare) is stored as +inf: a
    differential that was not measured can never satisfy a purpose's `max_fmr_ratio`.
    """
    fmr_ratio = math.inf if fmr_ratio is None else fmr_ratio
    if (
        not (0.0 <= max_group_fmr <= 1.0)
        or math.isnan(fmr_ratio)
        or fmr_ratio < 1.0
        or not math.isfinite(threshold)
    ):
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            "a bias audit needs a finite threshold, a group FMR in [0, 1] and an FMR ratio of at least 1",
            field="bias_audit",
        )
    row = BiasAuditRow(
        model_id=model_id, template_id=template_id, space_id=space_id, dataset=dataset,
        dataset_sha256=dataset_sha256,
        threshold=float(threshold), max_group_fmr=float(max_group_fmr), fmr_ratio=float(fmr_ratio),
        passed=bool(passed), report=dict(report), created_at=record.time,
    )  # fmt: skip
    session.add(row)
    session.flush()
    entry = replace(record, model_id=model_id).with_details(
        action="bias_audit_record", bias_audit_id=row.audit_id, template_id=template_id, space_id=space_id,
        dataset=dataset,
        dataset_sha256=dataset_sha256, threshold=float(threshold), max_group_fmr=float(max_group_fmr),
        fmr_ratio=_json_number(float(fmr_ratio)), passed=bool(passed),
    )  # fmt: skip
    append_entry(session, entry)
    return _summary(row)


def recorded_audits(session: Session, model_id: str, space_id: str | None = None) -> tuple[BiasAuditSummary, ...]:
    """Every recorded audit of `model_id` (and, given `space_id`, of that template space and
    detector only: an audit run with one detector does not vouch for another), newest first."""
    query = select(BiasAuditRow).where(BiasAuditRow.model_id == model_id)
    if space_id is not None:
        query = query.where(BiasAuditRow.space_id == space_id)
    rows = session.scalars(query.order_by(BiasAuditRow.created_at.desc(), BiasAuditRow.audit_id.desc()))
    return tuple(_summary(r) for r in rows)


@dataclass(frozen=True, slots=True)
class RecordedBiasAudit:
    """A recorded audit with its report, as the oversight console lists it."""

    summary: BiasAuditSummary
    model_id: str
    template_id: str
    report: dict[str, Any]


def list_bias_audits(session: Session, recorded_by: str | None = None) -> list[RecordedBiasAudit]:
    """Every recorded audit of every model, newest first; with `recorded_by`, only those
    that tenant recorded (as its allowed `bias_audit` entries in the audit log name them)."""
    query = select(BiasAuditRow)
    if recorded_by is not None:
        query = query.where(BiasAuditRow.audit_id.in_(_recorded_by(session, recorded_by)))
    rows = session.scalars(query.order_by(BiasAuditRow.created_at.desc(), BiasAuditRow.audit_id.desc()))
    return [RecordedBiasAudit(_summary(r), r.model_id, r.template_id, dict(r.report)) for r in rows]


def _recorded_by(session: Session, tenant: str) -> list[int]:
    """The ids of the audits `tenant` recorded, read from its own audit entries."""
    details = session.scalars(select(AuditLogRow.details).where(
        AuditLogRow.tenant == tenant, AuditLogRow.operation == Operation.BIAS_AUDIT.value,
        AuditLogRow.decision == "allow",
    ))
    found = []
    for text in details:
        try:
            audit_id = json.loads(text).get("bias_audit_id")
        except (TypeError, ValueError, AttributeError):
            continue  # a tampered entry names nothing
        if isinstance(audit_id, int):
            found.append(audit_id)
    return found
