"""Tenants, keys, the policy dry run and the audit trail through the CLI, with the
moratorium example policy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings
from tests.conftest import REPO

POLICY = REPO / "examples" / "policy-2020-moratorium.toml"


def run(settings: Settings, *args: str, policy: Path | None = POLICY) -> tuple[int, dict]:
    extra = ["--policy", str(policy)] if policy else []
    result = CliRunner().invoke(main, [*args, "--data-dir", str(settings.home), *extra, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_tenant_key_and_policy_check(settings: Settings) -> None:
    code, tenant = run(settings, "tenant", "create", "metro-police", "--sector", "law_enforcement",
                       "--purposes", "criminal_investigation,victim_identification")
    assert code == 0 and tenant["sector"] == "law_enforcement"
    code, key = run(settings, "key", "create", "metro-police")
    assert code == 0 and set(key) == {"key_id", "key", "tenant", "holder", "aws_access_key_id", "aws_secret_access_key"}
    assert key["key"].startswith("fg_") and len(key["aws_access_key_id"]) == 20
    assert key["tenant"] == "metro-police" and key["holder"] is None
    code, denied = run(settings, "policy", "check", "--tenant", "metro-police", "--purpose",
                       "criminal_investigation", "--operation", "search", "--at", "2020-07-01T12:00:00Z")
    assert code == 0
    assert {"decision", "code", "rule", "policy_version", "max_fmr", "threshold"} <= set(denied)
    assert denied["decision"] == "deny" and denied["code"] == "MORATORIUM"
    code, before = run(settings, "policy", "check", "--tenant", "metro-police", "--purpose",
                       "criminal_investigation", "--operation", "search", "--at", "2020-06-09T12:00:00Z",
                       "--case-reference", "case-7")
    assert before["decision"] == "allow" and before["threshold"] is not None
    code, exempt = run(settings, "policy", "check", "--tenant", "metro-police", "--purpose",
                       "victim_identification", "--operation", "search", "--at", "2026-07-01T12:00:00Z",
                       "--case-reference", "case-8")
    assert exempt["decision"] == "allow"
    # the key is stored only as a hash
    db = (settings.home / "catalog.sqlite3").read_bytes()
    secret = key["key"].split("_", 2)[2]  # fg_<key id>_<secret>; the secret may hold "_" itself
    assert len(secret) >= 40 and key["key"].encode() not in db and secret.encode() not in db
    assert key["aws_secret_access_key"].encode() not in db  # sealed, under a key kept outside it


def test_denied_search_is_audited_and_chain_verifies(settings: Settings, peers: Path) -> None:
    run(settings, "tenant", "create", "metro-police", "--sector", "law_enforcement",
        "--purposes", "criminal_investigation,victim_identification")
    run(settings, "collection", "create", "leads")
    code, _ = run(settings, "collection", "share", "leads", "--with", "metro-police", "--operations", "search")
    assert code == 0
    image = peers / "face_recognition" / "tests" / "test_images" / "obama.jpg"
    code, out = run(settings, "search", "leads", str(image), "--tenant", "metro-police",
                    "--purpose", "criminal_investigation", "--case-reference", "case-1")
    assert code == 1 and out["error"]["code"] == "MORATORIUM"
    code, out = run(settings, "search", "leads", str(image), "--tenant", "metro-police",
                    "--purpose", "victim_identification", "--case-reference", "case-2")
    assert code == 0 and out["decision"]["decision"] == "allow" and out["investigative_leads"] is True
    code, verified = run(settings, "audit", "verify")
    assert code == 0 and verified["ok"] is True and verified["entries"] >= 4
    assert verified["first_bad_entry"] is None
    # tamper with one byte of the denied entry: verify names it and exits non-zero
    con = sqlite3.connect(settings.home / "catalog.sqlite3")
    seq = con.execute("SELECT seq FROM audit_log WHERE code = 'MORATORIUM'").fetchone()[0]
    con.execute("UPDATE audit_log SET purpose = 'victim_identification' WHERE seq = ?", (seq,))
    con.commit()
    con.close()
    code, broken = run(settings, "audit", "verify")
    assert code == 1 and broken["ok"] is False and broken["first_bad_entry"] == seq


def test_policy_show_and_default(settings: Settings) -> None:
    code, shown = run(settings, "policy", "show", policy=None)
    assert code == 0 and shown["source"].startswith("builtin") and "local_operator" in shown["text"]


def test_bad_policy_file_is_refused_with_line(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(POLICY.read_text().replace('sectors = ["law_enforcement"]', 'sectors = ["police_force"]', 1))
    code, out = run(settings, "policy", "show", policy=bad)
    assert code == 1 and out["error"]["code"] == "POLICY_INVALID" and out["error"].get("line")


def test_audit_report_and_export(settings: Settings) -> None:
    run(settings, "collection", "create", "x")
    code, report = run(settings, "audit", "report")
    assert code == 0
    result = CliRunner().invoke(main, ["audit", "export", "--data-dir", str(settings.home), "--policy", str(POLICY)])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and lines and all("entry_hash" in e for e in lines)


def test_key_bound_to_a_purpose_and_case(settings: Settings) -> None:
    run(settings, "tenant", "create", "polaris", "--sector", "nonprofit", "--purposes", "victim_identification")
    code, key = run(settings, "key", "create", "polaris", "--purpose", "victim_identification",
                    "--case-reference", "CASE-9", "--expires", "2099-01-01T00:00:00Z")
    assert code == 0 and (key["purpose"], key["case_reference"]) == ("victim_identification", "CASE-9")
    code, unknown = run(settings, "key", "create", "polaris", "--purpose", "mass_surveillance")
    assert code == 1 and unknown["error"]["code"] == "PURPOSE_UNKNOWN"
    code, alone = run(settings, "key", "create", "polaris", "--case-reference", "CASE-9")
    assert code == 1 and alone["error"]["code"] == "INVALID_ARGUMENT"
    with sqlite3.connect(settings.home / "catalog.sqlite3") as db:
        row = db.execute("SELECT purpose, case_reference, aws_access_key_id FROM api_keys WHERE key_id = ?",
                         (key["key_id"],)).fetchone()
    assert row == ("victim_identification", "CASE-9", key["aws_access_key_id"])
