"""Human review: results of purposes that require it are leads until a reviewer decides.

AWS advises public-safety users to put a human between a match and an action; here the
purpose says so and the record shows it happened. After an allowed search whose decision
has `review_required`, the engine calls `open_reviews(session, audit_seq)`: one pending
lead per result recorded in that audit entry (so the leads are exactly what was returned).
A reviewer of the same tenant confirms or rejects each lead; that verdict is an operation
(`review`) with its own audit entry, carrying the lead's purpose and case reference.

A repeated search (same tenant, case, probe image and candidate face) opens no second
lead for that candidate: the one it already produced is pending, or was decided. A purpose with `four_eyes`
demands that the reviewer is another person than the searcher, compared by the holders
their API keys name (a key without a holder stands for itself, the CLI for its tenant
unless `--holder` names the person): else FOUR_EYES_REQUIRED. A decided lead shows who
(tenant, key and holder), when and why (the note).
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
from facegate.governance.leads import LEAD_NOTICE
from facegate.store.governance_tables import AuditLogRow, ReviewRow

VERDICTS = {"confirm": "confirmed", "reject": "rejected", "confirmed": "confirmed", "rejected": "rejected"}


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
    searcher_key_id: str | None = None
    searcher_holder: str | None = None
    reviewer_holder: str | None = None

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
            "searcher_key_id": self.searcher_key_id,
            "searcher_holder": self.searcher_holder,
            "reviewer": self.reviewer,
            "reviewer_holder": self.reviewer_holder,
            "note": self.note,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "notice": LEAD_NOTICE,
        }


def _review(row: ReviewRow) -> Review:
    return Review(
        row.review_id, row.audit_seq, row.tenant, row.purpose, row.case_reference, row.face_id, row.subject,
        row.similarity, row.status, row.created_at, row.reviewer, row.note, row.decided_at,
        row.searcher_key_id, row.searcher_holder, row.reviewer_holder,
    )  # fmt: skip


def open_reviews(session: Session, audit_seq: int, probe_thumbnail: bytes | None = None) -> list[Review]:
    """Pending leads for each result of the allowed audit entry `audit_seq` (caller's
    transaction), each keeping `probe_thumbnail` (the probe's sealed crop) when given."""
    entry = session.get(AuditLogRow, audit_seq)
    if entry is None:
        raise FacegateError(ErrorCode.NOT_FOUND, f"no audit entry {audit_seq}", audit_seq=audit_seq)
    if entry.decision != "allow" or entry.tenant is None:
        return []
    # The same evidence (tenant, purpose, case, probe image) leads to a candidate once. A
    # search with no probe image (by face id or subject) is never taken for an earlier one.
    already_led: set[str] = set()
    if entry.probe_sha256 is not None:
        already_led = set(session.scalars(select(ReviewRow.face_id).where(
            ReviewRow.tenant == entry.tenant, _same(ReviewRow.purpose, entry.purpose),
            _same(ReviewRow.case_reference, entry.case_reference), ReviewRow.probe_sha256 == entry.probe_sha256,
        )))
    rows = [
        ReviewRow(
            audit_seq=audit_seq, tenant=entry.tenant, purpose=entry.purpose,
            case_reference=entry.case_reference, face_id=r["face_id"], subject=r["subject"],
            similarity=float(r["similarity"]), status="pending",
            created_at=datetime.fromisoformat(entry.time), note="", probe_sha256=entry.probe_sha256,
            searcher_key_id=entry.key_id, searcher_holder=entry.key_holder, probe_thumbnail=probe_thumbnail,
        )
        for r in json.loads(entry.results)
        if r["face_id"] not in already_led
    ]  # fmt: skip
    session.add_all(rows)
    session.flush()
    return [_review(r) for r in rows]


def _same(column: Any, value: str | None) -> Any:
    """Equality in which two missing values are the same (a search with no case or purpose)."""
    return column.is_(None) if value is None else column == value


Binding = tuple[str | None, str | None]  # a key's (purpose, case reference); None: not bound


def within_binding(purpose: str | None, case_reference: str | None, binding: Binding) -> bool:
    """Is a lead (or job) of this purpose and case one a key with `binding` may see? A key
    bound to one investigation is a credential for it alone, not for the tenant's others."""
    bound_purpose, bound_case = binding
    return bound_purpose in (None, purpose) and bound_case in (None, case_reference)


def list_reviews(
    session: Session, *, tenant: str, status: str | None = "pending", after_id: int = 0, limit: int = 100,
    case_reference: str | None = None, binding: Binding = (None, None),
) -> list[Review]:
    """A tenant's leads, oldest first, within a key's `binding`; `status=None` lists every status."""
    if status is not None and status not in ("pending", "confirmed", "rejected"):
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"status must be pending, confirmed or rejected, got {status!r}", field="status"
        )
    query = select(ReviewRow).where(ReviewRow.tenant == tenant, ReviewRow.review_id > after_id)
    if status is not None:
        query = query.where(ReviewRow.status == status)
    if case_reference is not None:
        query = query.where(ReviewRow.case_reference == case_reference)
    bound_purpose, bound_case = binding
    if bound_purpose is not None:
        query = query.where(ReviewRow.purpose == bound_purpose)
    if bound_case is not None:
        query = query.where(ReviewRow.case_reference == bound_case)
    return [_review(r) for r in session.scalars(query.order_by(ReviewRow.review_id).limit(limit))]


def person(holder: str | None, key_id: str | None, tenant: str | None) -> str:
    """Who acted, for four eyes: the key's holder, else the key itself, else the tenant."""
    if holder and holder.strip():  # one person however the holder was typed: " Alice" is "alice"
        return f"holder:{holder.strip().casefold()}"
    return f"key:{key_id}" if key_id else f"tenant:{tenant}"


def decide_review(
    session: Session, review_id: int, *, verdict: str, note: str = "", record: AuditEntry,
    four_eyes_purposes: frozenset[str] = frozenset(), binding: Binding = (None, None),
) -> Review:
    """Confirm or reject a pending lead of the reviewer's own tenant (`record.tenant`), audited;
    a lead outside the reviewer's key `binding` is, to it, a lead that does not exist.

    A lead of a purpose in `four_eyes_purposes` (the policy's `four_eyes = true`) is refused
    to the person who searched (FOUR_EYES_REQUIRED); the refusal is audited by the engine.
    """
    if verdict not in VERDICTS:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"verdict must be confirmed or rejected, got {verdict!r}", field="verdict"
        )
    row = session.get(ReviewRow, review_id)
    if row is None or row.tenant != record.tenant or not within_binding(row.purpose, row.case_reference, binding):
        raise FacegateError(
            ErrorCode.REVIEW_NOT_FOUND,
            f"no review {review_id} for tenant {record.tenant!r}",
            review_id=review_id,
        )
    if row.status != "pending":
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"review {review_id} was already {row.status}", field="review_id"
        )
    if row.purpose in four_eyes_purposes and person(row.searcher_holder, row.searcher_key_id, row.tenant) == person(
        record.key_holder, record.key_id, record.tenant
    ):
        raise FacegateError(
            ErrorCode.FOUR_EYES_REQUIRED,
            f"purpose {row.purpose!r} needs a reviewer other than the person who searched",
            review_id=review_id,
        )
    row.status = VERDICTS[verdict]
    row.reviewer = f"{record.tenant}:{record.key_id}" if record.key_id else record.tenant
    row.reviewer_key_id, row.reviewer_holder = record.key_id, record.key_holder
    row.note, row.decided_at = note, record.time
    session.flush()
    # The lead goes in `results`, the entry's redactable part, so the purpose's retention
    # removes it from this entry as from the search's (details are never redacted).
    lead = MatchRef(row.face_id, row.subject, row.similarity)
    entry = replace(record, purpose=row.purpose, case_reference=row.case_reference, results=(lead,)).with_details(
        action="review", review_id=review_id, verdict=row.status, lead_audit_seq=row.audit_seq, note=note,
        searcher_holder=row.searcher_holder,
    )  # fmt: skip
    append_entry(session, entry)
    return _review(row)
