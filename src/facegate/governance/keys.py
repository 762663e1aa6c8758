"""API keys: random, shown once, stored only as a hash, revocable, expiring.

A key reads `fg_<key_id>_<secret>`: the key id finds the row, the 256-bit secret proves
possession. Each key also has AWS credentials (an access key id and a secret access key)
for Signature Version 4 clients (boto3, the AWS CLI); that secret must be readable by the
server to check signatures, so it is stored sealed under the data directory's key (see
`facegate.store.sealing`), never in plain text. A key may be bound to one purpose and
case reference: every request made with it then carries them. Only SHA-256(secret) is stored; a slow password hash buys nothing for a
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
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, append_entry
from facegate.governance.request import TenantView
from facegate.governance.tenants import KeyInfo, tenant_view
from facegate.store.governance_tables import ApiKeyRow, TenantRow

KEY_PREFIX = "fg_"
AWS_KEY_PREFIX = "AKFG"  # 20 characters like AWS's own ids (AKIA...), told apart at a glance
_AWS_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_UNKNOWN_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """The only moment the full key exists outside its holder's hands."""

    key_id: str
    key: str
    tenant: str = ""
    holder: str | None = None  # the person or system the key belongs to
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    purpose: str | None = None
    case_reference: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The shape of `facegate key create --json`."""
        out: dict[str, str | None] = {
            "key_id": self.key_id, "key": self.key, "tenant": self.tenant, "holder": self.holder,
        }
        if self.aws_access_key_id is not None:
            out["aws_access_key_id"] = self.aws_access_key_id
            out["aws_secret_access_key"] = self.aws_secret_access_key
        if self.purpose is not None:
            out["purpose"] = self.purpose
            out["case_reference"] = self.case_reference
        return out


class Sealer(Protocol):
    """Seals a secret bound to a label (facegate.store.sealing.SecretBox)."""

    def seal(self, secret: str, label: str) -> str: ...


@dataclass(frozen=True, slots=True)
class AwsCredential:
    """What SigV4 verification needs of a key: whose it is (tenant and holder), its sealed
    secret, its binding."""

    key_id: str
    tenant: str
    access_key_id: str
    secret_sealed: str
    purpose: str | None
    case_reference: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    holder: str | None = None  # the person or system the key names (recorded with each request)

    def check_usable(self, now: datetime) -> None:
        """Revoked or expired: told only after the caller proved it holds the secret."""
        if self.revoked_at is not None:
            raise _unauthenticated(f"API key {self.key_id} was revoked")
        if self.expires_at is not None and self.expires_at <= now:
            raise _unauthenticated(f"API key {self.key_id} expired")


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _aws_access_key_id() -> str:
    return AWS_KEY_PREFIX + "".join(secrets.choice(_AWS_ALPHABET) for _ in range(16))


def create_key(
    session: Session, *, tenant: str, expires_at: datetime | None = None, holder: str | None = None,
    record: AuditEntry, purpose: str | None = None, case_reference: str | None = None,
    sealer: Sealer | None = None,
) -> NewKey:
    """A new key for `tenant`, naming its `holder` (recorded with every request made with
    it); the caller shows `key` once and facegate forgets it.

    With a `sealer`, the key also gets AWS credentials (the secret stored sealed). With a
    `purpose` (and `case_reference`), every request made with the key declares them.
    """
    holder = holder.strip() if holder else None
    if holder is not None and len(holder) > 255:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a key holder is at most 255 characters", field="holder")
    if case_reference is not None and purpose is None:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, "a case reference binds a key only together with a purpose",
            field="case_reference",
        )
    if session.get(TenantRow, tenant) is None:
        raise FacegateError(ErrorCode.TENANT_NOT_FOUND, f"no tenant named {tenant!r}", tenant=tenant)
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= record.time):
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            "expiry must be a timezone-aware time in the future",
            field="expires_at",
        )
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    access_key_id = _aws_access_key_id() if sealer is not None else None
    aws_secret = secrets.token_urlsafe(30) if sealer is not None else None  # 40 characters
    session.add(
        ApiKeyRow(
            key_id=key_id,
            tenant=tenant,
            secret_sha256=_secret_hash(secret),
            created_at=record.time,
            expires_at=expires_at,
            holder=holder,
            purpose=purpose,
            case_reference=case_reference,
            aws_access_key_id=access_key_id,
            aws_secret_sealed=(
                sealer.seal(aws_secret, access_key_id) if sealer and aws_secret and access_key_id else None
            ),
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
            aws_access_key_id=access_key_id,
            bound_purpose=purpose,
            bound_case_reference=case_reference,
        ),
    )
    return NewKey(
        key_id=key_id, key=f"{KEY_PREFIX}{key_id}_{secret}", tenant=tenant, holder=holder,
        aws_access_key_id=access_key_id, aws_secret_access_key=aws_secret, purpose=purpose,
        case_reference=case_reference,
    )


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


def key_binding(session: Session, key_id: str) -> tuple[str | None, str | None]:
    """The (purpose, case reference) a key is bound to; (None, None) for a free key."""
    row = session.get(ApiKeyRow, key_id)
    return (row.purpose, row.case_reference) if row is not None else (None, None)


def aws_credential(session: Session, access_key_id: str) -> AwsCredential | None:
    """The key behind an AWS access key id, or None when there is none (revoked and
    expired keys are returned: `check_usable` tells, once the signature is proven)."""
    row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.aws_access_key_id == access_key_id)).one_or_none()
    if row is None or row.aws_secret_sealed is None or row.aws_access_key_id is None:
        return None
    return AwsCredential(
        row.key_id, row.tenant, row.aws_access_key_id, row.aws_secret_sealed, row.purpose,
        row.case_reference, row.expires_at, row.revoked_at, row.holder,
    )


def apply_binding(
    bound_purpose: str | None, bound_case: str | None, purpose: str | None, case_reference: str | None
) -> tuple[str | None, str | None]:
    """The purpose and case a request made with a key carries: the key's own when it is
    bound (a request naming another is refused with KEY_BOUND), else the request's."""
    if bound_purpose is not None and purpose not in (None, bound_purpose):
        raise FacegateError(
            ErrorCode.KEY_BOUND, f"this key is bound to purpose {bound_purpose!r}, not {purpose!r}",
            bound_purpose=bound_purpose,
        )
    if bound_case is not None and case_reference not in (None, bound_case):
        raise FacegateError(
            ErrorCode.KEY_BOUND, f"this key is bound to case reference {bound_case!r}, not {case_reference!r}",
            bound_case_reference=bound_case,
        )
    return bound_purpose or purpose, bound_case or case_reference
