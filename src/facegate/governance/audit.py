"""The audit log: one hash-chained entry per operation, allowed or denied.

Each entry commits to the one before it. `append_entry` writes inside the caller's
transaction (the engine takes the write lock with BEGIN IMMEDIATE), so an operation and its
record commit together or not at all, and two writers never share a previous hash. The
probe image is recorded by its SHA-256, never by its pixels or template.

Two entry formats are verified (`format` is NULL for the first):

- format 1 (entries written before retention existed):
  `entry_hash = sha256(0x01 || prev_hash || canonical JSON of every field, seq included)`;
- format 2: what a purpose's retention may later remove (the probe hash and the returned
  candidates) is committed through its own digest,
  `redactable_digest = sha256(canonical JSON of {probe_sha256, results, salt})` with a
  per-entry random salt (so a redacted probe hash cannot be guessed back from the digest),
  and `entry_hash = sha256(0x01 || prev_hash || canonical JSON of the fixed fields,
  format and redactable_digest)`. Redaction removes the content and the salt, keeps the
  digest and records when (`redacted_at`): the chain stays whole and shows where.

Fields added after the first release (`OPTIONAL_HASHED_FIELDS`) are hashed only when set, so
entries written before them still verify. Editing, removing, reordering or inserting an
entry breaks the chain from that entry on; `audit_verify` finds where.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import RowMapping, func, insert, select, update
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.decision import Decision
from facegate.governance.request import GateRequest
from facegate.store.governance_tables import AuditHeadRow, AuditLogRow

GENESIS = "0" * 64
LEAF_PREFIX = b"\x01"
HASHED_FIELDS: tuple[str, ...] = (
    "seq", "time", "tenant", "key_id", "sector", "purpose", "case_reference", "operation",
    "collection", "mode", "probe_sha256", "results", "max_fmr", "threshold", "max_results",
    "decision", "code", "rule", "policy_version", "request_id", "model_id", "details",
)  # fmt: skip
# Fields added after the first release: hashed only when set, so that entries written by
# older code (which never had them) still verify unchanged.
OPTIONAL_HASHED_FIELDS: tuple[str, ...] = ("key_holder",)
_JSON_FIELDS = ("results", "details")
FORMAT = 2  # the format `append_entry` writes
REDACTABLE_FIELDS: tuple[str, ...] = ("probe_sha256", "results")
FIXED_FIELDS: tuple[str, ...] = tuple(f for f in HASHED_FIELDS if f not in REDACTABLE_FIELDS)
# Kept beside a format-2 entry and not hashed into it: its salt goes with the content on
# redaction, and the time of the redaction is written after the entry was chained.
UNHASHED_FIELDS: tuple[str, ...] = ("salt", "redacted_at")
_COLUMNS = [
    getattr(AuditLogRow, name)
    for name in (
        *HASHED_FIELDS, *OPTIONAL_HASHED_FIELDS, "format", "redactable_digest", *UNHASHED_FIELDS, "prev_hash", "entry_hash",
    )
]


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8, no NaN or infinity."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _json_or_raw(text: Any) -> Any:
    """Stored JSON text parsed; anything else (e.g. a tampered byte) kept as it is."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def stored_field(values: Mapping[Any, Any], name: str) -> Any:
    """A stored column value, JSON columns parsed."""
    return _json_or_raw(values[name]) if name in _JSON_FIELDS else values[name]


def entry_body(values: Mapping[Any, Any]) -> dict[str, Any]:
    """The hashed content of an entry, from its stored column values (format 1 or 2).

    Format 2 hashes the *stored* digest of the redactable part; whether the content still
    matches it is `content_problem`'s question.
    """
    version = values.get("format")
    if version is None:
        body = {k: stored_field(values, k) for k in HASHED_FIELDS}
    else:
        body = {k: stored_field(values, k) for k in FIXED_FIELDS}
        body["format"] = version
        body["redactable_digest"] = values.get("redactable_digest")
    for name in OPTIONAL_HASHED_FIELDS:
        if values.get(name) is not None:
            body[name] = values[name]
    return body


def redactable_digest(values: Mapping[Any, Any]) -> str | None:
    """The digest of a format-2 entry's redactable part as stored now (None without its salt)."""
    salt = values.get("salt")
    if not isinstance(salt, str):
        return None
    part = {k: stored_field(values, k) for k in REDACTABLE_FIELDS}
    try:
        return hashlib.sha256(canonical_json({**part, "salt": salt})).hexdigest()
    except (TypeError, ValueError):
        return None


def content_problem(values: Mapping[Any, Any]) -> str | None:
    """Why a format-2 entry's redactable content does not match its digest (None: it does).

    A redacted entry must hold no content and no salt; any other entry must hold content
    whose salted digest is the one the chain committed to.
    """
    if values.get("format") is None:
        return None
    if values.get("redacted_at") is not None:
        if any(stored_field(values, k) is not None for k in (*REDACTABLE_FIELDS, "salt")):
            return "it is marked redacted but still holds redactable content"
        return None
    if redactable_digest(values) != values.get("redactable_digest"):
        return "its probe hash or results do not match their digest"
    return None


def entry_hash_of(prev_hash: str, values: Mapping[Any, Any]) -> str:
    """The hash an entry with these stored values must have after `prev_hash`."""
    return chain_hash(prev_hash, entry_body(values))


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    try:
        prev = bytes.fromhex(prev_hash)
    except (TypeError, ValueError):
        return ""  # a tampered previous hash: matches nothing
    return hashlib.sha256(LEAF_PREFIX + prev + canonical_json(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class MatchRef:
    """A face returned to a caller: what the audit keeps of a search result."""

    face_id: str
    subject: str | None
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"face_id": self.face_id, "subject": self.subject, "similarity": float(self.similarity)}


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry before it is chained; `AuditEntry.of` builds it from a request and decision."""

    time: datetime
    operation: str
    decision: str  # "allow" | "deny"
    rule: str
    policy_version: str
    tenant: str | None = None
    key_id: str | None = None
    sector: str | None = None
    purpose: str | None = None
    case_reference: str | None = None
    collection: str | None = None
    mode: str = "post_event"
    probe_sha256: str | None = None
    results: tuple[MatchRef, ...] = ()
    max_fmr: float | None = None
    threshold: float | None = None
    max_results: int | None = None
    code: str | None = None
    request_id: str | None = None
    model_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    key_holder: str | None = None  # the person or system the API key names

    @classmethod
    def of(
        cls,
        request: GateRequest,
        decision: Decision,
        *,
        time: datetime,
        request_id: str | None = None,
        model_id: str | None = None,
        probe_sha256: str | None = None,
        results: Sequence[MatchRef] = (),
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        extra: dict[str, Any] = dict(details or {})
        if request.consent_reference:
            extra["consent_reference"] = request.consent_reference
        asked = {
            "max_fmr": request.requested_max_fmr,
            "threshold": request.requested_threshold,
            "max_results": request.requested_max_results,
        }
        if any(v is not None for v in asked.values()):
            extra["requested"] = asked
        if decision.fmr_holds_for is not None:  # how the threshold was derived, for matching operations
            extra["fmr_holds_for"] = decision.fmr_holds_for
            extra["certified_fmr"] = decision.certified_fmr
            extra["calibration"] = decision.calibration
            if decision.limiting_group is not None:
                extra["limiting_group"] = decision.limiting_group
        return cls(
            time=time,
            operation=request.operation.value,
            decision="allow" if decision.allowed else "deny",
            rule=decision.rule,
            policy_version=decision.policy_version,
            tenant=request.tenant.name,
            key_id=request.key_id,
            sector=request.tenant.sector,
            purpose=request.declared_purpose,
            case_reference=request.case_reference,
            collection=request.collection_id,
            mode=request.mode.value,
            probe_sha256=probe_sha256,
            results=tuple(results),
            max_fmr=decision.max_fmr,
            threshold=decision.threshold,
            max_results=decision.max_results,
            code=decision.code.value if decision.code else None,
            request_id=request_id,
            model_id=model_id,
            details=extra,
        )

    def with_details(self, **more: Any) -> AuditEntry:
        """The same entry with more details: how a governance step completes the engine's entry."""
        return replace(self, details={**self.details, **more})

    def columns(self, seq: int) -> dict[str, Any]:
        if self.time.tzinfo is None:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "audit time must be timezone-aware", field="time")
        values = {
            name: getattr(self, name) for name in HASHED_FIELDS if name not in ("seq", "time", *_JSON_FIELDS)
        }
        values["seq"] = seq
        values["key_holder"] = self.key_holder
        values["time"] = self.time.astimezone(UTC).isoformat(timespec="microseconds")
        values["results"] = canonical_json([r.to_dict() for r in self.results]).decode()
        values["details"] = canonical_json(dict(self.details)).decode()
        for name in ("max_fmr", "threshold"):
            values[name] = None if values[name] is None else float(values[name])
        values.update(format=FORMAT, salt=secrets.token_hex(16), redacted_at=None)
        values["redactable_digest"] = redactable_digest(values)
        return values


@dataclass(frozen=True, slots=True)
class Anchor:
    """The last entry of the chain: publish it, and no later rewrite can go unnoticed."""

    seq: int
    entry_hash: str


def head(session: Session) -> Anchor | None:
    row = session.execute(
        select(AuditHeadRow.seq, AuditHeadRow.entry_hash).where(AuditHeadRow.id == 1)
    ).first()
    return None if row is None else Anchor(row.seq, row.entry_hash)


def _broken(message: str) -> FacegateError:
    return FacegateError(ErrorCode.AUDIT_CHAIN_BROKEN, f"{message}; run `facegate audit verify`")


def append_entry(session: Session, entry: AuditEntry) -> Anchor:
    """Chain `entry` after the head, in the caller's transaction (never commits)."""
    current = session.execute(
        select(AuditHeadRow.seq, AuditHeadRow.entry_hash).where(AuditHeadRow.id == 1).with_for_update()
    ).first()
    seq, prev = (1, GENESIS) if current is None else (current.seq + 1, current.entry_hash)
    if session.execute(select(AuditLogRow.seq).where(AuditLogRow.seq >= seq).limit(1)).first() is not None:
        raise _broken(f"the audit log holds entries at or after {seq}, beyond its recorded head")
    values = entry.columns(seq)
    digest = entry_hash_of(prev, values)
    session.execute(insert(AuditLogRow).values(**values, prev_hash=prev, entry_hash=digest))
    if current is None:
        session.execute(insert(AuditHeadRow).values(id=1, seq=seq, entry_hash=digest))
    else:
        session.execute(update(AuditHeadRow).where(AuditHeadRow.id == 1).values(seq=seq, entry_hash=digest))
    return Anchor(seq, digest)


def stored_rows(
    session: Session, *, after_seq: int | None = None, limit: int | None = None, tenant: str | None = None
) -> Iterator[RowMapping]:
    """Entries as stored (raw column values), in seq order, streamed; only `tenant`'s if given."""
    query = select(*_COLUMNS).order_by(AuditLogRow.seq)
    if tenant is not None:
        query = query.where(AuditLogRow.tenant == tenant)
    if after_seq is not None:
        query = query.where(AuditLogRow.seq > after_seq)
    if limit is not None:
        query = query.limit(limit)
    result = session.execute(query.execution_options(yield_per=1000))
    try:
        for row in result:
            yield row._mapping
    finally:
        result.close()


def entry_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditLogRow)).scalar_one())


def read_entries(
    session: Session, *, after_seq: int = 0, limit: int = 100, tenant: str | None = None
) -> list[dict[str, Any]]:
    """One page of entries as JSON-ready dicts (for the HTTP API): those with seq > after_seq
    (of one tenant only, for its auditor)."""
    if limit < 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "limit must be at least 1", field="limit")
    return [_exported(row) for row in stored_rows(session, after_seq=after_seq, limit=limit, tenant=tenant)]


def _exported(row: Mapping[Any, Any]) -> dict[str, Any]:
    """Every stored field an officer needs to re-hash the entry (see docs/governance.md)."""
    out = {k: stored_field(row, k) for k in HASHED_FIELDS}
    out.update(entry_body(row))
    if row["format"] is not None:
        out.update({k: row[k] for k in UNHASHED_FIELDS})
    return {**out, "prev_hash": row["prev_hash"], "entry_hash": row["entry_hash"]}


def export_jsonl(
    session: Session, out: TextIO, *, since_seq: int | None = None, limit: int | None = None,
    tenant: str | None = None,
) -> int:
    """Write entries with seq > since_seq (of `tenant` only, if given) as JSON lines
    (hashable content plus hashes); returns the count."""
    written = 0
    for row in stored_rows(session, after_seq=since_seq, limit=limit, tenant=tenant):
        out.write(json.dumps(_exported(row), ensure_ascii=False, sort_keys=True) + "\n")
        written += 1
    return written
