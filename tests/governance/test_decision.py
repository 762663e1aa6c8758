"""The gate, row by row: the June 2020 moratorium (as extended in May 2021) and its neighbours.

Every row runs the pure `decide` with the policy in examples/policy-2020-moratorium.toml,
so the example file is itself under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.decision import Decision, PolicyDenied, decide
from facegate.governance.permissions import Mode, Operation, Role, parse_operation
from facegate.governance.policy import Policy
from facegate.governance.policy_loading import parse_policy
from facegate.governance.request import BiasAuditSummary, CollectionAccess, GateRequest, TenantView
from facegate.governance.tenants import local_operator
from tests.governance.gov_support import EXAMPLE_POLICY, TableCalibration, at, table_groups, tenant

POLICE = tenant(
    "metro-police", "law_enforcement", {"criminal_investigation", "victim_identification", "missing_person"}
)
NGO = tenant("polaris", "nonprofit", {"victim_identification", "missing_person"})
SHOP = tenant("acme-photos", "commercial", {"photo_library"})
KYC = tenant("verify-co", "commercial", {"identity_verification"})
AUDITOR = tenant("oversight-board", "government", set(), {Role.AUDITOR})
CAL = TableCalibration()
GROUPS = table_groups()


@dataclass(frozen=True)
class Row:
    label: str
    who: TenantView
    purpose: str | None
    when: str
    expect: ErrorCode | None  # None: allowed
    rule: str
    operation: Operation = Operation.SEARCH_IMAGE
    case: str | None = "CASE-2020-0117"
    extra: dict = field(default_factory=dict)


ROWS = [
    # the rows the issue requires
    Row("police, criminal investigation, after the moratorium began", POLICE, "criminal_investigation", "2020-07-01T10:00:00Z",
        ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020"),
    Row("police, criminal investigation, the day before", POLICE, "criminal_investigation", "2020-06-09T10:00:00Z",
        None, "purpose:criminal_investigation"),
    Row("police, victim identification, exempt", POLICE, "victim_identification", "2020-07-01T10:00:00Z",
        None, "purpose:victim_identification"),
    Row("nonprofit approved for victim identification", NGO, "victim_identification", "2020-07-01T10:00:00Z",
        None, "purpose:victim_identification"),
    Row("commercial tenant, purpose not approved", SHOP, "identity_verification", "2020-07-01T10:00:00Z",
        ErrorCode.PURPOSE_NOT_APPROVED, "default:deny"),
    Row("open-ended moratorium still denies in 2026", POLICE, "criminal_investigation", "2026-03-01T08:00:00Z",
        ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020"),
    # more rows
    Row("first instant of the moratorium", POLICE, "criminal_investigation", "2020-06-10T00:00:00Z",
        ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020"),
    Row("last second before it", POLICE, "criminal_investigation", "2020-06-09T23:59:59Z",
        None, "purpose:criminal_investigation"),
    Row("01:30 on 10 June at +02:00 is still 9 June in UTC", POLICE, "criminal_investigation",
        "2020-06-10T01:30:00+02:00", None, "purpose:criminal_investigation"),
    Row("23:30 on 9 June at -01:00 is already 10 June in UTC", POLICE, "criminal_investigation",
        "2020-06-09T23:30:00-01:00", ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020"),
    Row("police compare during the moratorium", POLICE, "criminal_investigation", "2021-01-01T00:00:00Z",
        ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020", Operation.COMPARE),
    Row("police enrol for victim identification (exempt)", POLICE, "victim_identification", "2021-01-01T00:00:00Z",
        None, "purpose:victim_identification", Operation.INDEX),
    Row("police may still list what it holds", POLICE, None, "2021-01-01T00:00:00Z",
        None, "role:operator", Operation.LIST),
    Row("police may still erase", POLICE, None, "2021-01-01T00:00:00Z", None, "role:operator", Operation.ERASE),
    Row("police may not create collections", POLICE, None, "2021-01-01T00:00:00Z",
        ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020", Operation.CREATE_COLLECTION),
    Row("police list declaring an exempt purpose", POLICE, "victim_identification", "2021-01-01T00:00:00Z",
        None, "role:operator", Operation.LIST),
    Row("suspension is checked first", tenant("metro-police", "law_enforcement", {"victim_identification"}, suspended=True),
        "victim_identification", "2019-01-01T00:00:00Z", ErrorCode.TENANT_SUSPENDED, "tenant:suspended"),
    Row("no purpose on a search", NGO, None, "2020-07-01T10:00:00Z", ErrorCode.PURPOSE_REQUIRED, "operation:search_image"),
    Row("blank purpose counts as none", NGO, "  ", "2020-07-01T10:00:00Z", ErrorCode.PURPOSE_REQUIRED, "operation:search_image"),
    Row("no purpose on detect", NGO, None, "2020-07-01T10:00:00Z", ErrorCode.PURPOSE_REQUIRED, "operation:detect", Operation.DETECT),
    Row("purpose the policy does not define", NGO, "marketing", "2020-07-01T10:00:00Z", ErrorCode.PURPOSE_UNKNOWN, "default:deny"),
    Row("purpose closed to the sector", NGO, "criminal_investigation", "2020-07-01T10:00:00Z",
        ErrorCode.PURPOSE_NOT_APPROVED, "purpose:criminal_investigation"),
    Row("case reference missing", NGO, "victim_identification", "2020-07-01T10:00:00Z",
        ErrorCode.CASE_REFERENCE_REQUIRED, "purpose:victim_identification", case=None),
    Row("blank case reference", NGO, "victim_identification", "2020-07-01T10:00:00Z",
        ErrorCode.CASE_REFERENCE_REQUIRED, "purpose:victim_identification", case="   "),
    Row("live use of a post-event purpose", NGO, "victim_identification", "2020-07-01T10:00:00Z",
        ErrorCode.LIVE_USE_FORBIDDEN, "purpose:victim_identification", extra={"mode": Mode.LIVE}),
    Row("live use of a purpose that allows it", KYC, "identity_verification", "2020-07-01T10:00:00Z",
        None, "purpose:identity_verification", extra={"mode": Mode.LIVE}),
    Row("operator without the auditor role reads the audit log", NGO, None, "2020-07-01T10:00:00Z",
        ErrorCode.ROLE_REQUIRED, "role:auditor", Operation.AUDIT_READ),
    Row("auditor reads the audit log", AUDITOR, None, "2020-07-01T10:00:00Z", None, "role:auditor", Operation.AUDIT_READ),
    Row("auditor cannot search", AUDITOR, "research", "2020-07-01T10:00:00Z", ErrorCode.ROLE_REQUIRED, "role:operator"),
    Row("commercial tenant searching a victim gallery", SHOP, "photo_library", "2020-07-01T10:00:00Z",
        ErrorCode.COLLECTION_FORBIDDEN, "collection:victim-galleries", extra={"collection_id": "victims-2020"}),
    Row("commercial tenant, its own collection", SHOP, "photo_library", "2020-07-01T10:00:00Z",
        None, "purpose:photo_library", extra={"collection_id": "acme-staff"}),
    Row("the glob is case-sensitive", SHOP, "photo_library", "2020-07-01T10:00:00Z",
        None, "purpose:photo_library", extra={"collection_id": "Victims-2020"}),
    Row("purpose open to the sector but not approved", NGO, "research", "2020-07-01T10:00:00Z",
        ErrorCode.PURPOSE_NOT_APPROVED, "default:deny"),
    Row("nonprofit searching a victim gallery", NGO, "victim_identification", "2020-07-01T10:00:00Z",
        None, "purpose:victim_identification", extra={"collection_id": "victims-2020"}),
    Row("enrolment into a missing-person collection without consent", NGO, "missing_person", "2020-07-01T10:00:00Z",
        ErrorCode.CONSENT_REFERENCE_REQUIRED, "collection:missing-consent", Operation.INDEX, extra={"collection_id": "missing-2020"}),
    Row("... with consent", NGO, "missing_person", "2020-07-01T10:00:00Z", None, "purpose:missing_person", Operation.INDEX,
        extra={"collection_id": "missing-2020", "consent_reference": "CONSENT-88"}),
    Row("searching a missing-person collection needs no consent", NGO, "victim_identification", "2020-07-01T10:00:00Z",
        None, "purpose:victim_identification", extra={"collection_id": "missing-2020"}),
    Row("a purpose requiring a bias audit, none recorded", NGO, "missing_person", "2020-07-01T10:00:00Z",
        ErrorCode.AUDIT_REQUIRED, "purpose:missing_person"),
    Row("moratorium beats the missing audit for police", POLICE, "missing_person", "2020-07-01T10:00:00Z",
        ErrorCode.MORATORIUM, "moratorium:law-enforcement-2020"),
]  # fmt: skip


def _request(row: Row) -> GateRequest:
    """The row's request; a collection it names belongs to the tenant asking (ownership is
    tested in test_collection_access.py)."""
    owned = CollectionAccess(row.who.name) if "collection_id" in row.extra else None
    return GateRequest(
        tenant=row.who, operation=row.operation, purpose=row.purpose, case_reference=row.case,
        collection_access=owned, **row.extra,
    )


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_june_2020_table(row: Row, example_policy: Policy) -> None:
    decision = decide(example_policy, _request(row), at(row.when), CAL, (), GROUPS)
    assert (decision.allowed, decision.code, decision.rule) == (row.expect is None, row.expect, row.rule), (
        decision.reason
    )
    assert decision.policy_version == example_policy.version


def test_moratorium_denial_carries_the_policys_reason(example_policy: Policy) -> None:
    row = ROWS[0]
    decision = decide(example_policy, _request(row), at(row.when), CAL, groups=GROUPS)
    assert decision.reason == example_policy.rules.moratoria[0].reason
    assert "until further notice" in decision.reason
    assert (decision.max_fmr, decision.threshold, decision.max_results) == (None, None, None)
    with pytest.raises(PolicyDenied) as raised:
        raise PolicyDenied(decision)
    assert raised.value.code is ErrorCode.MORATORIUM
    assert raised.value.to_dict()["rule"] == "moratorium:law-enforcement-2020"
    assert raised.value.decision is decision


def test_exempt_search_gets_the_purposes_threshold(example_policy: Policy) -> None:
    decision = decide(example_policy, _request(ROWS[2]), at("2020-07-01T10:00:00Z"), CAL, groups=GROUPS)
    assert decision.max_fmr == 1e-5
    assert decision.threshold == pytest.approx(83.0)
    assert decision.max_results == 20
    assert decision.review_required is True


def _limits(policy: Policy, **asked: object) -> Decision:
    request = GateRequest(
        tenant=NGO,
        operation=Operation.SEARCH_IMAGE,
        purpose="victim_identification",
        case_reference="C-1",
        **asked,
    )
    decision = decide(policy, request, at("2020-07-01T10:00:00Z"), CAL, groups=GROUPS)
    assert decision.allowed
    return decision


def test_a_looser_request_gets_the_purposes_limits(example_policy: Policy) -> None:
    loose = _limits(
        example_policy, requested_max_fmr=1e-2, requested_threshold=40.0, requested_max_results=500
    )
    assert (loose.max_fmr, loose.threshold, loose.max_results) == (1e-5, pytest.approx(83.0), 20)


def test_a_stricter_request_is_honoured(example_policy: Policy) -> None:
    strict = _limits(example_policy, requested_max_fmr=1e-6, requested_max_results=3)
    assert (strict.max_fmr, strict.threshold, strict.max_results) == (1e-6, pytest.approx(87.0), 3)
    higher = _limits(example_policy, requested_threshold=95.0)
    assert (higher.max_fmr, higher.threshold) == (1e-5, 95.0)


def test_to_dict_has_the_policy_check_contract(example_policy: Policy) -> None:
    body = _limits(example_policy).to_dict()
    assert {"decision", "code", "rule", "policy_version", "max_fmr", "threshold"} <= set(body)
    assert body["decision"] == "allow" and body["code"] is None
    denied = decide(example_policy, _request(ROWS[0]), at(ROWS[0].when), CAL, groups=GROUPS).to_dict()
    assert (denied["decision"], denied["code"], denied["threshold"]) == ("deny", "MORATORIUM", None)


def test_the_original_one_year_moratorium_ends_on_2021_06_10() -> None:
    text = EXAMPLE_POLICY.read_text().replace(
        "start = 2020-06-10\n", "start = 2020-06-10\nend = 2021-06-10\n"
    )
    one_year = parse_policy(text.encode(), "one-year.toml")
    request = _request(ROWS[0])
    assert decide(one_year, request, at("2021-06-09T23:59:59Z"), CAL, groups=GROUPS).code is ErrorCode.MORATORIUM
    assert decide(one_year, request, at("2021-06-10T00:00:00Z"), CAL, groups=GROUPS).allowed


def test_local_operator_takes_sector_and_purposes_from_the_policy(example_policy: Policy) -> None:
    me = local_operator(example_policy)
    assert (me.name, me.sector, me.roles) == ("local", "nonprofit", frozenset(Role))
    assert me.purposes == {"victim_identification", "missing_person", "research"}
    request = GateRequest(tenant=me, operation=parse_operation("search"), purpose="research")
    assert decide(example_policy, request, at("2020-07-01T10:00:00Z"), CAL, groups=GROUPS).rule == "purpose:research"
    admin = GateRequest(tenant=me, operation=Operation.TENANT_ADMIN)
    assert decide(example_policy, admin, at("2020-07-01T10:00:00Z"), CAL, groups=GROUPS).rule == "role:admin"


def test_a_tenant_whose_sector_left_the_policy_is_denied(example_policy: Policy) -> None:
    stray = tenant("old-co", "defence", {"photo_library"})
    request = GateRequest(tenant=stray, operation=Operation.SEARCH_IMAGE, purpose="photo_library")
    decision = decide(example_policy, request, at("2020-07-01T10:00:00Z"), CAL, groups=GROUPS)
    assert (decision.code, decision.rule) == (ErrorCode.OPERATION_NOT_ALLOWED, "default:deny")


def test_bias_audit_gate_reads_the_latest_audit(example_policy: Policy) -> None:
    request = GateRequest(
        tenant=NGO, operation=Operation.SEARCH_FACE, purpose="missing_person", case_reference="MP-7"
    )
    when = at("2020-07-01T10:00:00Z")

    def audit(audit_id: int, day: str, **numbers: object) -> BiasAuditSummary:
        values = {
            "dataset": "lfw",
            "dataset_sha256": "ab" * 32,
            "threshold": 83.0,
            "max_group_fmr": 5e-5,
            "fmr_ratio": 4.0,
            "passed": True,
        }
        values.update(numbers)
        return BiasAuditSummary(audit_id=audit_id, created_at=at(day), **values)  # type: ignore[arg-type]

    good = audit(1, "2020-06-01")
    assert decide(example_policy, request, when, CAL, [good], GROUPS).allowed
    cases = {
        "a newer failing audit": [good, audit(2, "2020-06-20", passed=False)],
        "another dataset only": [audit(3, "2020-06-01", dataset="utkface")],
        "a group above the limit": [audit(4, "2020-06-01", max_group_fmr=2e-4)],
        "a ratio above the limit": [audit(5, "2020-06-01", fmr_ratio=float("inf"))],
        "measured at a stricter threshold": [audit(6, "2020-06-01", threshold=90.0)],
    }
    for label, audits in cases.items():
        decision = decide(example_policy, request, when, CAL, audits, GROUPS)
        assert (decision.code, decision.rule) == (ErrorCode.AUDIT_REQUIRED, "purpose:missing_person"), label
    # a stricter request raises the threshold above the audit's: still covered
    stricter = GateRequest(
        tenant=NGO,
        operation=Operation.SEARCH_FACE,
        purpose="missing_person",
        case_reference="MP-7",
        requested_max_fmr=1e-6,
    )
    assert decide(example_policy, stricter, when, CAL, [good], GROUPS).allowed
    # the gate is for matching: enrolment needs no audit
    enrol = GateRequest(
        tenant=NGO,
        operation=Operation.INDEX,
        purpose="missing_person",
        case_reference="MP-7",
        consent_reference="C-1",
    )
    assert decide(example_policy, enrol, when, CAL, [], GROUPS).allowed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requested_max_fmr": 0.0},
        {"requested_max_fmr": 1.0},
        {"requested_max_results": 0},
        {"requested_threshold": float("nan")},
        {"mode": Mode.LIVE, "operation": Operation.LIST},
    ],
)
def test_malformed_requests_raise_instead_of_deciding(kwargs: dict) -> None:
    base = {"tenant": NGO, "operation": Operation.SEARCH_IMAGE, "purpose": "victim_identification"}
    with pytest.raises(FacegateError) as raised:
        GateRequest(**{**base, **kwargs})
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT


def test_decision_time_must_be_aware(example_policy: Policy) -> None:
    from datetime import datetime

    with pytest.raises(FacegateError) as raised:
        decide(example_policy, _request(ROWS[0]), datetime(2020, 7, 1), CAL, groups=GROUPS)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT


def test_unknown_operation_names_are_refused() -> None:
    assert parse_operation("search") is Operation.SEARCH_IMAGE
    assert parse_operation("erase") is Operation.ERASE
    with pytest.raises(FacegateError) as raised:
        parse_operation("surveil")
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
