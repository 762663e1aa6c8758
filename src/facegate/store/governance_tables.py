"""Governance tables: tenants, API keys, purpose approvals, the audit log, reviews, bias audits.

They live in the catalog database so that an operation and its audit entry commit in one
transaction. Times are stored as UTC (`UTCDateTime`) because SQLite keeps no offset; the
audit log keeps its time as the exact ISO text that was hashed, so a round trip through
any database cannot change a hashed byte. `audit_head` holds the last appended entry: the
chain alone cannot show that its tail was cut off, the head can.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from facegate.store.db import Base


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC and read back aware; naive input is a programming error."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("governance times must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class TenantRow(Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sector: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # "active" | "suspended"
    roles: Mapped[list] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    """A key is `fg_<key_id>_<secret>`; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    holder: Mapped[str | None] = mapped_column(String(255), nullable=True)  # the person or system
    # A key bound to one purpose and case (a credential for one investigation), and its
    # AWS credentials for SigV4: the secret sealed under the data directory's KEK.
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    case_reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    aws_access_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True, index=True)
    aws_secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)


class PurposeApprovalRow(Base):
    """The current state of one tenant's approval for one purpose; its history is audited."""

    __tablename__ = "purpose_approvals"
    __table_args__ = (UniqueConstraint("tenant", "purpose"),)

    row_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # "pending" | "approved" | "rejected"
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class AuditLogRow(Base):
    """One hash-chained audit entry. Never deleted by facegate; only retention updates it,
    redacting `probe_sha256`, `results` and `salt` of a format-2 entry (see governance/audit.py).

    `results` and `details` hold canonical JSON text, `time` ISO-8601 UTC text: the
    verifier re-hashes exactly what is stored. `format` is NULL for entries written before
    format 2.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(40), index=True)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sector: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    case_reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    operation: Mapped[str] = mapped_column(String(32))
    collection: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mode: Mapped[str] = mapped_column(String(16))
    probe_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    results: Mapped[str] = mapped_column(Text)
    max_fmr: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_results: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision: Mapped[str] = mapped_column(String(8))  # "allow" | "deny"
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rule: Mapped[str] = mapped_column(String(128))
    policy_version: Mapped[str] = mapped_column(String(80))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[str] = mapped_column(Text)
    # Added after the first release: hashed only when set, so older entries still verify.
    key_holder: Mapped[str | None] = mapped_column(String(255), nullable=True)
    format: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redactable_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    salt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    redacted_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The single row naming the last appended entry, updated in the same transaction."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """A signed checkpoint of the audit log (kept here so the next one names it, and also
    written outside the catalog, where the copies that matter live)."""

    __tablename__ = "audit_checkpoints"

    checkpoint_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    checkpoint_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # the checkpoint as JSON, signature included


class ReviewRow(Base):
    """A search result of a purpose that requires human review: an investigative lead."""

    __tablename__ = "reviews"

    review_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_seq: Mapped[int] = mapped_column(Integer, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    purpose: Mapped[str | None] = mapped_column(String(64), nullable=True)
    case_reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    face_id: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    similarity: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # "pending" | "confirmed" | "rejected"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Added with review as a workflow (null on leads opened by older code): what was searched
    # and by whom, so a repeated search opens no second lead and four eyes can be checked.
    probe_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    searcher_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    searcher_holder: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reviewer_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reviewer_holder: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The probe's face crop (sealed like templates), where the searched collection keeps
    # thumbnails: shown to the reviewer beside the candidate, purged with the lead.
    probe_thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)


class BiasAuditRow(Base):
    """A recorded demographic audit of one model on one dataset at one threshold."""

    __tablename__ = "bias_audits"

    audit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(64))
    # template space + detector the audit ran with (TemplateSpace.audit_id); NULL for audits
    # recorded before step 5, which named no detector and so vouch for none
    space_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dataset: Mapped[str] = mapped_column(String(128))
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float] = mapped_column(Float)
    max_group_fmr: Mapped[float] = mapped_column(Float)
    fmr_ratio: Mapped[float] = mapped_column(Float)  # may be +inf when a group has FMR 0
    passed: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
