"""Console sessions: a browser signed in with an API key holds a random token, never the key.

The session cookie carries a 256-bit random token; the catalog keeps only its SHA-256 (a
stolen database yields no usable session, as with API keys), the tenant and key it was
opened with, its CSRF token and when it ends. A session ends at its expiry, at sign-out,
or as soon as its key is revoked or expires: it never outlives the key that opened it.
Opening and closing are administrative steps whose audit entry the engine hands in as
`record` (operations `console_sign_in` and `console_sign_out`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from facegate.governance.audit import AuditEntry, append_entry
from facegate.store.console_tables import ConsoleSessionRow
from facegate.store.governance_tables import ApiKeyRow


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A live session as the console needs it on each request."""

    token_sha256: str
    tenant: str
    key_id: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewConsoleSession:
    """The only moment the token exists outside the browser's cookie."""

    token: str
    session: ConsoleSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session, *, tenant: str, key_id: str, lifetime: timedelta, record: AuditEntry
) -> NewConsoleSession:
    """A new session for `tenant`'s key; sessions expired by now are swept in the same step."""
    now = record.time
    session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at <= now))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    row = ConsoleSessionRow(
        token_sha256=token_hash(token), tenant=tenant, key_id=key_id, csrf_token=csrf,
        created_at=now, expires_at=now + lifetime,
    )  # fmt: skip
    session.add(row)
    session.flush()
    append_entry(session, record.with_details(action="console_sign_in", expires_at=row.expires_at.isoformat()))
    return NewConsoleSession(token, _view(row))


def _view(row: ConsoleSessionRow) -> ConsoleSession:
    return ConsoleSession(row.token_sha256, row.tenant, row.key_id, row.csrf_token, row.expires_at)


def find_session(session: Session, token: str, now: datetime) -> ConsoleSession | None:
    """The live session behind a cookie's token, or None (unknown, ended, expired, or its key gone)."""
    row = session.get(ConsoleSessionRow, token_hash(token))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    key = session.get(ApiKeyRow, row.key_id)
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    return _view(row)


def close_session(session: Session, token_sha256: str, *, now: datetime, record: AuditEntry | None) -> None:
    """End a session; `record` is the sign-out's audit entry (None when the gate denied the
    sign-out and recorded that itself: a session is ended whatever the policy says)."""
    row = session.get(ConsoleSessionRow, token_sha256)
    if row is not None and row.ended_at is None:
        row.ended_at = now
        session.flush()
    if record is not None:
        append_entry(session, record.with_details(action="console_sign_out"))
