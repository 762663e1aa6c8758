"""What the oversight console reads and does, each step decided and recorded by the gate.

Signing in checks the API key like the HTTP API does, then opens a session as the
operation `console_sign_in` (open to every role); a key that fails is recorded as a
refused sign-in. The pages read through the same operations as the CLI and the API
(`facegate.operations.audit`, `.admin`); the reads only the console needs (a filtered
trail, the decided reviews, pending purpose requests, recorded bias audits, the policy
simulator) are here, each an audited operation of the role it concerns. Reads of the
trail are scoped as `facegate.operations.audit` scopes them: oversight sees every
tenant's entries and bias audits, an auditor only its own tenant's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import (
    ApprovalInfo,
    AuditEntry,
    Decision,
    Operation,
    Policy,
    PolicyDenied,
    Review,
    Role,
    append_entry,
    authenticate,
    list_reviews,
    pending_approvals,
    tenant_view,
)
from facegate.governance.audit_query import AuditFilter, find_entries, get_entry
from facegate.governance.bias_evidence import (
    RecordedBiasAudit,
    list_bias_audits,
    recorded_audits,
)
from facegate.governance.console_sessions import (
    ConsoleSession,
    NewConsoleSession,
    close_session,
    find_session,
    open_session,
)
from facegate.governance.decision import Promise, bias_audit_problem, purpose_promise
from facegate.governance.keys import key_binding, key_holder
from facegate.governance.review_thumbnails import lead_thumbnails
from facegate.operations.admin import policy_check
from facegate.operations.audit import scope


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Who is signed in: the session, and the tenant's sector and roles as they are now."""

    session: ConsoleSession
    sector: str
    roles: frozenset[Role]
    key_holder: str | None = None  # who the session's key names: four eyes compares it
    binding: tuple[str | None, str | None] = (None, None)  # the key's purpose and case, if bound

    def caller(self, request_id: str) -> Caller:
        """As the API's caller for the same key: a bound key declares its purpose and case."""
        purpose, case_reference = self.binding
        return Caller(tenant=self.session.tenant, key_id=self.session.key_id, request_id=request_id,
                      key_holder=self.key_holder, purpose=purpose, case_reference=case_reference, binding=self.binding)


def sign_in(
    engine: Facegate, key: str, request_id: str, refused: Callable[[FacegateError], None] | None = None
) -> NewConsoleSession:
    """A session for the holder of `key`; a key that fails is recorded as a refused sign-in,
    by `refused` when given (the service: one entry per client address and minute)."""
    try:
        with engine.read_sessions.begin() as session:  # as the API's: no write lock for a lookup
            view, key_id = authenticate(session, key.strip(), engine.now())
            holder = key_holder(session, key_id)
    except FacegateError as exc:
        if refused is not None:
            refused(exc)
        else:
            engine.gate.refuse(Caller(request_id=request_id), Operation.CONSOLE_SIGN_IN, exc)
        raise
    caller = Caller(tenant=view.name, key_id=key_id, request_id=request_id, key_holder=holder)
    lifetime = timedelta(minutes=engine.settings.console_session_minutes)
    return engine.gate.run_recorded(caller, Operation.CONSOLE_SIGN_IN, lambda s, record: open_session(
        s, tenant=view.name, key_id=key_id, lifetime=lifetime, record=record,
    ))


def signed_in(engine: Facegate, token: str) -> ConsoleUser:
    """The user behind a session cookie's token, or UNAUTHENTICATED (checked like a bearer key,
    on every request, in a read-only transaction; not itself an operation)."""
    with engine.read_sessions.begin() as session:
        found = find_session(session, token, engine.now())
        if found is None:
            raise FacegateError(ErrorCode.UNAUTHENTICATED, "not signed in, or the session ended")
        view = tenant_view(session, found.tenant)
        holder, binding = key_holder(session, found.key_id), key_binding(session, found.key_id)
    return ConsoleUser(found, view.sector, view.roles, holder, binding)


def sign_out(engine: Facegate, user: ConsoleUser, request_id: str) -> None:
    """End the session. A denied sign-out (a tenant suspended meanwhile) is recorded by the
    gate, and the session is ended all the same: leaving never needs permission."""
    token_sha256 = user.session.token_sha256
    try:
        engine.gate.run_recorded(user.caller(request_id), Operation.CONSOLE_SIGN_OUT, lambda s, record: close_session(
            s, token_sha256, now=record.time, record=record,
        ))
    except PolicyDenied:
        with engine.sessions.begin() as session:
            close_session(session, token_sha256, now=engine.now(), record=None)


def _read(engine: Facegate, caller: Caller, operation: Operation, read: Any, **details: Any) -> Any:
    """Run `read(session)` as an audited read of `operation`, recorded with `details`."""
    def act(session, record):  # type: ignore[no-untyped-def]
        value = read(session)
        append_entry(session, record.with_details(**details))
        return value

    return engine.gate.run_recorded(caller, operation, act)


def _read_trail(engine: Facegate, caller: Caller, read: Any, **details: Any) -> Any:
    """Run `read(session, tenant)` as an audited read of the trail, `tenant` being whose
    entries the admitted role may see (None: all); the scope is recorded with `details`."""
    def act(session, record):  # type: ignore[no-untyped-def]
        whose = scope(record)
        value = read(session, whose)
        append_entry(session, record.with_details(**details, scope=whose or "all"))
        return value

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def audit_trail(
    engine: Facegate, caller: Caller, flt: AuditFilter, before_seq: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    return _read_trail(engine, caller, lambda s, whose: find_entries(
        s, flt, before_seq=before_seq, limit=limit, tenant=whose,
    ), action="audit_search", filters=flt.to_dict(), before_seq=before_seq)


def audit_entry(engine: Facegate, caller: Caller, seq: int) -> dict[str, Any]:
    """One entry; another tenant's, outside an auditor's scope, is answered as missing."""
    return _read_trail(engine, caller, lambda s, whose: get_entry(s, seq, tenant=whose), action="audit_entry", seq=seq)


def decided_reviews(engine: Facegate, caller: Caller, limit: int = 100) -> list[Review]:
    """The caller's tenant's leads that a reviewer has decided, newest first."""
    tenant = caller.tenant or "local"

    def read(session):  # type: ignore[no-untyped-def]
        newest: deque[Review] = deque(maxlen=limit)
        after = 0
        while page := list_reviews(session, tenant=tenant, status=None, after_id=after, limit=1000,
                                   binding=caller.binding):
            newest.extend(r for r in page if r.status != "pending")
            after = page[-1].review_id
        return list(reversed(newest))

    return _read(engine, caller, Operation.REVIEW, read, action="review_history")


THUMBNAILS = ("probe", "candidate")


def thumbnails_shown(engine: Facegate, caller: Caller, review_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    """For each of the caller's tenant's leads: is a probe and a candidate thumbnail kept?"""
    tenant = caller.tenant or "local"

    def read(session):  # type: ignore[no-untyped-def]
        found = {i: lead_thumbnails(session, tenant=tenant, review_id=i, binding=caller.binding) for i in review_ids}
        return {i: (t.probe is not None, t.candidate is not None) for i, t in found.items()}

    return _read(engine, caller, Operation.REVIEW, read, action="review_thumbnails", review_ids=review_ids)


def thumbnail(engine: Facegate, caller: Caller, review_id: int, which: str) -> bytes:
    """The JPEG of a lead's probe or candidate face for its reviewer (a recorded look at
    biometric data); NOT_FOUND where none is kept."""
    if which not in THUMBNAILS:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a thumbnail is probe or candidate", field="which")
    tenant = caller.tenant or "local"

    def read(session):  # type: ignore[no-untyped-def]
        kept = lead_thumbnails(session, tenant=tenant, review_id=review_id, binding=caller.binding)
        sealed = kept.probe if which == "probe" else kept.candidate
        if sealed is None:
            raise FacegateError(ErrorCode.NOT_FOUND, f"no {which} thumbnail is kept for lead {review_id}")
        return sealed

    sealed = _read(engine, caller, Operation.REVIEW, read, action="review_thumbnail", review_id=review_id,
                   thumbnail=which)
    return engine.codec.open_thumbnail(sealed)


def purpose_requests(engine: Facegate, caller: Caller) -> list[ApprovalInfo]:
    """Purpose approvals waiting for an administrator, oldest first."""
    return _read(engine, caller, Operation.TENANT_ADMIN, pending_approvals, action="approval_list")


@dataclass(frozen=True, slots=True)
class RequirementCheck:
    """Whether one recorded audit meets one purpose's `require_bias_audit`, and why not."""

    purpose: str
    audit_id: int
    problem: str | None


@dataclass(frozen=True, slots=True)
class BiasAuditBoard:
    audits: list[RecordedBiasAudit]
    model_id: str
    checks: list[RequirementCheck]  # every audit of the active model against every requirement
    in_force: dict[str, str | None]  # purpose -> the gate's verdict now (None: satisfied)


def bias_audits(engine: Facegate, caller: Caller) -> BiasAuditBoard:
    """Recorded audits, and for each purpose that requires one, which audits would satisfy it
    and what the gate decides now (the latest audit on the dataset decides), by the same test.
    An auditor sees the audits its own tenant recorded; the verdict in force is the gate's,
    from every recorded audit of the engine's template space and detector (an audit run with
    another detector vouches for nothing here), as `facegate policy check` would answer it."""
    audits, every = _read_trail(engine, caller, lambda s, whose: (
        list_bias_audits(s, recorded_by=whose), recorded_audits(s, engine.model_id, engine.space.audit_id),
    ), action="bias_audit_list")
    counted = {a.audit_id for a in every}
    active = [a.summary for a in audits if a.summary.audit_id in counted]
    checks, in_force = [], {}
    rules = engine.policy.rules
    for name, purpose in rules.purposes.items():
        need = purpose.require_bias_audit
        if need is None:
            continue
        # The threshold the gate would use: the purpose's promise (population or every group).
        promise = purpose_promise(rules, name, purpose.max_fmr, engine.calibration, engine.group_calibration)
        if not isinstance(promise, Promise):
            in_force[name] = promise.reason  # refused before any audit is consulted
            continue
        threshold = promise.threshold
        checks += [RequirementCheck(name, a.audit_id, bias_audit_problem(need, [a], threshold)) for a in active]
        in_force[name] = bias_audit_problem(need, every, threshold)
    return BiasAuditBoard(audits, engine.model_id, checks, in_force)


def policy_in_force(engine: Facegate, caller: Caller) -> Policy:
    """The policy that governs the caller, read as an audited operation (every role may)."""
    policy = engine.policy
    return _read(engine, caller, Operation.POLICY_READ, lambda s: policy, action="policy_read",
                 read_version=policy.version)


def simulate(engine: Facegate, caller: Caller, asked: Caller, operation: Operation, at: datetime) -> Decision:
    """The decision `asked` would get for `operation` at `at`: `facegate policy check`'s own
    dry run (the same `decide`), offered to auditors and recorded as an audit read.

    A decision tells a tenant's sector, roles and approved purposes, so it is scoped as the
    trail is: the oversight role asks about any tenant, an auditor about its own only (any
    other name, existing or not, is refused alike and the refusal recorded)."""
    who = replace(asked, request_id=caller.request_id)
    question = {"tenant": who.tenant, "purpose": who.purpose, "case_reference": who.case_reference,
                "operation": operation.value, "mode": who.mode, "at": at.isoformat()}

    out_of_scope = FacegateError(
        ErrorCode.ROLE_REQUIRED,
        "an auditor simulates only its own tenant's decisions; the oversight role may ask about any tenant",
        rule="role:oversight",
    )

    def ask(session: Session, record: AuditEntry) -> bool:
        """Record the question (and, outside the reader's scope, its refusal); whether it may be answered."""
        whose = scope(record)
        allowed = whose is None or who.tenant == whose
        refused = {} if allowed else {"error": out_of_scope.code.value}
        append_entry(session, record.with_details(action="policy_simulate", question=question, scope=whose or "all",
                                                  **refused))
        return allowed

    if not engine.gate.run_recorded(caller, Operation.AUDIT_READ, ask):
        raise out_of_scope
    return policy_check(engine, who, operation, at)
