"""Ownership, grants and the oversight role in the pure decision: a collection the tenant
neither owns nor was granted the operation on is refused exactly as a missing one."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorCode
from facegate.governance.decision import decide
from facegate.governance.permissions import Operation, Role
from facegate.governance.policy import Policy
from facegate.governance.policy_loading import parse_policy
from facegate.governance.request import CollectionAccess, GateRequest
from facegate.governance.tenants import local_operator
from tests.governance.gov_support import EXAMPLE_POLICY, TableCalibration, at, table_groups, tenant

NGO = tenant("polaris", "nonprofit", {"victim_identification", "missing_person"})
POLICE = tenant("metro-police", "law_enforcement", {"victim_identification", "criminal_investigation"})
WHEN = at("2026-07-01T10:00:00Z")
CAL = TableCalibration()
GROUPS = table_groups()  # the example policy promises its rates for every group
GALLERY = "ngo-gallery"


def _search(who, access: CollectionAccess | None, op: Operation = Operation.SEARCH_IMAGE,  # type: ignore[no-untyped-def]
            purpose: str | None = "victim_identification") -> GateRequest:
    return GateRequest(tenant=who, operation=op, purpose=purpose, case_reference="C-1",
                       collection_id=GALLERY, collection_access=access)


def _key(policy: Policy, request: GateRequest) -> tuple[bool, ErrorCode | None, str, str]:
    d = decide(policy, request, WHEN, CAL, groups=GROUPS)
    return d.allowed, d.code, d.rule, d.reason


def test_foreign_and_missing_collections_get_one_and_the_same_refusal(example_policy: Policy) -> None:
    foreign = _key(example_policy, _search(POLICE, CollectionAccess("polaris")))
    missing = _key(example_policy, _search(POLICE, None))
    assert foreign == missing == (False, ErrorCode.COLLECTION_NOT_FOUND, "collection:not-found",
                                  f"no collection {GALLERY!r}")
    assert _key(example_policy, _search(NGO, CollectionAccess("polaris")))[0]


@pytest.mark.parametrize("op", [Operation.LIST, Operation.DELETE, Operation.ERASE, Operation.INDEX,
                                Operation.CREATE_SUBJECT, Operation.ASSOCIATE, Operation.DELETE_COLLECTION,
                                Operation.SEARCH_FACE, Operation.SEARCH_SUBJECT, Operation.SHARE])
def test_every_collection_operation_is_checked(op: Operation, example_policy: Policy) -> None:
    purpose = "victim_identification" if op in (Operation.INDEX, Operation.SEARCH_FACE, Operation.SEARCH_SUBJECT) else None
    other = tenant("other-ngo", "nonprofit", {"victim_identification"})
    request = _search(other, CollectionAccess("polaris"), op, purpose)
    assert decide(example_policy, request, WHEN, CAL, groups=GROUPS).code is ErrorCode.COLLECTION_NOT_FOUND


def test_a_grant_opens_exactly_its_operations_and_purposes(example_policy: Policy) -> None:
    access = CollectionAccess("polaris", (("search_image", frozenset({"victim_identification"})), ("list", None)))
    assert _key(example_policy, _search(POLICE, access))[0]
    # a purpose outside the grant, an operation outside it: no such collection
    assert _key(example_policy, _search(POLICE, access, purpose="criminal_investigation"))[1] in (
        ErrorCode.MORATORIUM,  # the moratorium comes first for police
    )
    assert _key(example_policy, _search(POLICE, access, Operation.SEARCH_FACE))[1] is ErrorCode.COLLECTION_NOT_FOUND
    assert _key(example_policy, _search(POLICE, access, Operation.LIST, None))[0]  # list declares no purpose
    assert _key(example_policy, _search(POLICE, access, Operation.ERASE, None))[1] is ErrorCode.COLLECTION_NOT_FOUND
    narrow = CollectionAccess("polaris", (("search_image", frozenset({"missing_person"})),))
    assert _key(example_policy, _search(POLICE, narrow))[1] is ErrorCode.COLLECTION_NOT_FOUND


def test_the_policys_collection_rules_still_apply_on_top_of_a_grant(example_policy: Policy) -> None:
    shop = tenant("acme-photos", "commercial", {"photo_library"})
    request = GateRequest(tenant=shop, operation=Operation.SEARCH_IMAGE, purpose="photo_library",
                          collection_id="victims-2020",
                          collection_access=CollectionAccess("polaris", (("search_image", None),)))
    decision = decide(example_policy, request, WHEN, CAL, groups=GROUPS)
    assert (decision.code, decision.rule) == (ErrorCode.COLLECTION_FORBIDDEN, "collection:victim-galleries")


def test_the_local_operator_is_a_tenant_like_others_for_ownership(example_policy: Policy) -> None:
    me = local_operator(example_policy)
    assert _key(example_policy, _search(me, CollectionAccess("polaris")))[1] is ErrorCode.COLLECTION_NOT_FOUND
    assert _key(example_policy, _search(me, CollectionAccess("local")))[0]


def test_audit_reading_roles_and_their_scope(example_policy: Policy) -> None:
    def read(who) -> tuple[bool, ErrorCode | None, str]:  # type: ignore[no-untyped-def]
        d = decide(example_policy, GateRequest(tenant=who, operation=Operation.AUDIT_READ), WHEN, CAL)
        return d.allowed, d.code, d.rule

    assert read(tenant("ops", "commercial", set())) == (False, ErrorCode.ROLE_REQUIRED, "role:auditor")
    assert read(tenant("aud", "commercial", set(), {Role.AUDITOR})) == (True, None, "role:auditor")
    assert read(tenant("board", "government", set(), {Role.OVERSIGHT})) == (True, None, "role:oversight")
    assert read(local_operator(example_policy)) == (True, None, "role:oversight")
    # oversight is not a bias auditor
    board = tenant("board", "government", set(), {Role.OVERSIGHT})
    assert decide(example_policy, GateRequest(tenant=board, operation=Operation.BIAS_AUDIT), WHEN, CAL).code \
        is ErrorCode.ROLE_REQUIRED


def test_the_policy_may_restrict_oversight_to_named_sectors() -> None:
    text = EXAMPLE_POLICY.read_text().replace('sectors = []\n', 'sectors = []\noversight_sectors = ["government"]\n', 1)
    policy = parse_policy(text.encode(), "oversight.toml")
    board = tenant("board", "government", set(), {Role.OVERSIGHT})
    club = tenant("club", "commercial", set(), {Role.OVERSIGHT, Role.AUDITOR})
    lone = tenant("lone", "commercial", set(), {Role.OVERSIGHT})
    rule = {who.name: decide(policy, GateRequest(tenant=who, operation=Operation.AUDIT_READ), WHEN, CAL).rule
            for who in (board, club, lone)}
    assert rule == {"board": "role:oversight", "club": "role:auditor", "lone": "role:auditor"}
    assert not decide(policy, GateRequest(tenant=lone, operation=Operation.AUDIT_READ), WHEN, CAL).allowed
    assert decide(policy, GateRequest(tenant=local_operator(policy), operation=Operation.AUDIT_READ), WHEN,
                  CAL).rule == "role:oversight"
