"""Tenants: who uses facegate, in which sector, with which roles, and the local operator.

A tenant is a customer of the installation. Its sector decides which moratoria and
collection rules reach it; its roles decide which kinds of operation it may ask for; its
approved purposes (see `approvals`) decide what it may process faces for. Each change is
an administrative operation: the engine decides it (operation `tenant_admin`) and hands the
allowed request's audit entry in as `record`; the change and its audit entry are written
together in the caller's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.approvals import ApprovalInfo, approvals_of, check_purpose_open, grant
from facegate.governance.audit import AuditEntry, append_entry
from facegate.governance.permissions import Role
from facegate.governance.policy import Policy
from facegate.governance.request import LOCAL_OPERATOR, TenantStatus, TenantView
from facegate.store.governance_tables import ApiKeyRow, PurposeApprovalRow, TenantRow

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    holder: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "holder": self.holder,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """A tenant as `facegate tenant describe` shows it (key secrets are never stored)."""

    name: str
    sector: str
    status: TenantStatus
    roles: tuple[Role, ...]
    created_at: datetime
    approvals: tuple[ApprovalInfo, ...]
    keys: tuple[KeyInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sector": self.sector,
            "status": self.status.value,
            "roles": [r.value for r in self.roles],
            "created_at": self.created_at.isoformat(),
            "purposes": sorted(a.purpose for a in self.approvals if a.status == "approved"),
            "approvals": [a.to_dict() for a in self.approvals],
            "keys": [k.to_dict() for k in self.keys],
        }


def local_operator(policy: Policy) -> TenantView:
    """The CLI's own identity: every role, the sector and purposes the policy gives it."""
    return TenantView(
        name=LOCAL_OPERATOR,
        sector=policy.rules.local_operator.sector,
        status=TenantStatus.ACTIVE,
        purposes=policy.local_operator_purposes,
        roles=frozenset(Role),
    )


def _row(session: Session, name: str) -> TenantRow:
    row = session.get(TenantRow, name)
    if row is None:
        raise FacegateError(ErrorCode.TENANT_NOT_FOUND, f"no tenant named {name!r}", tenant=name)
    return row


def tenant_view(session: Session, name: str) -> TenantView:
    row = _row(session, name)
    approved = session.scalars(
        select(PurposeApprovalRow.purpose).where(
            PurposeApprovalRow.tenant == name, PurposeApprovalRow.status == "approved"
        )
    )
    return TenantView(
        row.name,
        row.sector,
        TenantStatus(row.status),
        frozenset(approved),
        frozenset(Role(r) for r in row.roles),
    )


def describe_tenant(session: Session, name: str) -> TenantInfo:
    row = _row(session, name)
    keys = session.scalars(select(ApiKeyRow).where(ApiKeyRow.tenant == name).order_by(ApiKeyRow.created_at))
    return TenantInfo(
        name=row.name,
        sector=row.sector,
        status=TenantStatus(row.status),
        roles=tuple(Role(r) for r in row.roles),
        created_at=row.created_at,
        approvals=approvals_of(session, name),
        keys=tuple(KeyInfo(k.key_id, k.created_at, k.expires_at, k.revoked_at, k.holder) for k in keys),
    )


def list_tenants(session: Session) -> list[TenantInfo]:
    return [
        describe_tenant(session, name)
        for name in session.scalars(select(TenantRow.name).order_by(TenantRow.name))
    ]


def _roles(roles: Iterable[str], allow_empty: bool = False) -> list[Role]:
    items = list(roles)
    try:
        chosen = sorted({Role(r) for r in items})
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"unknown role in {items} (known: {known})", field="roles"
        ) from None
    if not chosen and not allow_empty:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a tenant needs at least one role", field="roles")
    return chosen


def create_tenant(
    session: Session,
    policy: Policy,
    *,
    name: str,
    sector: str,
    purposes: Iterable[str] = (),
    roles: Iterable[str] = (Role.OPERATOR,),
    record: AuditEntry,
) -> TenantInfo:
    """A new tenant; the purposes an administrator names here are approved at once."""
    if not _NAME.match(name):
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"tenant name {name!r}: use a-z, 0-9, '.', '_', '-'", field="name"
        )
    if name == LOCAL_OPERATOR or session.get(TenantRow, name) is not None:
        raise FacegateError(ErrorCode.TENANT_EXISTS, f"tenant {name!r} already exists", tenant=name)
    if sector not in policy.rules.all_sectors:
        known = ", ".join(sorted(policy.rules.all_sectors))
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"unknown sector {sector!r} (known: {known})", field="sector"
        )
    chosen_roles, chosen_purposes = _roles(roles), sorted(set(purposes))
    if Role.OVERSIGHT in chosen_roles:
        check_oversight_grant(policy, sector, record)
    for purpose in chosen_purposes:
        check_purpose_open(policy, purpose, sector)
    session.add(
        TenantRow(
            name=name,
            sector=sector,
            status=TenantStatus.ACTIVE.value,
            roles=[r.value for r in chosen_roles],
            created_at=record.time,
        )
    )
    session.flush()
    for purpose in chosen_purposes:
        grant(session, tenant=name, purpose=purpose, by=record.tenant or LOCAL_OPERATOR, time=record.time)
    append_entry(
        session,
        record.with_details(
            action="tenant_create",
            target_tenant=name,
            sector=sector,
            roles=[r.value for r in chosen_roles],
            approved_purposes=chosen_purposes,
        ),
    )
    return describe_tenant(session, name)


def set_status(session: Session, name: str, status: TenantStatus | str, *, record: AuditEntry) -> TenantInfo:
    """Suspend (every request denied with TENANT_SUSPENDED, and audited) or reactivate."""
    try:
        status = TenantStatus(status)
    except ValueError:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"unknown status {status!r}", field="status"
        ) from None
    row = _row(session, name)
    previous, row.status = row.status, status.value
    session.flush()
    append_entry(
        session,
        record.with_details(
            action="tenant_status", target_tenant=name, status=status.value, previous=previous
        ),
    )
    return describe_tenant(session, name)


def check_oversight_grant(policy: Policy, sector: str, record: AuditEntry) -> None:
    """The oversight role reads every tenant's entries: only the local operator (the
    installation itself) grants it, and only in the sectors the policy names for it."""
    if record.tenant != LOCAL_OPERATOR:
        raise FacegateError(
            ErrorCode.ROLE_REQUIRED, "only the local operator may grant the oversight role", rule="role:oversight"
        )
    allowed = policy.rules.oversight_sectors
    if allowed is not None and sector not in allowed:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            f"the policy gives the oversight role only to sectors {', '.join(allowed)}, not {sector!r}",
            field="roles",
        )


def change_roles(
    session: Session, policy: Policy, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = (),
    record: AuditEntry,
) -> TenantInfo:
    """Add and remove roles (`facegate tenant roles NAME --add R --remove R`), audited."""
    row = _row(session, name)
    added, removed = _roles(add, allow_empty=True), _roles(remove, allow_empty=True)
    if Role.OVERSIGHT in added and Role.OVERSIGHT.value not in row.roles:
        check_oversight_grant(policy, row.sector, record)
    chosen = (set(row.roles) | {r.value for r in added}) - {r.value for r in removed}
    return set_roles(session, name, sorted(chosen), record=record)


def set_roles(session: Session, name: str, roles: Iterable[str], *, record: AuditEntry) -> TenantInfo:
    row = _row(session, name)
    chosen = [r.value for r in _roles(roles)]
    previous, row.roles = list(row.roles), chosen
    session.flush()
    append_entry(
        session,
        record.with_details(action="tenant_roles", target_tenant=name, roles=chosen, previous=previous),
    )
    return describe_tenant(session, name)
