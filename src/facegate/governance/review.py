"""Human review: results of purposes that require it are leads until a reviewer decides.

AWS advises public-safety users to put a human between a match and an action; here the
purpose says so and the record shows it happened. After an allowed search whose decision
has `review_required`, the engine calls `open_reviews(session, audit_seq)`: one pending
lead per result recorded in that audit entry (so the leads are exactly what was returned).
A reviewer of the same tenant confirms or rejects each lead; that verdict is an operation
(`review`) with its own audit entry, carrying the lead's purpose and case reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, MatchRef, append_entry
from facegate.store.governance_tables import AuditLogRow, ReviewRow

VERDICTS = {"confirm": "confirmed", "reject": "rejected"}


@dataclass(frozen=True, slots=True)
class Review:
    review_id: int
    audit_seq: int  # the search that produced the lead
    tenant: str
    purpose: str | None
    case_reference: str | None
    face_id: str
    subject: str | None
    similarity: float
    status: str  # "pending" | "confirmed" | "rejected"
    created_at: datetime
    reviewer: str | None
    note: str
    decided_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "audit_seq": self.audit_seq,
            "tenant": self.tenant,
            "purpose": self.purpose,
            "case_reference": self.case_reference,
            "face_id": self.face_id,
            "subject": self.subject,
            "similarity": self.similarity,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "reviewer": self.reviewer,
            "note": self.note,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "notice": "investigative lead: not an identification until a reviewer confirms it",
        }


def _review(row: ReviewRow) -> Review:
    return Review(
        row.review_id, row.audit_seq, row.tenant, row.purpose, row.case_reference, row.face_id, row.subject,
        row.similarity, row.status, row.created_at, row.reviewer, row.note, row.decided_at,
    )  # fmt: skip


def open_reviews(session: Session, audit_seq: int) -> list[Review]:
    """Pending leads for each result of the allowed audit entry `audit_seq` (caller's transaction)."""
    entry = session.get(AuditLogRow, audit_seq)
    if entry is None:
        raise FacegateError(ErrorCode.NOT_FOUND, f"no audit entry {audit_seq}", audit_seq=audit_seq)
    if entry.decision != "allow" or entry.tenant is None:
        return []
    rows = [
        ReviewRow(
            audit_seq=audit_seq, tenant=entry.tenant, purpose=entry.purpose,
            case_reference=entry.case_reference, face_id=r["face_id"], subject=r["subject"],
            similarity=float(r["similarity"]), status="pending",
            created_at=datetime.fromisoformat(entry.time), note="",
        )
        for r in json.loads(entry.results)
    ]  # fmt: skip
    session.add_all(rows)
    session.flush()
    return [_review(r) for r in rows]


def list_reviews(
    session: Session, *, tenant: str, status: str | None = "pending", after_id: int = 0, limit: int = 100
) -> list[Review]:
    """A tenant's leads, oldest first; `status=None` lists every status."""
    query = select(ReviewRow).where(ReviewRow.tenant == tenant, ReviewRow.review_id > after_id)
    if status is not None:
        query = query.where(ReviewRow.status == status)
    return [_review(r) for r in session.scalars(query.order_by(ReviewRow.review_id).limit(limit))]


def decide_review(
    session: Session, review_id: int, *, verdict: str, note: str = "", record: AuditEntry
) -> Review:
    """Confirm or reject a pending lead of the reviewer's own tenant (`record.tenant`), audited."""
    if verdict not in VERDICTS:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"verdict must be confirm or reject, got {verdict!r}", field="verdict"
        )
    row = session.get(ReviewRow, review_id)
    if row is None or row.tenant != record.tenant:
        raise FacegateError(
            ErrorCode.REVIEW_NOT_FOUND,
            f"no review {review_id} for tenant {record.tenant!r}",
            review_id=review_id,
        )
    if row.status != "pending":
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"review {review_id} was already {row.status}", field="review_id"
        )
    row.status = VERDICTS[verdict]
    row.reviewer = f"{record.tenant}:{record.key_id}" if record.key_id else record.tenant
    row.note, row.decided_at = note, record.time
    session.flush()
    # The lead goes in `results`, the entry's redactable part, so the purpose's retention
    # removes it from this entry as from the search's (details are never redacted).
    lead = MatchRef(row.face_id, row.subject, row.similarity)
    entry = replace(record, purpose=row.purpose, case_reference=row.case_reference, results=(lead,)).with_details(
        action="review", review_id=review_id, verdict=row.status, lead_audit_seq=row.audit_seq, note=note,
    )  # fmt: skip
    append_entry(session, entry)
    return _review(row)
