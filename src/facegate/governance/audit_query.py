"""Finding audit entries: the trail filtered by who, why, what, the decision and when.

The oversight console reads the trail through this, newest first, a page at a time. An
entry comes back with every stored column (hashes included), `results` and `details`
parsed, so columns added to the log later show up without a change here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.store.governance_tables import AuditLogRow

_TABLE = AuditLogRow.__table__
_JSON_COLUMNS = ("results", "details")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Each field set narrows the trail; `key` matches a key id or a key holder (the
    `key_holder` column: entries written before keys named holders match by id only);
    times are UTC, since <= time < until."""

    tenant: str | None = None
    key: str | None = None
    purpose: str | None = None
    case_reference: str | None = None
    operation: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_dict(self) -> dict[str, str]:
        """The filters in use, for the audit entry of the read that applied them."""
        return {
            k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v)
            for k, v in asdict(self).items()
            if v is not None
        }

    def clauses(self) -> list[ColumnElement[bool]]:
        c = _TABLE.c
        found: list[ColumnElement[bool]] = [
            c[name] == getattr(self, name)
            for name in ("tenant", "purpose", "case_reference", "operation", "decision")
            if getattr(self, name) is not None
        ]
        if self.key is not None:
            found.append(or_(c.key_id == self.key, c.key_holder == self.key))
        if self.since is not None:
            found.append(c.time >= _iso(self.since))
        if self.until is not None:
            found.append(c.time < _iso(self.until))
        return found


def _iso(value: datetime) -> str:
    """Times compare as the stored ISO text (UTC, microseconds), as the report does."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _entry(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    for name in _JSON_COLUMNS:
        try:
            values[name] = json.loads(values[name])
        except (TypeError, ValueError):
            pass  # a tampered value is shown as it is stored
    return values


def find_entries(
    session: Session, flt: AuditFilter, *, before_seq: int | None = None, limit: int = 50,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Entries matching `flt` with seq < before_seq, newest first, at most `limit`; only
    `tenant`'s own entries when it is set (an auditor's scope), whatever `flt` asks."""
    if limit < 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "limit must be at least 1", field="limit")
    query = select(_TABLE).where(*flt.clauses())
    if tenant is not None:
        query = query.where(_TABLE.c.tenant == tenant)
    if before_seq is not None:
        query = query.where(_TABLE.c.seq < before_seq)
    return [_entry(r) for r in session.execute(query.order_by(_TABLE.c.seq.desc()).limit(limit))]


def get_entry(session: Session, seq: int, tenant: str | None = None) -> dict[str, Any]:
    """One entry; with `tenant` set, another tenant's entry is answered as a missing one."""
    query = select(_TABLE).where(_TABLE.c.seq == seq)
    if tenant is not None:
        query = query.where(_TABLE.c.tenant == tenant)
    row = session.execute(query).first()
    if row is None:
        raise FacegateError(ErrorCode.NOT_FOUND, f"no audit entry {seq}", seq=seq)
    return _entry(row)
