"""The one decision point: `decide(policy, request, now, calibration, audits) -> Decision`.

Pure (no I/O, no clock of its own), so the June 2020 table can be tested row by row and a
dry run (`facegate policy check --at`) answers exactly as a real request would. Every
decision names the rule that made it (as pycasbin's `enforce_ex` returns the policy line),
the policy version, and, when allowed for a matching operation, the effective limits.

Order of checks (the first that denies decides; see docs/governance.md):
 1. tenant suspended                          TENANT_SUSPENDED            tenant:suspended
 2. tenant's sector not in the policy         OPERATION_NOT_ALLOWED       default:deny
 3. role the operation needs                  ROLE_REQUIRED               role:<role>
 4. purpose missing on a face operation       PURPOSE_REQUIRED            operation:<op>
 5. purpose not in the policy                 PURPOSE_UNKNOWN             default:deny
 6. active moratorium (unless exempt)         MORATORIUM                  moratorium:<id>
 7. purpose not open to the sector            PURPOSE_NOT_APPROVED        purpose:<id>
    purpose not approved for the tenant       PURPOSE_NOT_APPROVED        default:deny
 8. live mode on a post-event purpose         LIVE_USE_FORBIDDEN          purpose:<id>
 9. case reference missing                    CASE_REFERENCE_REQUIRED     purpose:<id>
10. collection missing, or neither owned by   COLLECTION_NOT_FOUND        collection:not-found
    the tenant nor granted for the operation (and purpose): the same answer either way
11. collection closed to the sector           COLLECTION_FORBIDDEN        collection:<id>
12. consent reference missing on index        CONSENT_REFERENCE_REQUIRED  collection:<id>
13. max_fmr not certifiable for every group   FMR_NOT_CERTIFIABLE         purpose:<id>
    (fmr_holds_for = "every_group" without accept_lowest_certifiable_fmr)
14. no passing bias audit (matching ops)      AUDIT_REQUIRED              purpose:<id>
Allowed: rule purpose:<id> (with limits) or role:<role> for operations without a purpose
(role:oversight or role:auditor for reading the audit trail: the scope of what is read;
role:any for the console's sign-in and sign-out and reading the policy, open to every role).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.permissions import (
    ALSO_ADMITTED,
    ANY_ROLE_OPERATIONS,
    COLLECTION_OPERATIONS,
    MATCHING_OPERATIONS,
    PURPOSE_OPERATIONS,
    REQUIRED_ROLE,
    Mode,
    Operation,
    Role,
)
from facegate.governance.policy import BiasAuditRequirement, Policy, PolicyRules
from facegate.governance.request import (
    LOCAL_OPERATOR,
    BiasAuditSummary,
    Calibration,
    GateRequest,
    TenantStatus,
    TenantView,
)
from facegate.store.catalog import collection_not_found
from facegate.vision.group_calibration import GroupCalibration

COLLECTION_NOT_FOUND_RULE = "collection:not-found"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    code: ErrorCode | None  # None when allowed
    rule: str
    reason: str  # the policy's text (moratorium reason, purpose description) or a plain one
    policy_version: str
    max_fmr: float | None = None  # effective limits, for allowed matching operations
    threshold: float | None = None
    max_results: int | None = None
    review_required: bool = False
    fmr_holds_for: str | None = None  # "population" | "every_group", for matching operations
    certified_fmr: float | None = None  # the rate the threshold holds (for every group, if so)
    limiting_group: str | None = None  # the group whose threshold is the highest (every_group)
    calibration: str | None = None  # which calibration(s) derived the threshold

    def to_dict(self) -> dict[str, Any]:
        """The shape of `facegate policy check --json` and of the `decision` in HTTP answers."""
        return {
            "decision": "allow" if self.allowed else "deny",
            "code": self.code.value if self.code else None,
            "rule": self.rule,
            "reason": self.reason,
            "policy_version": self.policy_version,
            "max_fmr": self.max_fmr,
            "threshold": self.threshold,
            "max_results": self.max_results,
            "review_required": self.review_required,
            "fmr_holds_for": self.fmr_holds_for,
            "certified_fmr": self.certified_fmr,
            "limiting_group": self.limiting_group,
            "calibration": self.calibration,
        }


class PolicyDenied(FacegateError):
    """A denial as an error: the code and reason of the decision, which it carries whole."""

    def __init__(self, decision: Decision) -> None:
        if decision.allowed or decision.code is None:
            raise ValueError("PolicyDenied needs a denying decision")
        super().__init__(
            decision.code, decision.reason, rule=decision.rule, policy_version=decision.policy_version
        )
        self.decision = decision


def _audit_problem(
    need: BiasAuditRequirement, audits: Sequence[BiasAuditSummary], threshold: float
) -> str | None:
    """Why the recorded audits do not cover this use, or None. The latest audit on the dataset decides."""
    relevant = [
        a
        for a in audits
        if a.dataset == need.dataset
        and (need.dataset_sha256 is None or a.dataset_sha256 == need.dataset_sha256)
    ]
    if not relevant:
        return f"no bias audit of the active model on dataset {need.dataset!r} is recorded"
    latest = max(relevant, key=lambda a: (a.created_at, a.audit_id))
    label = f"the latest bias audit (#{latest.audit_id}) on {need.dataset!r}"
    if not latest.passed:
        return f"{label} did not pass"
    if latest.threshold > threshold + 1e-9 * max(1.0, abs(threshold)):
        # A group's FMR only grows as the threshold falls: an audit at a higher threshold says nothing here.
        return f"{label} measured at threshold {latest.threshold:.4g}, above the {threshold:.4g} in use"
    if latest.max_group_fmr > need.max_group_fmr:
        return f"{label} found a group FMR of {latest.max_group_fmr:.3g}, above {need.max_group_fmr:.3g}"
    if latest.fmr_ratio > need.max_fmr_ratio:
        return f"{label} found an FMR ratio of {latest.fmr_ratio:.3g}, above {need.max_fmr_ratio:.3g}"
    return None


# The console shows which recorded audit meets which purpose's requirement with the same test.
bias_audit_problem = _audit_problem


@dataclass(frozen=True, slots=True)
class Promise:
    """The threshold a purpose's rate derives, and for whom that rate holds."""

    threshold: float
    fmr_holds_for: str
    certified_fmr: float
    limiting_group: str | None
    calibration: str


def purpose_promise(
    rules: PolicyRules, purpose_id: str, max_fmr: float, calibration: Calibration,
    groups: GroupCalibration | None,
) -> Promise | _Denial:
    """Population: the calibration's threshold at max_fmr. Every group: the highest of that
    and of every group's threshold at max_fmr (upper bounds); a group that cannot support
    max_fmr denies, unless the policy accepts the lowest rate every group supports."""
    mode, accept = rules.promise(purpose_id)
    population = calibration.threshold_at_fmr(max_fmr)
    cal_id = str(getattr(calibration, "template_id", ""))
    if mode == "population":
        return Promise(population, mode, max_fmr, None, cal_id)
    rule = f"purpose:{purpose_id}"
    if groups is None:
        reason = (f"purpose {purpose_id!r} promises FMR {max_fmr:g} for every group, and no group "
                  f"calibration is recorded for score space {cal_id!r}")
        return _Denial(ErrorCode.FMR_NOT_CERTIFIABLE, rule, reason)
    every = groups.every_group_threshold(max_fmr)
    certified = max_fmr
    if every.threshold is None:
        if not accept:
            reason = (f"purpose {purpose_id!r} promises FMR {max_fmr:g} for every group; the group "
                      f"calibration {groups.calibration_id!r} cannot support it for {every.limiting_group} "
                      f"(lowest certifiable rate {every.lowest_certifiable_fmr:.2g})")
            return _Denial(ErrorCode.FMR_NOT_CERTIFIABLE, rule, reason)
        certified = every.lowest_certifiable_fmr
        every = groups.every_group_threshold(certified)
    threshold = max(population, every.threshold or population)
    return Promise(threshold, mode, certified, every.limiting_group, f"{cal_id} + {groups.calibration_id}")


def _limits(
    rules: PolicyRules, purpose_id: str, request: GateRequest, calibration: Calibration,
    groups: GroupCalibration | None,
) -> tuple[float, Promise | _Denial, int]:
    """The purpose's limits, tightened (never loosened) by what the caller asked for."""
    purpose = rules.purposes[purpose_id]
    max_fmr = min(purpose.max_fmr, request.requested_max_fmr or math.inf)
    promise = purpose_promise(rules, purpose_id, max_fmr, calibration, groups)
    if isinstance(promise, Promise) and request.requested_threshold is not None:
        promise = Promise(max(promise.threshold, request.requested_threshold), promise.fmr_holds_for,
                           promise.certified_fmr, promise.limiting_group, promise.calibration)
    max_results = min(purpose.max_results, request.requested_max_results or purpose.max_results)
    return max_fmr, promise, max_results


@dataclass(frozen=True, slots=True)
class _Denial:
    code: ErrorCode
    rule: str
    reason: str


def _check_tenant(rules: PolicyRules, req: GateRequest, now: datetime) -> _Denial | None:
    """Steps 1-3: the tenant itself (status, sector, role)."""
    tenant, op = req.tenant, req.operation
    if tenant.status is not TenantStatus.ACTIVE:
        return _Denial(ErrorCode.TENANT_SUSPENDED, "tenant:suspended", f"tenant {tenant.name!r} is suspended")
    if tenant.sector not in rules.all_sectors:
        reason = f"sector {tenant.sector!r} is not in the policy"
        return _Denial(ErrorCode.OPERATION_NOT_ALLOWED, "default:deny", reason)
    role = REQUIRED_ROLE[op]
    admitting = {role} | ALSO_ADMITTED.get(op, frozenset())
    if op not in ANY_ROLE_OPERATIONS and not effective_roles(rules, tenant) & admitting:
        reason = f"operation {op.value!r} requires the {role.value!r} role"
        return _Denial(ErrorCode.ROLE_REQUIRED, f"role:{role.value}", reason)
    return None


def effective_roles(rules: PolicyRules, tenant: TenantView) -> frozenset[Role]:
    """The tenant's roles as the policy lets them count: oversight only in the sectors the
    policy names for it (the local operator, the installation's own, always has it)."""
    allowed = rules.oversight_sectors
    if (
        Role.OVERSIGHT in tenant.roles and tenant.name != LOCAL_OPERATOR
        and allowed is not None and tenant.sector not in allowed
    ):
        return tenant.roles - {Role.OVERSIGHT}
    return tenant.roles


def _allowing_role(rules: PolicyRules, req: GateRequest) -> Role:
    """The role an allowed operation without a purpose ran under; for reading the audit
    trail it sets the scope (oversight: everything; auditor: the tenant's own entries)."""
    if req.operation in ALSO_ADMITTED:
        held = effective_roles(rules, req.tenant) & ALSO_ADMITTED[req.operation]
        if held:
            return min(held)
    return REQUIRED_ROLE[req.operation]


def _check_purpose_declared(rules: PolicyRules, req: GateRequest, now: datetime) -> _Denial | None:
    """Steps 4-5: face operations declare a purpose; a declared purpose must exist."""
    purpose_id, op = req.declared_purpose, req.operation
    if purpose_id is None and op in PURPOSE_OPERATIONS:
        reason = f"operation {op.value!r} requires a declared purpose"
        return _Denial(ErrorCode.PURPOSE_REQUIRED, f"operation:{op.value}", reason)
    if purpose_id is not None and purpose_id not in rules.purposes:
        reason = f"purpose {purpose_id!r} is not defined by the policy"
        return _Denial(ErrorCode.PURPOSE_UNKNOWN, "default:deny", reason)
    return None


def _check_moratoria(rules: PolicyRules, req: GateRequest, now: datetime) -> _Denial | None:
    """Step 6: a moratorium in force for the sector and operation, unless the purpose is exempt."""
    for moratorium in rules.moratoria:
        if (
            moratorium.active_at(now)
            and req.tenant.sector in moratorium.sectors
            and req.operation in moratorium.operations
            and req.declared_purpose not in moratorium.exempt_purposes
        ):
            return _Denial(ErrorCode.MORATORIUM, f"moratorium:{moratorium.id}", moratorium.reason)
    return None


def _check_purpose_terms(rules: PolicyRules, req: GateRequest, now: datetime) -> _Denial | None:
    """Steps 7-9: the purpose is open to the sector, approved for the tenant, and its terms are met."""
    purpose_id = req.declared_purpose
    if purpose_id is None:
        return None
    purpose, rule, sector = rules.purposes[purpose_id], f"purpose:{purpose_id}", req.tenant.sector
    if purpose.sectors is not None and sector not in purpose.sectors:
        reason = f"purpose {purpose_id!r} is not open to sector {sector!r}"
        return _Denial(ErrorCode.PURPOSE_NOT_APPROVED, rule, reason)
    if purpose_id not in req.tenant.purposes:
        reason = f"tenant {req.tenant.name!r} is not approved for purpose {purpose_id!r}"
        return _Denial(ErrorCode.PURPOSE_NOT_APPROVED, "default:deny", reason)
    if req.mode is Mode.LIVE and not purpose.live_use_allowed:
        reason = f"purpose {purpose_id!r} allows post-event use only, not live use"
        return _Denial(ErrorCode.LIVE_USE_FORBIDDEN, rule, reason)
    if purpose.case_reference_required and not req.has_case_reference:
        reason = f"purpose {purpose_id!r} requires a case reference"
        return _Denial(ErrorCode.CASE_REFERENCE_REQUIRED, rule, reason)
    return None


def _check_collection_access(rules: PolicyRules, req: GateRequest, now: datetime) -> _Denial | None:
    """Step 10: a collection the tenant neither owns nor was granted the operation on is,
    to it, a collection that does not exist: same code, rule and message as a missing one.

    Only operations on a collection's contents are bound by its owner and grants; one that
    merely names a collection (creating it; handing over a video search's results, which are
    the searching tenant's job even once the grant is revoked or the collection gone) is not."""
    if req.collection_id is None or req.operation not in COLLECTION_OPERATIONS:
        return None
    access = req.collection_access
    if access is None or not access.permits(req.tenant.name, req.operation, req.declared_purpose):
        reason = collection_not_found(req.collection_id).message  # the catalog's own words
        return _Denial(ErrorCode.COLLECTION_NOT_FOUND, COLLECTION_NOT_FOUND_RULE, reason)
    return None


def _check_collection(rules: PolicyRules, req: GateRequest, now: datetime) -> _Denial | None:
    """Steps 11-12: rules of the collection the operation touches (closed sectors, then consent)."""
    if req.collection_id is None:
        return None
    matching = [r for r in rules.collections if r.matches(req.collection_id)]
    sector = req.tenant.sector
    for crule in matching:
        if req.operation in crule.operations and crule.sectors is not None and sector not in crule.sectors:
            reason = crule.reason or f"collection {req.collection_id!r} is closed to sector {sector!r}"
            return _Denial(ErrorCode.COLLECTION_FORBIDDEN, f"collection:{crule.id}", reason)
    if req.operation is Operation.INDEX and not req.has_consent_reference:
        for crule in matching:
            if crule.consent_reference_required:
                reason = crule.reason or f"enrolment into {req.collection_id!r} requires a consent reference"
                return _Denial(ErrorCode.CONSENT_REFERENCE_REQUIRED, f"collection:{crule.id}", reason)
    return None


CHECKS = (
    _check_tenant, _check_purpose_declared, _check_moratoria, _check_purpose_terms, _check_collection_access,
    _check_collection,
)


def decide(
    policy: Policy,
    request: GateRequest,
    now: datetime,
    calibration: Calibration,
    recorded_audits: Sequence[BiasAuditSummary] = (),
    groups: GroupCalibration | None = None,
) -> Decision:
    """Allow or deny `request` at `now` under `policy`; see the module docstring for the order."""
    if now.tzinfo is None:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "decision time must be timezone-aware", field="now")
    for check in CHECKS:
        denial = check(policy.rules, request, now)
        if denial is not None:
            return Decision(False, denial.code, denial.rule, denial.reason, policy.version)
    op, purpose_id = request.operation, request.declared_purpose
    if op in ANY_ROLE_OPERATIONS:
        return Decision(True, None, "role:any", "allowed to every role", policy.version)
    if purpose_id is None or op not in PURPOSE_OPERATIONS:
        role = _allowing_role(policy.rules, request)
        return Decision(
            True, None, f"role:{role.value}", f"allowed to the {role.value!r} role", policy.version
        )
    purpose = policy.rules.purposes[purpose_id]
    if op not in MATCHING_OPERATIONS:
        return Decision(True, None, f"purpose:{purpose_id}", purpose.description, policy.version)
    max_fmr, promise, max_results = _limits(policy.rules, purpose_id, request, calibration, groups)
    if isinstance(promise, _Denial):
        return Decision(False, promise.code, promise.rule, promise.reason, policy.version, max_fmr=max_fmr)
    threshold = promise.threshold
    if purpose.require_bias_audit is not None:
        problem = _audit_problem(purpose.require_bias_audit, recorded_audits, threshold)
        if problem is not None:
            return Decision(False, ErrorCode.AUDIT_REQUIRED, f"purpose:{purpose_id}", problem, policy.version)
    return Decision(
        True,
        None,
        f"purpose:{purpose_id}",
        purpose.description,
        policy.version,
        max_fmr=max_fmr,
        threshold=threshold,
        max_results=max_results,
        review_required=purpose.human_review_required,
        fmr_holds_for=promise.fmr_holds_for,
        certified_fmr=promise.certified_fmr,
        limiting_group=promise.limiting_group,
        calibration=promise.calibration,
    )
