"""Tenants, keys, purpose approvals, human review and the policy dry run.

Each administrative step is itself decided and audited: `tenant_admin` needs the admin
role (the local operator has it), and the governance functions write the decision's
audit entry, with their details, themselves (`record=`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Limits
from facegate.governance import (
    AuditEntry,
    Decision,
    NewKey,
    Operation,
    Review,
    TenantInfo,
    append_entry,
    create_key,
    create_tenant,
    decide_approval,
    decide_review,
    describe_tenant,
    list_reviews,
    list_tenants,
    request_approval,
    revoke_key,
    set_status,
)
from facegate.governance.approvals import ApprovalInfo
from facegate.governance.tenants import LOCAL_OPERATOR, KeyInfo, change_roles
from facegate.operations.scoring import estimates

T = TypeVar("T")


def administer(
    engine: Facegate, caller: Caller, operation: Operation, act: Callable[[Session, AuditEntry], T]
) -> T:
    return engine.gate.run_recorded(caller, operation, act)


def new_tenant(
    engine: Facegate, caller: Caller, name: str, sector: str, purposes: Sequence[str] = (),
    roles: Sequence[str] = ("operator",),
) -> TenantInfo:
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: create_tenant(
        s, engine.policy, name=name, sector=sector, purposes=purposes, roles=roles, record=record
    ))


def tenants(engine: Facegate, caller: Caller) -> list[TenantInfo]:
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: _read(s, record, list_tenants(s)))


def tenant(engine: Facegate, caller: Caller, name: str) -> TenantInfo:
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: _read(s, record, describe_tenant(s, name)))


def set_tenant_status(engine: Facegate, caller: Caller, name: str, status: str) -> TenantInfo:
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: set_status(s, name, status, record=record))


def new_key(
    engine: Facegate, caller: Caller, tenant_name: str, expires_at: datetime | None = None, holder: str | None = None,
    purpose: str | None = None, case_reference: str | None = None,
) -> NewKey:
    """A key (with AWS credentials) naming its holder, optionally bound to a purpose the policy defines."""
    if purpose is not None and purpose not in engine.policy.rules.purposes:
        raise FacegateError(ErrorCode.PURPOSE_UNKNOWN, f"purpose {purpose!r} is not defined by the policy")
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: create_key(
        s, tenant=tenant_name, expires_at=expires_at, holder=holder, record=record, purpose=purpose,
        case_reference=case_reference, sealer=engine.secret_box,
    ))


def tenant_roles(
    engine: Facegate, caller: Caller, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> TenantInfo:
    """Add and remove a tenant's roles (oversight: granted by the local operator only)."""
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: change_roles(
        s, engine.policy, name, add=add, remove=remove, record=record
    ))


def drop_key(engine: Facegate, caller: Caller, key_id: str) -> KeyInfo:
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: revoke_key(s, key_id, record=record))


def ask_approval(engine: Facegate, caller: Caller, purpose: str, note: str = "") -> ApprovalInfo:
    return administer(engine, caller, Operation.REQUEST_APPROVAL, lambda s, record: request_approval(
        s, engine.policy, purpose=purpose, note=note, record=record
    ))


def answer_approval(
    engine: Facegate, caller: Caller, tenant_name: str, purpose: str, approve: bool, note: str = ""
) -> ApprovalInfo:
    return administer(engine, caller, Operation.TENANT_ADMIN, lambda s, record: decide_approval(
        s, engine.policy, tenant=tenant_name, purpose=purpose, approve=approve, note=note, record=record
    ))


def pending_reviews(
    engine: Facegate, caller: Caller, *, status: str | None = "pending", case_reference: str | None = None,
    after_id: int = 0, limit: int = 100,
) -> list[Review]:
    """Leads of the caller's own tenant only: a review is visible inside the tenant that searched."""
    who = caller.tenant or LOCAL_OPERATOR
    return administer(engine, caller, Operation.REVIEW, lambda s, record: _read(s, record, list_reviews(
        s, tenant=who, status=status, case_reference=case_reference, after_id=after_id, limit=limit,
        binding=caller.binding,
    )))


def review(engine: Facegate, caller: Caller, review_id: int, verdict: str, note: str = "") -> Review:
    """A verdict on a lead of the caller's tenant; four eyes where the purpose demands it."""
    four_eyes = frozenset(p for p, rules in engine.policy.rules.purposes.items() if rules.four_eyes)
    return administer(engine, caller, Operation.REVIEW, lambda s, record: decide_review(
        s, review_id, verdict=verdict, note=note, record=record, four_eyes_purposes=four_eyes, binding=caller.binding,
    ))


def lead_dict(engine: Facegate, lead: Review) -> dict[str, object]:
    """A lead as `GET /v1/reviews` and `facegate review list --json` show it, with what its
    similarity means as a search result says it: the population's estimated false-match
    rate and the worst group's (a reviewer must not read a population average as the
    chance that this candidate is someone else)."""
    return {**lead.to_dict(), **estimates(engine, lead.similarity).to_dict()}


def _read(session: Session, record: AuditEntry, value: T) -> T:
    """Reads are audited too: who looked at the tenant list is part of the record."""
    append_entry(session, record)
    return value


def policy_check(
    engine: Facegate, caller: Caller, operation: Operation, at: datetime, collection_id: str | None = None,
    limits: Limits = Limits(),
) -> Decision:
    """Dry run: the decision the gate would take at `at` (the only place a time is given).

    Nothing is performed and nothing is written to the audit log.
    """
    with engine.sessions.begin() as session:
        request = engine.gate.request(session, caller, operation, collection_id, limits)
        return engine.gate.decide(session, request, at)
