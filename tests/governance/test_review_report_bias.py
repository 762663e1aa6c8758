"""Leads and their human review, the transparency report, and the bias-audit gate, on a real catalog."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import AuditEntry, MatchRef, append_entry, read_entries
from facegate.governance.audit_verify import verify
from facegate.governance.bias_audits import record_bias_audit, recorded_audits
from facegate.governance.decision import decide
from facegate.governance.operations import Operation, Role
from facegate.governance.policy import Policy
from facegate.governance.report import transparency_report
from facegate.governance.request import CollectionAccess, GateRequest
from facegate.governance.review import decide_review, list_reviews, open_reviews
from tests.governance.gov_support import TableCalibration, admin_record, at, table_groups, tenant

Catalog = tuple[Engine, sessionmaker[Session]]
NGO = tenant(
    "polaris", "nonprofit", {"victim_identification", "missing_person"}, {Role.OPERATOR, Role.REVIEWER}
)
POLICE = tenant("metro-police", "law_enforcement", {"criminal_investigation", "victim_identification"})
CAL = TableCalibration()


def _gated(
    policy: Policy, who, purpose: str, when: str, results: tuple[MatchRef, ...] = (), **kw: object
) -> AuditEntry:
    """What the engine writes for one search: the decision's entry, with results only if allowed."""
    request = GateRequest(
        tenant=who,
        operation=Operation.SEARCH_IMAGE,
        purpose=purpose,
        case_reference="CASE-1",
        collection_id="victims-2020",
        collection_access=CollectionAccess(who.name),
        **kw,
    )  # type: ignore[arg-type]
    decision = decide(policy, request, at(when), CAL, groups=table_groups())
    return AuditEntry.of(
        request, decision, time=at(when), request_id=f"req-{when}", model_id="dlib_resnet_v1",
        probe_sha256="ab" * 32, results=results if decision.allowed else (),
    )  # fmt: skip


LEADS = (MatchRef("face-1", "subject-a", 91.5), MatchRef("face-2", None, 86.25))


def test_leads_are_opened_from_the_audit_entry_and_reviews_are_audited(
    catalog: Catalog, example_policy: Policy
) -> None:
    _, sessions = catalog
    entry = _gated(example_policy, NGO, "victim_identification", "2020-07-01T10:00:00Z", LEADS)
    with sessions.begin() as session:
        seq = append_entry(session, entry).seq
        leads = open_reviews(session, seq)
        denied = append_entry(
            session, _gated(example_policy, POLICE, "criminal_investigation", "2020-07-01T11:00:00Z")
        ).seq
        assert open_reviews(session, denied) == []
    assert [(r.face_id, r.similarity, r.status, r.case_reference) for r in leads] == [
        ("face-1", 91.5, "pending", "CASE-1"), ("face-2", 86.25, "pending", "CASE-1"),
    ]  # fmt: skip
    notice = leads[0].to_dict()["notice"]
    assert "investigative lead" in notice.lower() and "not an identification" in notice
    reviewer = replace(
        admin_record("2020-07-02T09:00:00Z", actor="polaris"),
        operation="review",
        rule="role:reviewer",
        key_id="00000000000000bb",
    )
    with sessions.begin() as session:
        confirmed = decide_review(
            session, leads[0].review_id, verdict="confirm", note="matches the case file", record=reviewer
        )
        for review_id, verdict, someone, code in [
            (leads[0].review_id, "reject", reviewer, ErrorCode.INVALID_ARGUMENT),  # already decided
            (leads[1].review_id, "maybe", reviewer, ErrorCode.INVALID_ARGUMENT),
            (
                leads[1].review_id,
                "reject",
                replace(reviewer, tenant="metro-police"),
                ErrorCode.REVIEW_NOT_FOUND,
            ),
            (999, "reject", reviewer, ErrorCode.REVIEW_NOT_FOUND),
        ]:
            with pytest.raises(FacegateError) as raised:
                decide_review(session, review_id, verdict=verdict, record=someone)
            assert raised.value.code is code
    assert (confirmed.status, confirmed.reviewer) == ("confirmed", "polaris:00000000000000bb")
    with sessions() as session:
        assert [r.face_id for r in list_reviews(session, tenant="polaris")] == ["face-2"]
        assert len(list_reviews(session, tenant="polaris", status=None)) == 2
        assert list_reviews(session, tenant="metro-police") == []
        last = read_entries(session, after_seq=denied)[0]
        assert verify(session).ok
    assert (last["operation"], last["purpose"], last["case_reference"]) == (
        "review",
        "victim_identification",
        "CASE-1",
    )
    assert last["details"]["verdict"] == "confirmed" and last["details"]["lead_audit_seq"] == seq


def test_transparency_report_counts_requests_and_denials(catalog: Catalog, example_policy: Policy) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        for when in (
            "2020-06-09T10:00:00Z",
            "2020-07-01T10:00:00Z",
            "2020-07-15T10:00:00Z",
            "2021-05-20T10:00:00Z",
        ):
            append_entry(session, _gated(example_policy, POLICE, "criminal_investigation", when))
        seq = append_entry(
            session, _gated(example_policy, NGO, "victim_identification", "2020-07-02T10:00:00Z", LEADS)
        ).seq
        open_reviews(session, seq)
        append_entry(
            session, _gated(example_policy, NGO, "victim_identification", "2020-07-03T10:00:00Z", mode="live")
        )
        report = transparency_report(session)
        july = transparency_report(session, since=at("2020-07-01"), until=at("2020-08-01"))
    body = report.to_dict()
    assert body["total"] == {"requests": 6, "allowed": 2, "denied": 4}
    assert body["by_sector"]["law_enforcement"] == {"requests": 4, "allowed": 1, "denied": 3}
    assert body["by_purpose"]["victim_identification"] == {"requests": 2, "allowed": 1, "denied": 1}
    assert body["by_month"]["2020-07"] == {"requests": 4, "allowed": 1, "denied": 3}
    assert body["denials_by_code"] == {"MORATORIUM": 3, "LIVE_USE_FORBIDDEN": 1}
    assert body["denials_by_rule"]["moratorium:law-enforcement-2020"] == 3
    assert body["by_decision"] == {"allow": 2, "deny": 4}
    assert body["policy_versions"] == {example_policy.version: 6}
    assert body["reviews"] == {"pending": 2}
    assert body["head"]["seq"] == 6
    assert july.total.requests == 4 and set(july.by_month) == {"2020-07"}
    text = report.to_markdown()
    assert "| law_enforcement | 4 | 1 | 3 |" in text and "| MORATORIUM | 3 |" in text


def _record(session: Session, policy_version: str, time: str, **numbers: object) -> None:
    values = {
        "dataset": "lfw",
        "dataset_sha256": "cd" * 32,
        "threshold": 83.0,
        "max_group_fmr": 4e-5,
        "fmr_ratio": 3.5,
        "passed": True,
    }
    values.update(numbers)
    auditor = replace(
        admin_record(time, actor="oversight-board", policy_version=policy_version),
        operation="bias_audit",
        rule="role:auditor",
    )
    record_bias_audit(
        session,
        model_id="dlib_resnet_v1",
        template_id="dlib_resnet_v1+chip150",
        report={"verification": {"groups": []}},
        record=auditor,
        **values,
    )  # type: ignore[arg-type]


def test_audit_required_until_a_passing_audit_and_again_after_a_failing_one(
    catalog: Catalog, example_policy: Policy
) -> None:
    _, sessions = catalog
    request = GateRequest(
        tenant=NGO, operation=Operation.SEARCH_IMAGE, purpose="missing_person", case_reference="MP-3"
    )

    def gate(when: str, model_id: str = "dlib_resnet_v1") -> ErrorCode | None:
        with sessions() as session:
            return decide(example_policy, request, at(when), CAL, recorded_audits(session, model_id), table_groups()).code

    assert gate("2024-01-01T00:00:00Z") is ErrorCode.AUDIT_REQUIRED
    with sessions.begin() as session:
        _record(session, example_policy.version, "2024-01-02T00:00:00Z")
    assert gate("2024-01-03T00:00:00Z") is None
    assert gate("2024-01-03T00:00:00Z", model_id="another_model") is ErrorCode.AUDIT_REQUIRED
    with sessions.begin() as session:  # passed by its own criteria, but no differential was measurable
        _record(session, example_policy.version, "2024-01-20T00:00:00Z", fmr_ratio=None)
    assert gate("2024-01-21T00:00:00Z") is ErrorCode.AUDIT_REQUIRED
    with sessions.begin() as session:
        _record(session, example_policy.version, "2024-01-25T00:00:00Z")
    assert gate("2024-01-26T00:00:00Z") is None
    with sessions.begin() as session:
        _record(
            session,
            example_policy.version,
            "2024-02-01T00:00:00Z",
            max_group_fmr=3e-4,
            fmr_ratio=float("inf"),
            passed=False,
        )
    assert gate("2024-02-02T00:00:00Z") is ErrorCode.AUDIT_REQUIRED
    with sessions() as session:
        audits = recorded_audits(session, "dlib_resnet_v1")
        entries = read_entries(session)
        assert verify(session).ok
    assert [a.passed for a in audits] == [False, True, True, True]  # newest first
    assert audits[2].fmr_ratio == float("inf")
    assert [e["details"]["fmr_ratio"] for e in entries] == [3.5, "inf", 3.5, "inf"]
    assert {(e["operation"], e["model_id"], e["tenant"]) for e in entries} == {
        ("bias_audit", "dlib_resnet_v1", "oversight-board")
    }
    with pytest.raises(FacegateError) as raised, sessions.begin() as session:
        _record(session, example_policy.version, "2024-03-01T00:00:00Z", fmr_ratio=0.5)
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
