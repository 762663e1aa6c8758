"""Tenants, API keys and purpose approvals on a real catalog: keys hashed at rest, revocation
and expiry enforced, and every administrative step audited."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.approvals import decide_approval, pending_approvals, request_approval
from facegate.governance.audit import export_jsonl
from facegate.governance.audit_verify import verify
from facegate.governance.decision import decide
from facegate.governance.keys import authenticate, create_key, revoke_key
from facegate.governance.permissions import Operation, Role
from facegate.governance.policy import Policy
from facegate.governance.request import GateRequest, TenantStatus
from facegate.governance.tenants import (
    create_tenant,
    describe_tenant,
    list_tenants,
    set_roles,
    set_status,
    tenant_view,
)
from facegate.store.governance_tables import ApiKeyRow
from tests.at_rest import RawCatalog
from tests.governance.gov_support import TableCalibration, admin_record, at

Catalog = tuple[Engine, sessionmaker[Session]]


def _audit_lines(sessions: sessionmaker[Session]) -> list[dict]:
    import io

    out = io.StringIO()
    with sessions() as session:
        export_jsonl(session, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_create_describe_list(catalog: Catalog, example_policy: Policy) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        info = create_tenant(
            session,
            example_policy,
            name="polaris",
            sector="nonprofit",
            purposes=["victim_identification", "missing_person"],
            record=admin_record(),
        )
        create_tenant(
            session,
            example_policy,
            name="acme",
            sector="commercial",
            roles=["operator", "auditor"],
            record=admin_record(),
        )
    assert info.to_dict()["purposes"] == ["missing_person", "victim_identification"]
    assert info.status is TenantStatus.ACTIVE and info.roles == (Role.OPERATOR,)
    with sessions() as session:
        assert [t.name for t in list_tenants(session)] == ["acme", "polaris"]
        view = tenant_view(session, "polaris")
        assert view.purposes == {"victim_identification", "missing_person"} and view.sector == "nonprofit"
        assert set(describe_tenant(session, "acme").roles) == {Role.OPERATOR, Role.AUDITOR}
    (first, second) = _audit_lines(sessions)
    assert first["details"]["action"] == "tenant_create" and first["details"]["target_tenant"] == "polaris"
    assert first["details"]["approved_purposes"] == ["missing_person", "victim_identification"]
    assert (first["tenant"], first["operation"], second["seq"]) == ("local", "tenant_admin", 2)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "polaris"}, ErrorCode.TENANT_EXISTS),
        ({"name": "local"}, ErrorCode.TENANT_EXISTS),
        ({"name": "Bad Name"}, ErrorCode.INVALID_ARGUMENT),
        ({"sector": "defence"}, ErrorCode.INVALID_ARGUMENT),
        ({"purposes": ["marketing"]}, ErrorCode.PURPOSE_UNKNOWN),
        ({"purposes": ["criminal_investigation"]}, ErrorCode.PURPOSE_NOT_APPROVED),
        ({"roles": ["superuser"]}, ErrorCode.INVALID_ARGUMENT),
        ({"roles": []}, ErrorCode.INVALID_ARGUMENT),
    ],
)
def test_create_refuses_what_the_policy_could_not_honour(
    catalog: Catalog, example_policy: Policy, kwargs: dict, code: ErrorCode
) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        create_tenant(session, example_policy, name="polaris", sector="nonprofit", record=admin_record())
    base = {"name": "newcomer", "sector": "nonprofit"}
    with pytest.raises(FacegateError) as raised, sessions.begin() as session:
        create_tenant(session, example_policy, **{**base, **kwargs}, record=admin_record())
    assert raised.value.code is code
    assert len(_audit_lines(sessions)) == 1  # a refused change leaves no entry of its own


def test_keys_are_shown_once_and_hashed_at_rest(
    tmp_path: Path, catalog: Catalog, database_url: str | None, example_policy: Policy
) -> None:
    engine, sessions = catalog
    with sessions.begin() as session:
        create_tenant(
            session,
            example_policy,
            name="polaris",
            sector="nonprofit",
            purposes=["victim_identification"],
            record=admin_record(),
        )
        new = create_key(session, tenant="polaris", record=admin_record())
    assert set(new.to_dict()) == {"key_id", "key", "tenant", "holder"} and new.holder is None
    prefix, secret = new.key.split(new.key_id + "_", 1)
    assert prefix == "fg_" and len(secret) >= 43  # 32 random bytes, URL-safe base64
    with sessions() as session:
        view, key_id = authenticate(session, new.key, at("2024-02-01T00:00:00Z"))
        stored = session.scalars(select(ApiKeyRow.secret_sha256)).one()
    assert (view.name, key_id) == ("polaris", new.key_id)
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    engine.dispose()  # checkpoint the WAL, then look at every byte on disk (every row of the database)
    at_rest = RawCatalog(tmp_path, database_url).stored_bytes()
    assert secret.encode() not in at_rest and new.key.encode() not in at_rest
    assert new.key_id.encode() in at_rest and stored.encode() in at_rest


def test_wrong_revoked_and_expired_keys_are_refused(catalog: Catalog, example_policy: Policy) -> None:
    _, sessions = catalog
    t0 = at("2024-01-01T09:00:00Z")
    with sessions.begin() as session:
        create_tenant(session, example_policy, name="polaris", sector="nonprofit", record=admin_record())
        lasting = create_key(session, tenant="polaris", record=admin_record())
        brief = create_key(
            session, tenant="polaris", expires_at=t0 + timedelta(hours=1), record=admin_record()
        )
    with sessions() as session:
        assert authenticate(session, brief.key, t0 + timedelta(minutes=59))[1] == brief.key_id
        for presented, words in [
            (brief.key, "expired"),
            (lasting.key[:-1] + ("A" if lasting.key[-1] != "A" else "B"), "invalid"),
            (f"fg_{'0' * 16}_{lasting.key.rsplit('_', 1)[-1]}", "invalid"),
            ("Bearer something", "malformed"),
            ("fg_short_secret", "malformed"),
            ("", "malformed"),
        ]:
            with pytest.raises(FacegateError) as raised:
                authenticate(session, presented, t0 + timedelta(hours=1))
            assert raised.value.code is ErrorCode.UNAUTHENTICATED and words in raised.value.message
    with sessions.begin() as session:
        revoked = revoke_key(session, lasting.key_id, record=admin_record("2024-01-02T00:00:00Z"))
        with pytest.raises(FacegateError) as raised:
            revoke_key(session, "f" * 16, record=admin_record())
        assert raised.value.code is ErrorCode.KEY_NOT_FOUND
    assert revoked.revoked_at == at("2024-01-02T00:00:00Z")
    with sessions() as session, pytest.raises(FacegateError) as raised:
        authenticate(session, lasting.key, at("2024-01-03T00:00:00Z"))
    assert "revoked" in raised.value.message
    with pytest.raises(FacegateError) as raised, sessions.begin() as session:
        create_key(session, tenant="polaris", expires_at=t0 - timedelta(days=1), record=admin_record())
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    actions = [line["details"]["action"] for line in _audit_lines(sessions)]
    assert actions == ["tenant_create", "key_create", "key_create", "key_revoke"]


def test_a_suspended_tenant_authenticates_and_is_denied_by_the_gate(
    catalog: Catalog, example_policy: Policy
) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        create_tenant(
            session,
            example_policy,
            name="polaris",
            sector="nonprofit",
            purposes=["victim_identification"],
            record=admin_record(),
        )
        key = create_key(session, tenant="polaris", record=admin_record())
        set_status(session, "polaris", TenantStatus.SUSPENDED, record=admin_record())
    with sessions() as session:
        view, key_id = authenticate(session, key.key, at("2024-02-01T00:00:00Z"))
    request = GateRequest(
        tenant=view,
        key_id=key_id,
        operation=Operation.SEARCH_IMAGE,
        purpose="victim_identification",
        case_reference="C-1",
    )
    assert (
        decide(example_policy, request, at("2024-02-01T00:00:00Z"), TableCalibration()).code
        is ErrorCode.TENANT_SUSPENDED
    )
    with sessions.begin() as session:
        set_status(session, "polaris", TenantStatus.ACTIVE, record=admin_record())
        set_roles(session, "polaris", ["operator", "reviewer"], record=admin_record())
        view = tenant_view(session, "polaris")
    assert view.status is TenantStatus.ACTIVE and view.roles == {Role.OPERATOR, Role.REVIEWER}
    details = [line["details"] for line in _audit_lines(sessions)][2:]
    assert [(d["action"], d.get("status"), d.get("previous")) for d in details] == [
        ("tenant_status", "suspended", "active"),
        ("tenant_status", "active", "suspended"),
        ("tenant_roles", None, ["operator"]),
    ]


def test_the_approval_workflow_is_audited_step_by_step(catalog: Catalog, example_policy: Policy) -> None:
    _, sessions = catalog
    cal, when = TableCalibration(), at("2024-03-01T12:00:00Z")
    with sessions.begin() as session:
        create_tenant(session, example_policy, name="acme", sector="commercial", record=admin_record())
    acme_asks = replace(
        admin_record("2024-03-01T10:00:00Z", actor="acme"),
        operation="request_approval",
        rule="role:operator",
        key_id="00000000000000aa",
    )

    def search() -> ErrorCode | None:
        with sessions() as session:
            view = tenant_view(session, "acme")
        return decide(
            example_policy,
            GateRequest(tenant=view, operation=Operation.SEARCH_IMAGE, purpose="photo_library"),
            when,
            cal,
        ).code

    assert search() is ErrorCode.PURPOSE_NOT_APPROVED
    with sessions.begin() as session:
        pending = request_approval(
            session, example_policy, purpose="photo_library", note="staff photo archive", record=acme_asks
        )
        with pytest.raises(FacegateError) as raised:
            request_approval(session, example_policy, purpose="victim_identification", record=acme_asks)
        assert (
            raised.value.code is ErrorCode.PURPOSE_NOT_APPROVED
        )  # closed to commercial: cannot even be requested
    assert pending.status == "pending" and search() is ErrorCode.PURPOSE_NOT_APPROVED
    with sessions() as session:
        assert [(a.tenant, a.purpose) for a in pending_approvals(session)] == [("acme", "photo_library")]
    with sessions.begin() as session:
        approved = decide_approval(
            session,
            example_policy,
            tenant="acme",
            purpose="photo_library",
            approve=True,
            note="ok",
            record=admin_record("2024-03-01T11:00:00Z"),
        )
    assert (approved.status, approved.decided_by) == ("approved", "local")
    assert search() is None
    with sessions.begin() as session:
        decide_approval(
            session,
            example_policy,
            tenant="acme",
            purpose="photo_library",
            approve=False,
            note="contract ended",
            record=admin_record("2024-03-02T11:00:00Z"),
        )
        with pytest.raises(FacegateError) as raised:
            decide_approval(
                session,
                example_policy,
                tenant="acme",
                purpose="research",
                approve=True,
                record=admin_record(),
            )
        assert raised.value.code is ErrorCode.NOT_FOUND
    assert search() is ErrorCode.PURPOSE_NOT_APPROVED
    steps = [
        (line["tenant"], line["operation"], line["details"]["action"], line["details"].get("verdict"))
        for line in _audit_lines(sessions)
    ]
    assert steps == [
        ("local", "tenant_admin", "tenant_create", None),
        ("acme", "request_approval", "approval_request", None),
        ("local", "tenant_admin", "approval_decision", "approved"),
        ("local", "tenant_admin", "approval_decision", "rejected"),
    ]
    with sessions() as session:
        assert verify(session).ok
