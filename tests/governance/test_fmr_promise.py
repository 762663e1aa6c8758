"""`fmr_holds_for`: the policy key, the every-group threshold the gate derives, and the
FMR_NOT_CERTIFIABLE denial or the accepted lowest rate (pure decisions, table calibrations)."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import GateRequest, Operation, Policy, decide
from facegate.governance.policy_loading import parse_policy
from facegate.governance.request import CollectionAccess
from tests.governance.gov_support import TableCalibration, at, table_groups, tenant

CAL = TableCalibration()
WHEN = at("2020-07-01T10:00:00Z")

BASE = """
sectors = ["local"]
{top}
[local_operator]
sector = "local"
purposes = "*"

[purposes.leads]
description = "leads"
max_fmr = 1e-5
max_results = 10
retention_days = 1
{purpose}
"""


def policy(top: str = "", purpose: str = "") -> Policy:
    return parse_policy(BASE.format(top=top, purpose=purpose).encode(), "test.toml")


def request(max_fmr: float | None = None, owner: str | None = "t") -> GateRequest:
    """A search of collection "c", owned by the searching tenant "t" unless said otherwise
    (None: no such collection)."""
    access = None if owner is None else CollectionAccess(owner)
    return GateRequest(tenant("t", "local", {"leads"}), Operation.SEARCH_IMAGE, purpose="leads",
                       collection_id="c", requested_max_fmr=max_fmr, collection_access=access)


def test_population_is_the_default_and_unchanged() -> None:
    d = decide(policy(), request(), WHEN, CAL, groups=table_groups(-2.0))
    assert d.allowed and d.fmr_holds_for == "population"
    assert d.threshold == pytest.approx(CAL.threshold_at_fmr(1e-5)) and d.certified_fmr == 1e-5


def test_every_group_takes_the_highest_group_threshold() -> None:
    groups = table_groups(-2.0)  # group b needs 2 points more than the population
    for where in ({"top": 'fmr_holds_for = "every_group"'}, {"purpose": 'fmr_holds_for = "every_group"'}):
        d = decide(policy(**where), request(), WHEN, CAL, groups=groups)
        own = [g.threshold_at_fmr(1e-5) for g in groups.groups]
        assert d.allowed and d.fmr_holds_for == "every_group" and d.limiting_group == "g=b"
        assert d.threshold == pytest.approx(max(own)) and all(d.threshold >= t for t in own)
        assert d.threshold >= CAL.threshold_at_fmr(1e-5)
    # a purpose may keep the population promise under an every-group policy
    mixed = policy(top='fmr_holds_for = "every_group"', purpose='fmr_holds_for = "population"')
    assert decide(mixed, request(), WHEN, CAL, groups=groups).fmr_holds_for == "population"


def test_uncertifiable_rate_is_denied_naming_the_group() -> None:
    groups = table_groups()
    stricter = policy(purpose='fmr_holds_for = "every_group"')
    d = decide(stricter, request(max_fmr=1e-8), WHEN, CAL, groups=groups)
    assert not d.allowed and d.code is ErrorCode.FMR_NOT_CERTIFIABLE and d.rule == "purpose:leads"
    assert "g=a" in d.reason and "1e-07" in d.reason
    none = decide(stricter, request(), WHEN, CAL, groups=None)  # no group calibration at all
    assert none.code is ErrorCode.FMR_NOT_CERTIFIABLE


def test_ownership_is_checked_before_certifiability() -> None:
    """A foreign or missing collection is refused as missing (step 10) before the rate's
    promise is weighed (step 13): the answer never tells the two apart."""
    stricter = policy(purpose='fmr_holds_for = "every_group"')
    own = decide(stricter, request(max_fmr=1e-8), WHEN, CAL, groups=table_groups())
    assert own.code is ErrorCode.FMR_NOT_CERTIFIABLE
    for owner in ("someone-else", None):
        d = decide(stricter, request(max_fmr=1e-8, owner=owner), WHEN, CAL, groups=table_groups())
        assert (d.code, d.rule, d.reason) == (ErrorCode.COLLECTION_NOT_FOUND, "collection:not-found", "no collection 'c'")


def test_accepted_lowest_rate_is_reported() -> None:
    groups = table_groups()
    accepting = policy(purpose='fmr_holds_for = "every_group"\naccept_lowest_certifiable_fmr = true')
    d = decide(accepting, request(max_fmr=1e-8), WHEN, CAL, groups=groups)
    assert d.allowed and d.certified_fmr == pytest.approx(1e-7) and d.max_fmr == 1e-8
    assert d.threshold >= CAL.threshold_at_fmr(1e-8)  # never below the population's at max_fmr
    body = d.to_dict()
    assert body["certified_fmr"] == pytest.approx(1e-7) and body["fmr_holds_for"] == "every_group"


def test_bad_value_is_refused_with_its_field() -> None:
    with pytest.raises(FacegateError) as bad:
        policy(purpose='fmr_holds_for = "everyone"')
    assert bad.value.code is ErrorCode.POLICY_INVALID
    assert "fmr_holds_for" in str(bad.value.details) + bad.value.message
