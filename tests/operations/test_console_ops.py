"""The console's operations on a real catalog: sessions that end when they should, audited
sign-in and sign-out, the filtered trail (scoped by role: oversight reads every tenant's
entries and bias audits, an auditor its own), and the simulator as `policy check`'s dry run.

The engine's clock is a list the test moves forward: a session's expiry is checked
without waiting for it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Operation, PolicyDenied, record_bias_audit
from facegate.governance.audit_query import AuditFilter
from facegate.governance.checkpoints import generate_key
from facegate.operations import admin, audit, console
from facegate.settings import Settings
from tests.backend import execute, rows

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy-2020-moratorium.toml"


@pytest.fixture()
def clock() -> list[datetime]:
    return [START]


@pytest.fixture()
def engine(settings: Settings, clock: list[datetime]) -> Facegate:
    engine = Facegate(settings, clock=lambda: clock[0])
    admin.new_tenant(engine, Caller(), "board", "government", [], ["auditor", "oversight"])
    admin.new_tenant(engine, Caller(), "city", "government", [], ["auditor"])
    admin.new_tenant(engine, Caller(), "desk", "commercial", ["photo_library"], ["reviewer"])
    return engine


def key(engine: Facegate, tenant: str, holder: str | None = None) -> tuple[str, str]:
    made = admin.new_key(engine, Caller(), tenant, holder=holder)
    return made.key, made.key_id


def test_sign_in_opens_a_session_that_holds_no_key(engine: Facegate) -> None:
    secret, key_id = key(engine, "board")
    new = console.sign_in(engine, secret, "r1")
    user = console.signed_in(engine, new.token)
    assert (user.session.tenant, user.session.key_id, user.sector) == ("board", key_id, "government")
    assert user.session.expires_at == START + timedelta(minutes=engine.settings.console_session_minutes)
    entry = rows(engine, "SELECT tenant, key_id, decision, rule FROM audit_log WHERE operation = 'console_sign_in'")
    assert entry == [("board", key_id, "allow", "role:any")]  # a tenant that is no operator may sign in
    everything = repr(rows(engine, "SELECT * FROM audit_log")) + repr(rows(engine, "SELECT * FROM console_sessions"))
    assert secret not in everything and new.token not in everything


def test_a_session_ends_at_expiry_at_sign_out_and_with_its_key(engine: Facegate, clock: list[datetime]) -> None:
    secret, key_id = key(engine, "board")
    expiring = console.sign_in(engine, secret, "r1").token
    clock[0] = START + timedelta(minutes=engine.settings.console_session_minutes) - timedelta(seconds=1)
    console.signed_in(engine, expiring)
    clock[0] += timedelta(seconds=1)
    with pytest.raises(FacegateError) as expired:
        console.signed_in(engine, expiring)
    assert expired.value.code is ErrorCode.UNAUTHENTICATED

    leaving = console.sign_in(engine, secret, "r2").token
    console.sign_out(engine, console.signed_in(engine, leaving), "r3")
    with pytest.raises(FacegateError):
        console.signed_in(engine, leaving)
    assert rows(engine, "SELECT decision FROM audit_log WHERE operation = 'console_sign_out'") == [("allow",)]

    revoked = console.sign_in(engine, secret, "r4").token
    admin.drop_key(engine, Caller(), key_id)
    with pytest.raises(FacegateError):
        console.signed_in(engine, revoked)
    with pytest.raises(FacegateError) as again:
        console.sign_in(engine, secret, "r5")
    assert again.value.code is ErrorCode.UNAUTHENTICATED


def test_wrong_keys_and_suspended_tenants_are_refused_and_recorded(engine: Facegate) -> None:
    for wrong in ("", "fg_0123456789abcdef_guess", "not a key"):
        with pytest.raises(FacegateError) as refused:
            console.sign_in(engine, wrong, "r")
        assert refused.value.code is ErrorCode.UNAUTHENTICATED
    refused = "SELECT count(*) FROM audit_log WHERE operation = 'console_sign_in' AND code = 'UNAUTHENTICATED'"
    assert rows(engine, refused) == [(3,)]
    secret, _ = key(engine, "board")
    token = console.sign_in(engine, secret, "r1").token
    inside = console.signed_in(engine, token)
    admin.set_tenant_status(engine, Caller(), "board", "suspended")
    with pytest.raises(PolicyDenied) as suspended:
        console.sign_in(engine, secret, "r2")
    assert suspended.value.code is ErrorCode.TENANT_SUSPENDED
    with pytest.raises(PolicyDenied):  # not even the policy page, while suspended
        console.policy_in_force(engine, inside.caller("r2"))
    console.sign_out(engine, inside, "r3")  # leaving needs no permission: denied, recorded, ended
    with pytest.raises(FacegateError):
        console.signed_in(engine, token)
    assert rows(engine, "SELECT ended_at IS NOT NULL FROM console_sessions") == [(1,)]
    assert rows(engine, "SELECT decision, code FROM audit_log WHERE operation = 'console_sign_out'") == [
        ("deny", "TENANT_SUSPENDED")]


def test_the_trail_filters_and_needs_the_auditor_role(engine: Facegate, clock: list[datetime]) -> None:
    board = Caller(tenant="board", request_id="b")
    clock[0] = START + timedelta(days=1)
    admin.tenants(engine, Caller())  # one more entry, a day later
    denied = admin.policy_check(engine, Caller(tenant="desk"), Operation.AUDIT_READ, clock[0])
    assert not denied.allowed
    everything = console.audit_trail(engine, board, AuditFilter())
    assert [e["seq"] for e in everything] == sorted((e["seq"] for e in everything), reverse=True)
    hour = START + timedelta(hours=1)
    later = console.audit_trail(engine, board, AuditFilter(tenant="local", since=hour))
    assert len(later) == 1 and later[0]["time"] > hour.isoformat()
    earlier = console.audit_trail(engine, board, AuditFilter(until=hour))
    assert earlier and all(e["time"] < hour.isoformat() for e in earlier)
    assert console.audit_trail(engine, board, AuditFilter(tenant="board", decision="deny")) == []
    made = console.audit_trail(engine, board, AuditFilter(operation="tenant_admin", decision="allow"))
    assert {e["operation"] for e in made} == {"tenant_admin"} and made[-1]["details"]["action"] == "tenant_create"
    assert console.audit_entry(engine, board, made[-1]["seq"])["entry_hash"] == made[-1]["entry_hash"]
    with pytest.raises(FacegateError) as missing:
        console.audit_entry(engine, board, 10_000)
    assert missing.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(PolicyDenied) as refused:
        console.audit_trail(engine, Caller(tenant="desk"), AuditFilter())
    assert refused.value.code is ErrorCode.ROLE_REQUIRED


def test_the_simulator_is_policy_checks_dry_run_and_is_recorded(engine: Facegate) -> None:
    board = Caller(tenant="board", request_id="b")
    asked = Caller(tenant="desk", purpose="photo_library")
    at = datetime(2025, 1, 1, tzinfo=UTC)
    shown = console.simulate(engine, board, asked, Operation.SEARCH_IMAGE, at)
    assert shown == admin.policy_check(engine, asked, Operation.SEARCH_IMAGE, at)
    assert shown.allowed is False and shown.code is ErrorCode.ROLE_REQUIRED  # desk is a reviewer only
    recorded = rows(engine, "SELECT tenant, details FROM audit_log WHERE operation = 'audit_read' ORDER BY seq")
    assert recorded[-1][0] == "board" and '"action":"policy_simulate"' in recorded[-1][1]
    with pytest.raises(PolicyDenied):
        console.simulate(engine, Caller(tenant="desk"), asked, Operation.SEARCH_IMAGE, at)


def test_an_auditor_simulates_only_its_own_tenants_decisions(engine: Facegate) -> None:
    """A decision tells a tenant's sector and purposes: `city` (auditor, no oversight) may ask
    about itself, not about `desk` or a name that exists nowhere (refused alike, on the record)."""
    city = Caller(tenant="city", request_id="c")
    at = datetime(2025, 1, 1, tzinfo=UTC)
    own = console.simulate(engine, city, Caller(tenant="city", purpose="photo_library"), Operation.SEARCH_IMAGE, at)
    assert own == admin.policy_check(engine, Caller(tenant="city", purpose="photo_library"), Operation.SEARCH_IMAGE, at)
    refusals = []
    for other in ("desk", "no-such-tenant", None):
        with pytest.raises(FacegateError) as refused:
            console.simulate(engine, city, Caller(tenant=other, purpose="photo_library"), Operation.SEARCH_IMAGE, at)
        refusals.append((refused.value.code, refused.value.message))
    assert len(set(refusals)) == 1 and refusals[0][0] is ErrorCode.ROLE_REQUIRED
    recorded = [json.loads(d) for (d,) in rows(
        engine, "SELECT details FROM audit_log WHERE tenant = 'city' AND operation = 'audit_read' ORDER BY seq")]
    assert [d.get("error") for d in recorded] == [None, "ROLE_REQUIRED", "ROLE_REQUIRED", "ROLE_REQUIRED"]
    assert [d["question"]["tenant"] for d in recorded] == ["city", "desk", "no-such-tenant", None]  # what was asked


def test_every_role_reads_the_policy_and_the_read_is_recorded(engine: Facegate) -> None:
    read = console.policy_in_force(engine, Caller(tenant="desk", request_id="d"))  # a reviewer only
    assert read.version == engine.policy.version
    assert rows(engine, "SELECT tenant, decision, rule FROM audit_log WHERE operation = 'policy_read'") == [
        ("desk", "allow", "role:any")]


def _record_bias_audit(engine: Facegate, caller: Caller, dataset: str) -> int:
    """A recorded (passing) bias audit of the engine's template space and detector, made as
    `caller` through the gate (an audit of another space would vouch for nothing here)."""
    return engine.gate.run_recorded(caller, Operation.BIAS_AUDIT, lambda s, record: record_bias_audit(
        s, model_id=engine.model_id, template_id="t", dataset=dataset, space_id=engine.space.audit_id,
        dataset_sha256="0" * 64, threshold=0.5,
        max_group_fmr=1e-5, fmr_ratio=2.0, passed=True, report={"dataset": dataset}, record=record,
    )).audit_id


def test_an_auditor_reads_only_its_own_tenants_trail_and_bias_audits(settings: Settings) -> None:
    engine = Facegate(settings.model_copy(update={"policy": EXAMPLE_POLICY}), clock=lambda: START)
    for name, sector, purposes, roles in (("board", "government", [], ["auditor", "oversight"]),
                                          ("city", "government", [], ["auditor"]),
                                          ("desk", "commercial", ["photo_library"], ["reviewer"]),
                                          ("ngo", "nonprofit", ["missing_person"], ["operator"])):
        admin.new_tenant(engine, Caller(), name, sector, purposes, roles)
    board, city, desk = (Caller(tenant=t, request_id=t[0]) for t in ("board", "city", "desk"))
    console.policy_in_force(engine, desk)
    console.policy_in_force(engine, city)
    asked = Caller(tenant="ngo", purpose="missing_person", case_reference="MP-1")
    unaudited = admin.policy_check(engine, asked, Operation.SEARCH_IMAGE, START)
    assert unaudited.code is ErrorCode.AUDIT_REQUIRED
    assert console.bias_audits(engine, board).in_force["missing_person"] == unaudited.reason
    local_audit, city_audit = _record_bias_audit(engine, Caller(), "lfw"), _record_bias_audit(engine, city, "mine")
    seen = console.audit_trail(engine, city, AuditFilter())
    assert seen and {e["tenant"] for e in seen} == {"city"}
    assert console.audit_trail(engine, city, AuditFilter(tenant="desk")) == []  # a filter cannot widen it
    desks = console.audit_trail(engine, board, AuditFilter(tenant="desk"))  # oversight: every tenant's
    assert [e["operation"] for e in desks] == ["policy_read"]
    everyone = {e["tenant"] for e in console.audit_trail(engine, board, AuditFilter())}
    assert everyone >= {"local", "board", "city", "desk"}
    assert console.audit_entry(engine, board, desks[0]["seq"])["tenant"] == "desk"
    with pytest.raises(FacegateError) as hidden:  # another tenant's entry is a missing entry
        console.audit_entry(engine, city, desks[0]["seq"])
    assert hidden.value.code is ErrorCode.NOT_FOUND and hidden.value.message == f"no audit entry {desks[0]['seq']}"
    mine = console.bias_audits(engine, city)
    assert [a.summary.audit_id for a in mine.audits] == [city_audit]
    every = console.bias_audits(engine, board)
    assert {a.summary.audit_id for a in every.audits} == {local_audit, city_audit}
    assert [c.audit_id for c in mine.checks] == [city_audit] and {c.audit_id for c in every.checks} == {
        local_audit, city_audit}
    # The verdict in force is the gate's, from every recorded audit: the latest on "lfw" is
    # the local operator's, which the auditor of "city" does not see listed.
    assert mine.in_force == every.in_force and mine.in_force["missing_person"] is None
    assert admin.policy_check(engine, asked, Operation.SEARCH_IMAGE, START).allowed  # the gate agrees
    reads = rows(engine, "SELECT tenant, rule, details FROM audit_log "
                         "WHERE operation = 'audit_read' AND tenant IN ('board', 'city')")
    scopes = [(t, r, json.loads(d).get("scope")) for t, r, d in reads if "error" not in json.loads(d)]
    assert set(scopes) == {("city", "role:auditor", "city"), ("board", "role:oversight", "all")}
    with pytest.raises(PolicyDenied) as refused:  # a reviewer only reads nothing of the trail
        console.bias_audits(engine, desk)
    assert refused.value.code is ErrorCode.ROLE_REQUIRED


def test_a_session_carries_its_keys_holder_into_the_audit(engine: Facegate) -> None:
    secret, key_id = key(engine, "city", holder="ines")
    user = console.signed_in(engine, console.sign_in(engine, secret, "r1").token)
    assert user.key_holder == "ines" and user.caller("r2").key_holder == "ines"
    console.audit_trail(engine, user.caller("r2"), AuditFilter())
    other, _ = key(engine, "city")  # a key without a holder
    console.audit_trail(engine, console.signed_in(engine, console.sign_in(engine, other, "r3").token).caller("r4"),
                        AuditFilter())
    recorded = rows(engine, "SELECT operation, key_id, key_holder FROM audit_log WHERE tenant = 'city' ORDER BY seq")
    assert recorded[:2] == [("console_sign_in", key_id, "ines"), ("audit_read", key_id, "ines")]
    assert [h for *_, h in recorded[2:]] == [None, None]
    by_holder = console.audit_trail(engine, Caller(tenant="board"), AuditFilter(key="ines"))
    assert [(e["operation"], e["key_holder"]) for e in by_holder] == [
        ("audit_read", "ines"), ("console_sign_in", "ines")]
    assert console.audit_trail(engine, Caller(tenant="board"), AuditFilter(key=key_id)) == by_holder


def test_chain_state_names_why_the_log_no_longer_extends_its_checkpoint(settings: Settings, tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine.pem", tmp_path / "theirs.pem"
    generate_key(mine), generate_key(theirs)
    engine = Facegate(settings.model_copy(update={"audit_signing_key": mine}), clock=lambda: START)
    admin.new_tenant(engine, Caller(), "board", "government", [], ["auditor", "oversight"])
    board = Caller(tenant="board")
    assert audit.chain_state(engine, board).checkpoint is None  # none signed yet
    signed = audit.checkpoint(engine, Caller())
    state = audit.chain_state(engine, board)
    assert state.checkpoint["seq"] == signed["seq"] and state.not_extended is None and state.verified.ok
    recorded = rows(engine, "SELECT details FROM audit_log WHERE operation = 'audit_read' ORDER BY seq DESC LIMIT 1")
    assert '"extends_checkpoint":true' in recorded[0][0]

    # A checkpoint stored by someone holding another key: not the installation's, so not trusted.
    intruder = Facegate(settings.model_copy(update={"audit_signing_key": theirs}), clock=lambda: START)
    audit.checkpoint(intruder, Caller())
    state = audit.chain_state(engine, board)
    assert state.not_extended is not None and state.not_extended[1] == "checkpoint_invalid"
    assert "another key" in state.not_extended[2]

    # The intruder's checkpoint removed again, and the log cut back before the real one: truncated.
    execute(engine,
            "DELETE FROM audit_checkpoints WHERE checkpoint_id = (SELECT max(checkpoint_id) FROM audit_checkpoints)",
            ("DELETE FROM audit_log WHERE seq >= :seq", {"seq": signed["seq"] - 1}),
            ("UPDATE audit_head SET seq = :seq, entry_hash = (SELECT entry_hash FROM audit_log WHERE seq = :seq)",
             {"seq": signed["seq"] - 2}))
    state = audit.chain_state(engine, board)
    assert state.not_extended is not None and state.not_extended[:2] == (signed["seq"] - 1, "truncated")
