"""Retention: what a purpose's operations leave behind ages out after its `retention_days`.

Three things age out, each by its own clock:

- the redactable part of audit entries (probe hash and returned candidates) of a purpose,
  `retention_days` after the entry: redacted, never deleted. The entry keeps the digest
  its hash committed to (format 2, see `audit.py`), so the chain still verifies and shows
  where content was removed; entries written before format 2 cannot be redacted without
  breaking the chain, and are counted as kept;
- review items (leads) of a purpose, `retention_days` after they were opened: purged;
- faces of a collection that sets `retention_days`, that long after enrolment: erased
  from the catalog with their 'remove' changes, as face deletion does (the caller then
  refreshes the vector indexes).

`apply_retention` runs in the caller's transaction and appends the run's own audit entry
(`record`), so a run and its record commit together; `dry_run` only counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from facegate.governance.audit import AuditEntry, append_entry
from facegate.governance.audit_verify import seq_ranges
from facegate.governance.policy import Policy
from facegate.store.faces import delete_face_rows
from facegate.store.governance_tables import AuditLogRow, ReviewRow
from facegate.store.tables import CollectionRow, FaceRow


@dataclass(frozen=True, slots=True)
class RetentionRun:
    at: datetime
    dry_run: bool
    redacted: tuple[int, ...]
    purged_reviews: int
    erased: dict[str, list[str]] = field(default_factory=dict)  # collection -> face ids
    old_format_kept: int = 0

    @property
    def erased_faces(self) -> int:
        return sum(len(ids) for ids in self.erased.values())

    def to_dict(self) -> dict[str, Any]:
        """The shape of `facegate retention apply --json`."""
        return {
            "redacted_entries": len(self.redacted),
            "purged_reviews": self.purged_reviews,
            "erased_faces": self.erased_faces,
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "redacted_ranges": seq_ranges(self.redacted),
            "erased_by_collection": {k: len(v) for k, v in sorted(self.erased.items())},
            "old_format_entries_kept": self.old_format_kept,
        }


def _iso(moment: datetime) -> str:
    """The audit log's own time text, so that a string comparison is a time comparison."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _has_content() -> Any:
    return or_(AuditLogRow.probe_sha256.is_not(None), AuditLogRow.results.not_in(("[]", "null")))


def _aged_entries(session: Session, purpose: str, cutoff: datetime) -> tuple[list[int], int]:
    """Seqs of unredacted format-2 entries of `purpose` older than `cutoff`, and how many
    older-format entries with content are past it too."""
    aged = (AuditLogRow.purpose == purpose, AuditLogRow.time < _iso(cutoff), _has_content())
    seqs = session.scalars(
        select(AuditLogRow.seq)
        .where(*aged, AuditLogRow.format.is_not(None), AuditLogRow.redacted_at.is_(None))
        .order_by(AuditLogRow.seq)
    ).all()
    old = session.scalar(select(func.count()).select_from(AuditLogRow).where(*aged, AuditLogRow.format.is_(None)))
    return list(seqs), int(old or 0)


def _redact(session: Session, seqs: list[int], when: datetime) -> None:
    for start in range(0, len(seqs), 500):
        session.execute(
            update(AuditLogRow)
            .where(AuditLogRow.seq.in_(seqs[start : start + 500]))
            .values(probe_sha256=None, results="null", salt=None, redacted_at=_iso(when))
        )


def _aged_faces(session: Session, at: datetime) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    kept = session.execute(
        select(CollectionRow.collection_id, CollectionRow.retention_days).where(
            CollectionRow.retention_days.is_not(None)
        )
    ).all()
    for collection_id, days in kept:
        cutoff = (at - timedelta(days=days)).astimezone(UTC).replace(tzinfo=None)
        rows = session.execute(
            select(FaceRow.row_id, FaceRow.face_id)
            .where(FaceRow.collection_id == collection_id, FaceRow.created_at < cutoff)
            .order_by(FaceRow.row_id)
        ).all()
        if rows:
            found[collection_id] = [(r.row_id, r.face_id) for r in rows]
    return found


def apply_retention(
    session: Session, policy: Policy, *, at: datetime, record: AuditEntry, dry_run: bool = False
) -> RetentionRun:
    """Redact, purge and erase what is older than its retention at `at`; append `record`."""
    if at.tzinfo is None:
        raise ValueError("retention time must be timezone-aware")
    redacted: list[int] = []
    old_kept, purged = 0, 0
    for purpose_id, purpose in sorted(policy.rules.purposes.items()):
        cutoff = at - timedelta(days=purpose.retention_days)
        seqs, old = _aged_entries(session, purpose_id, cutoff)
        redacted += seqs
        old_kept += old
        reviews = (ReviewRow.purpose == purpose_id, ReviewRow.created_at < cutoff)
        purged += int(session.scalar(select(func.count()).select_from(ReviewRow).where(*reviews)) or 0)
        if not dry_run:
            _redact(session, seqs, record.time)
            session.execute(delete(ReviewRow).where(*reviews))
    faces = _aged_faces(session, at)
    if not dry_run:
        for collection_id, rows in faces.items():
            delete_face_rows(session, collection_id, [row_id for row_id, _ in rows])
        session.expire_all()
    run = RetentionRun(
        at, dry_run, tuple(sorted(redacted)), purged,
        {k: [face_id for _, face_id in v] for k, v in faces.items()}, old_kept,
    )  # fmt: skip
    summary = run.to_dict()
    append_entry(session, record.with_details(action="retention", **{k: summary[k] for k in (
        "at", "dry_run", "redacted_entries", "redacted_ranges", "purged_reviews", "erased_faces",
        "erased_by_collection", "old_format_entries_kept",
    )}))  # fmt: skip
    return run
