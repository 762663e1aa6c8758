"""The June 2020 moratorium, replayed over HTTP against a server running the example policy.

The server decides with the real clock, so the rows are those of the governance table
that hold today: the moratorium is open-ended (extended "until further notice" in May
2021), so a police search for a criminal investigation is denied now, while the search to
identify trafficking victims stays open. Every row checks the status, the stable code, the
rule and policy version in the answer, and the one audit entry its request id left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from facegate.client import FacegateClient, FacegateHTTPError
from tests.service.server import EXAMPLE_POLICY, Server, lfw, running_server

CASE = "CASE-2026-0117"
GALLERY = "victims-2026"
TENANTS = (
    ("metro-police", "law_enforcement", "criminal_investigation,victim_identification,missing_person", "operator"),
    ("polaris", "nonprofit", "victim_identification,missing_person", "operator"),
    ("acme-photos", "commercial", "photo_library", "operator"),
    ("oversight-board", "government", "", "oversight"),  # reads the whole trail
    ("hammer", "commercial", "photo_library", "operator"),
)
RATE_LIMIT = 30  # requests a minute per key: above what any tenant of the table sends
VERSION = "sha256:" + hashlib.sha256(EXAMPLE_POLICY.read_bytes()).hexdigest()[:16]
MORATORIUM = ("MORATORIUM", "moratorium:law-enforcement-2020")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("moratorium")
    rate = {"FACEGATE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT)}
    with running_server(home, model_cache, policy=EXAMPLE_POLICY, tenants=TENANTS, settings=rate) as running:
        with running.client(running.keys["polaris"]) as polaris:
            polaris.create_collection(GALLERY)
            for n in (1, 2):
                polaris.index_faces(GALLERY, lfw("Tony_Blair", n), subject="person-1",
                                    purpose="victim_identification", case_reference=CASE)
            # The gallery is polaris's: the police may search, list and enrol into it (faces
            # and subjects) to identify victims only, and the commercial tenant may search it
            # (where the policy's collection rule still closes it to its sector).
            polaris.share_collection(GALLERY, "metro-police", ["search", "index", "create_subject", "list"],
                                     ["victim_identification"])
            polaris.share_collection(GALLERY, "acme-photos", ["search"])
        with running.client(running.keys["acme-photos"]) as acme:
            acme.create_collection("acme-staff")
        yield running


@dataclass(frozen=True)
class Row:
    label: str
    tenant: str
    call: str  # a FacegateClient method
    kwargs: dict[str, Any] = field(default_factory=dict)
    expect: tuple[str, str] | None = None  # (code, rule) of a denial; None: allowed
    status: int = 403


PROBE = {"image": lfw("Tony_Blair", 4)}
SEARCH = {"collection_id": GALLERY, **PROBE}
PAIR = {"source": lfw("Tony_Blair", 1), "target": lfw("Tony_Blair", 4)}

ROWS = [
    Row("police, criminal investigation, now", "metro-police", "search",
        {**SEARCH, "purpose": "criminal_investigation", "case_reference": CASE}, MORATORIUM),
    Row("police, victim identification (exempt)", "metro-police", "search",
        {**SEARCH, "purpose": "victim_identification", "case_reference": CASE}),
    Row("nonprofit approved for victim identification", "polaris", "search",
        {**SEARCH, "purpose": "victim_identification", "case_reference": CASE}),
    Row("commercial tenant, purpose not approved", "acme-photos", "search",
        {**SEARCH, "collection_id": "acme-staff", "purpose": "identity_verification"},
        ("PURPOSE_NOT_APPROVED", "default:deny")),
    Row("police compare for an investigation", "metro-police", "compare",
        {**PAIR, "purpose": "criminal_investigation", "case_reference": CASE}, MORATORIUM),
    Row("police detect for an investigation", "metro-police", "detect",
        {**PROBE, "purpose": "criminal_investigation", "case_reference": CASE}, MORATORIUM),
    Row("police enrol for an investigation", "metro-police", "index_faces",
        {"collection_id": GALLERY, "image": lfw("Tony_Blair", 3), "purpose": "criminal_investigation",
         "case_reference": CASE}, MORATORIUM),
    Row("police enrol for victim identification (exempt)", "metro-police", "index_faces",
        {"collection_id": GALLERY, "image": lfw("Tony_Blair", 3), "purpose": "victim_identification",
         "case_reference": CASE}),
    Row("police may not create collections", "metro-police", "create_collection",
        {"collection_id": "police-mugshots"}, MORATORIUM),
    Row("police create a victim gallery (exempt purpose in the body)", "metro-police", "create_collection",
        {"collection_id": "victims-police", "purpose": "victim_identification", "case_reference": CASE}),
    Row("police create a subject for victim identification (exempt)", "metro-police", "create_subject",
        {"collection_id": GALLERY, "subject": "person-9", "purpose": "victim_identification",
         "case_reference": CASE}),
    Row("police may not create a subject for an investigation", "metro-police", "create_subject",
        {"collection_id": GALLERY, "subject": "person-10", "purpose": "criminal_investigation",
         "case_reference": CASE}, MORATORIUM),
    Row("police list faces, purpose in the query string", "metro-police", "list_faces",
        {"collection_id": GALLERY, "purpose": "victim_identification", "case_reference": CASE}),
    Row("police may still list what it holds", "metro-police", "list_collections"),
    Row("moratorium beats the missing bias audit", "metro-police", "search",
        {**SEARCH, "purpose": "missing_person", "case_reference": CASE}, MORATORIUM),
    Row("nonprofit, purpose needing a bias audit, none recorded", "polaris", "search",
        {**SEARCH, "purpose": "missing_person", "case_reference": CASE}, ("AUDIT_REQUIRED", "purpose:missing_person")),
    Row("nonprofit, purpose closed to its sector", "polaris", "search",
        {**SEARCH, "purpose": "criminal_investigation", "case_reference": CASE},
        ("PURPOSE_NOT_APPROVED", "purpose:criminal_investigation")),
    Row("case reference missing", "polaris", "search", {**SEARCH, "purpose": "victim_identification"},
        ("CASE_REFERENCE_REQUIRED", "purpose:victim_identification")),
    Row("live use of a post-event purpose", "polaris", "search",
        {**SEARCH, "purpose": "victim_identification", "case_reference": CASE, "mode": "live"},
        ("LIVE_USE_FORBIDDEN", "purpose:victim_identification")),
    Row("purpose the policy does not define", "polaris", "search", {**SEARCH, "purpose": "marketing"},
        ("PURPOSE_UNKNOWN", "default:deny")),
    Row("commercial tenant searching a victim gallery", "acme-photos", "search",
        {**SEARCH, "purpose": "photo_library"}, ("COLLECTION_FORBIDDEN", "collection:victim-galleries")),
    Row("oversight cannot search", "oversight-board", "search",
        {**SEARCH, "purpose": "victim_identification", "case_reference": CASE}, ("ROLE_REQUIRED", "role:operator")),
    Row("oversight reads the audit log", "oversight-board", "verify_audit"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_june_2020_table_over_http(row: Row, server: Server) -> None:
    before = server.counts()
    with server.client(server.keys[row.tenant]) as client:
        try:
            answer = getattr(client, row.call)(**row.kwargs)
            outcome, request_id = None, client.last_request_id
        except FacegateHTTPError as exc:
            answer, outcome, request_id = exc.error, exc, exc.request_id
    [entry] = server.entry_for(request_id or "")
    if row.expect is None:
        assert outcome is None, f"{row.label}: {outcome}"
        assert entry["decision"] == "allow" and entry["code"] is None
        if "decision" in answer:
            assert answer["decision"]["policy_version"] == VERSION
        return
    code, rule = row.expect
    assert isinstance(outcome, FacegateHTTPError), f"{row.label}: allowed"
    assert (outcome.status, outcome.code, answer["rule"], answer["policy_version"]) == (row.status, code, rule, VERSION)
    assert answer["decision"]["decision"] == "deny" and answer["decision"]["reason"] == outcome.message
    assert (entry["decision"], entry["code"], entry["rule"], entry["tenant"]) == ("deny", code, rule, row.tenant)
    after = server.counts()
    assert after[:2] == before[:2] and after[2] == before[2] + 1  # nothing stored; one audit entry


def test_the_moratorium_answer_tells_why_and_until_when(server: Server) -> None:
    with server.client(server.keys["metro-police"]) as police, pytest.raises(FacegateHTTPError) as exc:
        police.search(**SEARCH, purpose="criminal_investigation", case_reference=CASE)
    assert "until further notice" in exc.value.message and "victim_identification" in exc.value.message


def test_exempt_search_answers_leads_at_the_purposes_threshold(server: Server) -> None:
    reposted = lfw("Tony_Blair", 2)  # an enrolled photo seen again, e.g. in a new advert
    with server.client(server.keys["metro-police"]) as police:
        found = police.search(GALLERY, reposted, purpose="victim_identification", case_reference=CASE, max_fmr=1e-2)
    decision = found["decision"]
    assert decision["max_fmr"] == 1e-5, "a caller may ask for stricter, never looser"
    assert decision["review_required"] is True and found["investigative_leads"] is True
    assert "Investigative leads only" in found["notice"]
    assert found["matches"] and found["matches"][0]["subject"] == "person-1"
    assert all(m["estimated_fmr"] <= 1e-5 for m in found["matches"])


def test_audit_chain_verifies_and_the_report_counts_denials(server: Server) -> None:
    """Its own denials, counted before and after: whatever else ran before, in any order."""
    with FacegateClient(server.url, server.keys["oversight-board"]) as auditor:
        before = auditor.transparency_report()
        with server.client(server.keys["metro-police"]) as police:
            for _ in range(2):
                with pytest.raises(FacegateHTTPError):
                    police.search(**SEARCH, purpose="criminal_investigation", case_reference=CASE)
        verified = auditor.verify_audit()
        report = auditor.transparency_report()
    assert verified["ok"] is True and verified["first_bad_entry"] is None

    def denied(rep: dict[str, Any]) -> tuple[int, int]:
        sector = rep["by_sector"].get("law_enforcement", {"denied": 0})
        return rep["denials_by_code"].get("MORATORIUM", 0), sector["denied"]

    assert denied(report) == (denied(before)[0] + 2, denied(before)[1] + 2)


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(server: Server) -> None:
    """The bucket holds RATE_LIMIT tokens; a burst beyond it is refused, and recorded."""
    before = server.counts()
    with server.client(server.keys["hammer"]) as hammer:
        statuses = []
        for _ in range(RATE_LIMIT + 5):
            response = hammer.http.get("/v1/collections")
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused = response
    assert statuses[:RATE_LIMIT] == [200] * RATE_LIMIT and 429 in statuses
    assert refused.json()["error"]["code"] == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
    [entry] = server.entry_for(refused.headers["x-request-id"])
    assert (entry["code"], entry["tenant"], entry["operation"]) == ("RATE_LIMITED", "hammer", "list")
    assert server.counts()[2] == before[2] + len(statuses)  # every request, allowed or refused, left one entry
    with server.client(server.keys["polaris"]) as other:
        assert other.list_collections()["decision"]["decision"] == "allow"  # other keys are not affected


def test_purpose_and_case_reach_the_audit_entry_from_body_and_query(server: Server) -> None:
    """POST takes them in the JSON body, GET and DELETE in the query string: both are decided and recorded."""
    with server.client(server.keys["metro-police"]) as police:
        police.create_collection("victims-2027", purpose="victim_identification", case_reference=CASE)
        created = police.last_request_id
        police.describe_collection("victims-2027", purpose="victim_identification", case_reference=CASE)
        described = police.last_request_id
    for request_id in (created, described):
        [entry] = server.entry_for(request_id or "")
        assert (entry["purpose"], entry["case_reference"], entry["decision"]) == (
            "victim_identification", CASE, "allow")
