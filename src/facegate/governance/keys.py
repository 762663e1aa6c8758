"""API keys: random, shown once, stored only as a hash, revocable, expiring.

A key reads `fg_<key_id>_<secret>`: the key id finds the row, the 256-bit secret proves
possession. Only SHA-256(secret) is stored; a slow password hash buys nothing for a
256-bit random secret, and a stolen database then yields no usable key. The comparison is
constant-time, and an unknown key id costs the same comparison as a known one. Whether a
key is expired or revoked is only told to whoever holds its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, append_entry
from facegate.governance.request import TenantView
from facegate.governance.tenants import KeyInfo, tenant_view
from facegate.store.governance_tables import ApiKeyRow, TenantRow

KEY_PREFIX = "fg_"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_UNKNOWN_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """The only moment the full key exists outside its holder's hands."""

    key_id: str
    key: str
    tenant: str = ""
    holder: str | None = None  # the person or system the key belongs to

    def to_dict(self) -> dict[str, str | None]:
        """The shape of `facegate key create --json`."""
        return {"key_id": self.key_id, "key": self.key, "tenant": self.tenant, "holder": self.holder}


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(
    session: Session, *, tenant: str, expires_at: datetime | None = None, holder: str | None = None,
    record: AuditEntry,
) -> NewKey:
    """A new key for `tenant`, naming its `holder` (recorded with every request made with
    it); the caller shows `key` once and facegate forgets it."""
    holder = holder.strip() if holder else None
    if holder is not None and len(holder) > 255:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a key holder is at most 255 characters", field="holder")
    if session.get(TenantRow, tenant) is None:
        raise FacegateError(ErrorCode.TENANT_NOT_FOUND, f"no tenant named {tenant!r}", tenant=tenant)
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= record.time):
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            "expiry must be a timezone-aware time in the future",
            field="expires_at",
        )
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    session.add(
        ApiKeyRow(
            key_id=key_id,
            tenant=tenant,
            secret_sha256=_secret_hash(secret),
            created_at=record.time,
            expires_at=expires_at,
            holder=holder,
        )
    )
    session.flush()
    append_entry(
        session,
        record.with_details(
            action="key_create",
            target_tenant=tenant,
            target_key_id=key_id,
            expires_at=expires_at.isoformat() if expires_at else None,
            holder=holder,
        ),
    )
    return NewKey(key_id=key_id, key=f"{KEY_PREFIX}{key_id}_{secret}", tenant=tenant, holder=holder)


def revoke_key(session: Session, key_id: str, *, record: AuditEntry) -> KeyInfo:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise FacegateError(ErrorCode.KEY_NOT_FOUND, f"no key with id {key_id!r}", key_id=key_id)
    if row.revoked_at is None:
        row.revoked_at = record.time
        session.flush()
    append_entry(
        session, record.with_details(action="key_revoke", target_tenant=row.tenant, target_key_id=key_id)
    )
    return KeyInfo(row.key_id, row.created_at, row.expires_at, row.revoked_at, row.holder)


def _unauthenticated(message: str) -> FacegateError:
    return FacegateError(ErrorCode.UNAUTHENTICATED, message)


def authenticate(session: Session, presented: str, now: datetime) -> tuple[TenantView, str]:
    """The tenant and key id behind a presented key, or UNAUTHENTICATED.

    A suspended tenant authenticates: its requests then reach the gate, are denied with
    TENANT_SUSPENDED and are audited, instead of vanishing as anonymous failures.
    """
    if now.tzinfo is None:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, "authentication time must be timezone-aware", field="now"
        )
    key_id, _, secret = presented.removeprefix(KEY_PREFIX).partition("_")
    if not presented.startswith(KEY_PREFIX) or not _KEY_ID.match(key_id) or not secret:
        raise _unauthenticated("malformed API key")
    row = session.get(ApiKeyRow, key_id)
    stored = row.secret_sha256 if row is not None else _UNKNOWN_KEY_HASH
    if not hmac.compare_digest(_secret_hash(secret), stored) or row is None:
        raise _unauthenticated("invalid API key")
    if row.revoked_at is not None:
        raise _unauthenticated(f"API key {key_id} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise _unauthenticated(f"API key {key_id} expired")
    return tenant_view(session, row.tenant), key_id


def key_holder(session: Session, key_id: str) -> str | None:
    """Who a key names as its holder (None: a key made before keys named one, or without)."""
    row = session.get(ApiKeyRow, key_id)
    return None if row is None else row.holder
