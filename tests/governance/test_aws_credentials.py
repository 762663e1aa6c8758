"""AWS credentials of a key on a real catalog: created sealed, found by access key id,
usable only while neither revoked nor expired, and bound to the key's purpose and case."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.keys import apply_binding, aws_credential, create_key, key_binding, revoke_key
from facegate.governance.policy import Policy
from facegate.governance.tenants import create_tenant
from facegate.store.sealing import SecretBox, load_or_create_kek
from tests.governance.gov_support import admin_record, at

Catalog = tuple[Engine, sessionmaker[Session]]


def test_credentials_are_sealed_and_expire(catalog: Catalog, example_policy: Policy, tmp_path: Path) -> None:
    _, sessions = catalog
    box = SecretBox(load_or_create_kek(tmp_path))
    expires = at("2024-02-01T00:00:00Z")
    with sessions.begin() as session:
        create_tenant(session, example_policy, name="polaris", sector="nonprofit",
                      purposes=["victim_identification"], record=admin_record())
        new = create_key(session, tenant="polaris", record=admin_record(), purpose="victim_identification",
                         case_reference="CASE-1", expires_at=expires, sealer=box)
        plain = create_key(session, tenant="polaris", record=admin_record())  # no sealer: no AWS credentials
    assert new.aws_access_key_id and new.aws_access_key_id.startswith("AKFG") and len(new.aws_access_key_id) == 20
    assert plain.aws_access_key_id is None and set(plain.to_dict()) == {"key_id", "key", "tenant", "holder"}
    with sessions.begin() as session:
        found = aws_credential(session, new.aws_access_key_id)
        assert aws_credential(session, "AKFGNOSUCHKEYNOSUCHK") is None
        assert key_binding(session, new.key_id) == ("victim_identification", "CASE-1")
        assert key_binding(session, plain.key_id) == (None, None)
    assert found is not None and found.tenant == "polaris" and found.key_id == new.key_id
    assert new.aws_secret_access_key not in found.secret_sealed
    assert box.open(found.secret_sealed, found.access_key_id) == new.aws_secret_access_key
    found.check_usable(expires - timedelta(seconds=1))
    with pytest.raises(FacegateError) as expired:
        found.check_usable(expires)
    assert expired.value.code is ErrorCode.UNAUTHENTICATED and "expired" in expired.value.message
    with sessions.begin() as session:
        revoke_key(session, new.key_id, record=admin_record())
        revoked = aws_credential(session, new.aws_access_key_id)
    assert revoked is not None
    with pytest.raises(FacegateError) as refused:
        revoked.check_usable(expires - timedelta(days=1))
    assert "revoked" in refused.value.message


def test_a_case_reference_binds_only_with_a_purpose(catalog: Catalog, example_policy: Policy) -> None:
    _, sessions = catalog
    with sessions.begin() as session:
        create_tenant(session, example_policy, name="polaris", sector="nonprofit", record=admin_record())
    with pytest.raises(FacegateError) as refused, sessions.begin() as session:
        create_key(session, tenant="polaris", record=admin_record(), case_reference="CASE-1")
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize(("bound", "asked", "expect"), [
    ((None, None), ("photo_library", "C"), ("photo_library", "C")),
    (("victim_identification", "CASE-1"), (None, None), ("victim_identification", "CASE-1")),
    (("victim_identification", "CASE-1"), ("victim_identification", "CASE-1"), ("victim_identification", "CASE-1")),
    (("victim_identification", None), (None, "CASE-2"), ("victim_identification", "CASE-2")),
    (("victim_identification", "CASE-1"), ("criminal_investigation", None), ErrorCode.KEY_BOUND),
    (("victim_identification", "CASE-1"), (None, "CASE-2"), ErrorCode.KEY_BOUND),
])
def test_binding(bound: tuple[str | None, str | None], asked: tuple[str | None, str | None],
                 expect: tuple[str, str] | ErrorCode) -> None:
    if isinstance(expect, ErrorCode):
        with pytest.raises(FacegateError) as refused:
            apply_binding(*bound, *asked)
        assert refused.value.code is expect
    else:
        assert apply_binding(*bound, *asked) == expect
