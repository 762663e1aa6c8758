"""Purpose approvals: a tenant asks to use a purpose, an administrator approves or rejects.

This is Azure's "Limited Access" registration as a workflow: the policy says what a purpose
permits, an approval says that this tenant may declare it. A request is made by the tenant
itself (operation `request_approval`); the decision by an administrator (`tenant_admin`).
Each step writes one audit entry (the `record` the engine built for the allowed request);
the table keeps the current state, the audit log the history. Rejecting an approved
purpose withdraws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, append_entry
from facegate.governance.policy import Policy
from facegate.store.governance_tables import PurposeApprovalRow, TenantRow


@dataclass(frozen=True, slots=True)
class ApprovalInfo:
    tenant: str
    purpose: str
    status: str  # "pending" | "approved" | "rejected"
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "purpose": self.purpose,
            "status": self.status,
            "requested_at": self.requested_at.isoformat(),
            "requested_by": self.requested_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "note": self.note,
        }


def _info(row: PurposeApprovalRow) -> ApprovalInfo:
    return ApprovalInfo(
        row.tenant,
        row.purpose,
        row.status,
        row.requested_at,
        row.requested_by,
        row.decided_at,
        row.decided_by,
        row.note,
    )


def check_purpose_open(policy: Policy, purpose: str, sector: str) -> None:
    """Refuse approvals the policy could never honour: unknown purposes, closed sectors."""
    found = policy.rules.purposes.get(purpose)
    if found is None:
        raise FacegateError(
            ErrorCode.PURPOSE_UNKNOWN, f"purpose {purpose!r} is not defined by the policy", purpose=purpose
        )
    if found.sectors is not None and sector not in found.sectors:
        raise FacegateError(
            ErrorCode.PURPOSE_NOT_APPROVED,
            f"purpose {purpose!r} is not open to sector {sector!r}",
            purpose=purpose,
        )


def approvals_of(session: Session, tenant: str) -> tuple[ApprovalInfo, ...]:
    rows = session.scalars(
        select(PurposeApprovalRow)
        .where(PurposeApprovalRow.tenant == tenant)
        .order_by(PurposeApprovalRow.purpose)
    )
    return tuple(_info(r) for r in rows)


def pending_approvals(session: Session) -> list[ApprovalInfo]:
    """What administrators have to decide, oldest first."""
    rows = session.scalars(
        select(PurposeApprovalRow)
        .where(PurposeApprovalRow.status == "pending")
        .order_by(PurposeApprovalRow.requested_at)
    )
    return [_info(r) for r in rows]


def _approval_row(session: Session, tenant: str, purpose: str) -> PurposeApprovalRow | None:
    return session.scalars(
        select(PurposeApprovalRow).where(
            PurposeApprovalRow.tenant == tenant, PurposeApprovalRow.purpose == purpose
        )
    ).one_or_none()


def grant(session: Session, *, tenant: str, purpose: str, by: str, time: datetime) -> None:
    """Approve directly (a tenant created with purposes); the caller writes the audit entry."""
    session.add(
        PurposeApprovalRow(
            tenant=tenant, purpose=purpose, status="approved", requested_at=time, requested_by=by,
            decided_at=time, decided_by=by, note="approved at tenant creation",
        )
    )  # fmt: skip
    session.flush()


def request_approval(
    session: Session, policy: Policy, *, purpose: str, note: str = "", record: AuditEntry
) -> ApprovalInfo:
    """The requesting tenant (`record.tenant`) asks to be approved for `purpose`."""
    tenant = session.get(TenantRow, record.tenant) if record.tenant else None
    if tenant is None:
        raise FacegateError(
            ErrorCode.TENANT_NOT_FOUND, f"no tenant named {record.tenant!r}", tenant=record.tenant
        )
    check_purpose_open(policy, purpose, tenant.sector)
    row = _approval_row(session, tenant.name, purpose)
    if row is not None and row.status == "approved":
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            f"tenant {tenant.name!r} is already approved for {purpose!r}",
            field="purpose",
        )
    if row is None:
        row = PurposeApprovalRow(tenant=tenant.name, purpose=purpose)
        session.add(row)
    row.status, row.requested_at, row.requested_by, row.note = "pending", record.time, tenant.name, note
    row.decided_at = row.decided_by = None
    session.flush()
    append_entry(
        session,
        record.with_details(
            action="approval_request", target_tenant=tenant.name, requested_purpose=purpose, note=note
        ),
    )
    return _info(row)


def decide_approval(
    session: Session,
    policy: Policy,
    *,
    tenant: str,
    purpose: str,
    approve: bool,
    note: str = "",
    record: AuditEntry,
) -> ApprovalInfo:
    """An administrator (`record.tenant`) approves or rejects; rejecting an approval withdraws it."""
    target = session.get(TenantRow, tenant)
    if target is None:
        raise FacegateError(ErrorCode.TENANT_NOT_FOUND, f"no tenant named {tenant!r}", tenant=tenant)
    row = _approval_row(session, tenant, purpose)
    if row is None:
        raise FacegateError(
            ErrorCode.NOT_FOUND, f"tenant {tenant!r} has not requested purpose {purpose!r}", purpose=purpose
        )
    if approve:
        check_purpose_open(policy, purpose, target.sector)
    previous = row.status
    row.status = "approved" if approve else "rejected"
    row.decided_at, row.decided_by, row.note = record.time, record.tenant, note
    session.flush()
    append_entry(
        session,
        record.with_details(
            action="approval_decision",
            target_tenant=tenant,
            requested_purpose=purpose,
            verdict=row.status,
            previous=previous,
            note=note,
        ),
    )
    return _info(row)
