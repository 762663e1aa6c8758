"""The gate every operation passes: decide, act, and record, as one unit.

`Gatekeeper.run` is the only way the engine performs an operation:

1. decide (a short read-only transaction that takes no write lock; a denial is decided
   again under the lock, written to the audit log and raised);
2. `prepare` the costly part without holding the write lock (decode, detect, embed, a
   vector search);
3. in one transaction, decide again with the state now in force (a tenant suspended
   meanwhile is refused), perform the writes, append the audit entry with the results,
   and open review items when the purpose requires human review.

The operation and its audit entry commit together or not at all; a refusal after an
allow (bad image, unknown face) is recorded with its error code. So every operation
leaves exactly one audit entry.

A request that names a collection carries what the catalog says of it (owner, grants to
the caller); a collection that is missing, or that the caller neither owns nor was
granted the operation on, is refused by the decision in step 1 with the same
COLLECTION_NOT_FOUND error, message and cost in both cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import (
    AuditEntry,
    Decision,
    GateRequest,
    MatchRef,
    Operation,
    PolicyDenied,
    PolicyHolder,
    append_entry,
    decide,
    local_operator,
    open_reviews,
    parse_mode,
    recorded_audits,
    tenant_view,
)
from facegate.governance.permissions import MATCHING_OPERATIONS, PURPOSE_OPERATIONS
from facegate.governance.request import Calibration, CollectionAccess
from facegate.store.catalog import collection_not_found
from facegate.store.governance_tables import AuditLogRow
from facegate.store.grants import owner_and_grants
from facegate.vision.group_calibration import GroupCalibration

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks and why: carried by every request from the CLI, the service or Python.

    `tenant=None` is the built-in local operator (the CLI without --tenant), whose sector
    and purposes the policy sets and whose operations are audited like any other.
    """

    tenant: str | None = None
    key_id: str | None = None
    purpose: str | None = None
    case_reference: str | None = None
    consent_reference: str | None = None
    mode: str = "post_event"
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    key_holder: str | None = None  # the person or system the key names (recorded in the audit)
    # The key's (purpose, case reference) when it is bound to them: what it may see of the
    # tenant's leads and video searches is narrowed to them, whatever a request declares.
    binding: tuple[str | None, str | None] = (None, None)


@dataclass(frozen=True, slots=True)
class Limits:
    """What the caller asked for; the decision may only make these stricter."""

    max_fmr: float | None = None
    threshold: float | None = None
    max_results: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What an operation gives back, and what its audit entry records of it."""

    value: R
    results: Sequence[MatchRef] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    probe_thumbnail: bytes | None = None  # sealed crop of a search's probe, kept with its leads


@dataclass(frozen=True, slots=True)
class Gated(Generic[R]):
    value: R
    decision: Decision
    audit_seq: int


class Gatekeeper:
    """Decides with the current policy and records every decision in the audit chain."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: PolicyHolder,
        calibration: Callable[[], Calibration],
        model_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        audit_space: str | None = None,
        groups: Callable[[], GroupCalibration | None] = lambda: None,
        reads: sessionmaker[Session] | None = None,
    ) -> None:
        """`reads`: read-only sessions without the write lock (store/db.py), for the first
        decision; `sessions` when not given."""
        self._sessions = sessions
        self._reads = reads or sessions
        self._policy = policy
        self._calibration = calibration
        self._groups = groups
        self._model_id = model_id
        self._audit_space = audit_space  # recorded bias audits count only for this space and detector
        self.clock = clock

    def request(
        self, session: Session, caller: Caller, operation: Operation, collection_id: str | None, limits: Limits
    ) -> GateRequest:
        for name, value in _declared(caller):
            limit = _RECORDED_LENGTH[name]
            if len(value) > limit:  # it could not be recorded (PostgreSQL enforces the column's length)
                raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"{name} is at most {limit} characters", field=name)
        policy = self._policy.current()
        purpose = caller.purpose
        if caller.tenant is None:
            tenant = local_operator(policy)
            if purpose is None and operation in PURPOSE_OPERATIONS:
                purpose = policy.rules.local_operator.default_purpose
        else:
            tenant = tenant_view(session, caller.tenant)
        access = None
        if collection_id is not None:
            found = owner_and_grants(session, collection_id, tenant.name)
            if found is not None:
                access = CollectionAccess(found[0], tuple(found[1]))
        return GateRequest(
            tenant=tenant,
            operation=operation,
            key_id=caller.key_id,
            purpose=purpose,
            case_reference=caller.case_reference,
            consent_reference=caller.consent_reference,
            collection_id=collection_id,
            mode=parse_mode(caller.mode),
            requested_max_fmr=limits.max_fmr,
            requested_threshold=limits.threshold,
            requested_max_results=limits.max_results,
            collection_access=access,
        )

    def decide(self, session: Session, request: GateRequest, now: datetime) -> Decision:
        matching = request.operation in MATCHING_OPERATIONS
        audits = recorded_audits(session, self._model_id, self._audit_space) if matching else ()
        calibration = self._calibration() if matching else _NO_THRESHOLDS
        groups = self._groups() if matching else None
        return decide(self._policy.current(), request, now, calibration, audits, groups)

    def _entry(self, request: GateRequest, decision: Decision, caller: Caller, probe: str | None) -> AuditEntry:
        entry = AuditEntry.of(
            request, decision, time=self.clock(), request_id=caller.request_id,
            model_id=self._model_id, probe_sha256=probe,
        )
        return replace(entry, key_holder=caller.key_holder)

    def run(
        self,
        caller: Caller,
        operation: Operation,
        *,
        collection_id: str | None = None,
        limits: Limits = Limits(),
        probe_sha256: str | None = None,
        prepare: Callable[[Decision], P] = lambda _d: None,  # type: ignore[assignment,return-value]
        commit: Callable[[Session, Decision, P], Outcome[R]],
    ) -> Gated[R]:
        """Decide, prepare outside the lock, then act and record in one transaction."""
        request, decision = self._admit(caller, operation, collection_id, limits, probe_sha256)
        try:
            prepared = prepare(decision)
        except FacegateError as exc:
            self._record_failure(request, decision, caller, probe_sha256, exc)
            raise
        denied: Decision | None = None
        try:
            with self._sessions.begin() as session:
                request = self.request(session, caller, operation, collection_id, limits)
                decision = self.decide(session, request, self.clock())
                entry = self._entry(request, decision, caller, probe_sha256)
                if not decision.allowed:
                    append_entry(session, entry)
                    denied = decision
                else:
                    outcome = commit(session, decision, prepared)
                    entry = replace(entry, results=tuple(outcome.results), details={**entry.details, **outcome.details})
                    seq = append_entry(session, entry).seq
                    if decision.review_required and outcome.results:
                        open_reviews(session, seq, probe_thumbnail=outcome.probe_thumbnail)
        except FacegateError as exc:
            self._record_failure(request, decision, caller, probe_sha256, exc)
            raise
        if denied is not None:
            raise _refusal(denied, collection_id)
        return Gated(outcome.value, decision, seq)

    def _admit(
        self, caller: Caller, operation: Operation, collection_id: str | None, limits: Limits, probe: str | None
    ) -> tuple[GateRequest, Decision]:
        """Decide in a short read-only transaction, without the write lock that every writer
        of every host queues for (an allowed operation takes it once, to act and record); a
        denial is decided again under the lock, so that it is recorded after exactly what
        it saw, and raised."""
        with self._reads.begin() as session:
            request = self.request(session, caller, operation, collection_id, limits)
            decision = self.decide(session, request, self.clock())
        if decision.allowed:
            return request, decision
        with self._sessions.begin() as session:
            request = self.request(session, caller, operation, collection_id, limits)
            decision = self.decide(session, request, self.clock())
            if not decision.allowed:
                append_entry(session, self._entry(request, decision, caller, probe))
        if not decision.allowed:
            raise _refusal(decision, collection_id)
        return request, decision

    def admit(self, caller: Caller, operation: Operation, collection_id: str | None = None) -> Decision:
        """Check before long work (a demographic audit, a bulk enrolment, a queued video search):
        a denial is recorded and raised; an allowed decision is recorded later, with the work's
        results."""
        return self._admit(caller, operation, collection_id, Limits(), None)[1]

    def run_recorded(
        self, caller: Caller, operation: Operation, act: Callable[[Session, AuditEntry], R],
        collection_id: str | None = None,
    ) -> R:
        """Decide an administrative step and let `act` perform it and append `entry` itself
        (governance functions add their own details to the entry they are given, `record=`).
        `collection_id` names the collection the step concerns, in the decision and its entries.

        A denial is recorded and raised; an allowed step whose function refuses (e.g.
        TENANT_EXISTS) rolls back and is recorded with its error code.
        """
        request, decision = self._admit(caller, operation, collection_id, Limits(), None)
        entry = self._entry(request, decision, caller, None)
        try:
            with self._sessions.begin() as session:
                return act(session, entry)
        except FacegateError as exc:
            self._record_failure(request, decision, caller, None, exc)
            raise

    def _record_failure(
        self, request: GateRequest, decision: Decision, caller: Caller, probe: str | None, exc: FacegateError
    ) -> None:
        entry = self._entry(request, decision, caller, probe).with_details(error=exc.code.value)
        with self._sessions.begin() as session:
            append_entry(session, entry)

    def refuse(
        self, caller: Caller, operation: Operation, exc: FacegateError, collection_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a request refused before it reached a decision (bad key, unreadable body);
        `details` for what the service adds (an aggregated count of refusals, a client address)."""
        policy = self._policy.current()
        # The refused request's own words, cut to what the audit log's columns hold.
        declared = {name: value[:_RECORDED_LENGTH[name]] for name, value in _declared(caller)}
        entry = AuditEntry(
            time=self.clock(), operation=operation.value, decision="deny", rule="request:invalid",
            policy_version=policy.version, tenant=caller.tenant, key_id=caller.key_id,
            purpose=declared.get("purpose"), case_reference=declared.get("case_reference"), collection=collection_id,
            mode=caller.mode, code=exc.code.value, request_id=declared.get("request_id"), model_id=self._model_id,
            details=dict(details or {}),
            key_holder=declared.get("key_holder"),
        )
        with self._sessions.begin() as session:
            append_entry(session, entry)


# What a caller declares goes into audit_log columns of these lengths.
_RECORDED_LENGTH = {
    name: AuditLogRow.__table__.c[name].type.length for name in ("purpose", "case_reference", "request_id", "key_holder")
}


def _declared(caller: Caller) -> list[tuple[str, str]]:
    return [(name, value) for name in _RECORDED_LENGTH if (value := getattr(caller, name)) is not None]


def _refusal(decision: Decision, collection_id: str | None) -> FacegateError:
    """The error a denial raises. A collection the caller may not know of is refused with
    the catalog's own "no such collection" error, byte for byte: no rule, no decision body
    that would tell a foreign collection from a missing one."""
    if decision.code is ErrorCode.COLLECTION_NOT_FOUND and collection_id is not None:
        return collection_not_found(collection_id)
    return PolicyDenied(decision)


class _NoThresholds:
    """Operations that match nothing never need a threshold; asking for one is a bug."""

    def threshold_at_fmr(self, fmr: float) -> float:
        raise RuntimeError("threshold requested for a non-matching operation")


_NO_THRESHOLDS = _NoThresholds()
