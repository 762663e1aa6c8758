"""The service's schedule on a real server: with a signing key it writes signed checkpoints
into the operator's directory, serves the latest at GET /v1/audit/checkpoint, and runs
retention, each run audited; without a key it says so at start and in /readyz, and is
still ready."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from click.testing import CliRunner

from facegate.cli import main
from facegate.governance.checkpoints import generate_key
from tests.governance.test_audit_proofs import consistency_holds
from tests.service.server import Server, running_server

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll until `probe` returns something (the schedule runs in its own thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.2)
    raise TimeoutError("the service's schedule did not run in time")


def test_a_service_without_a_signing_key_says_so_and_is_ready(server: Server) -> None:
    ready = httpx.get(f"{server.url}/readyz", timeout=60)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["audit_signing"].startswith("not configured")
    assert "audit checkpoint signing not configured" in server.log.read_text()
    denied = httpx.get(f"{server.url}/v1/audit/checkpoint", headers={"Authorization": f"Bearer {server.keys['newsroom']}"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ROLE_REQUIRED"


def test_a_collection_sets_its_retention_over_http(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.keys['newsroom']}"}
    made = httpx.post(f"{server.url}/v1/collections", headers=headers,
                      json={"collection_id": "anchoring-aging", "retention_days": 7})
    assert made.status_code == 201 and made.json()["retention_days"] == 7
    described = httpx.get(f"{server.url}/v1/collections/anchoring-aging", headers=headers)
    assert described.json()["retention_days"] == 7
    refused = httpx.post(f"{server.url}/v1/collections", headers=headers,
                         json={"collection_id": "anchoring-never", "retention_days": 0})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.fixture(scope="module")
def anchored(tmp_path_factory: pytest.TempPathFactory, model_cache: Path):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("anchored")
    key = root / "audit-key.pem"
    public_key = generate_key(key)
    settings = {
        "FACEGATE_AUDIT_SIGNING_KEY": str(key),
        "FACEGATE_CHECKPOINT_DIR": str(root / "checkpoints"),
        "FACEGATE_CHECKPOINT_INTERVAL_SECONDS": "1",
        "FACEGATE_RETENTION_INTERVAL_SECONDS": "1",
    }
    with running_server(root / "home", model_cache, settings=settings,
                        tenants=[("board", "nonprofit", "", "auditor")]) as server:
        yield server, root / "checkpoints", public_key


def test_the_schedule_signs_checkpoints_serves_the_latest_and_applies_retention(anchored) -> None:  # type: ignore[no-untyped-def]
    server, folder, public_key = anchored
    assert httpx.get(f"{server.url}/readyz", timeout=60).json()["audit_signing"] == "ok"
    written = eventually(lambda: sorted(folder.glob("checkpoint-*.json")) or None)
    on_disk = json.loads(written[-1].read_text())
    assert on_disk["public_key"] == public_key and on_disk["seq"] >= 1
    served = httpx.get(f"{server.url}/v1/audit/checkpoint", headers={"Authorization": f"Bearer {server.keys['board']}"})
    assert served.status_code == 200
    latest = served.json()
    assert {"seq", "head", "signed_at", "signature", "public_key", "merkle_root", "previous"} <= set(latest)
    assert latest["seq"] >= on_disk["seq"] and latest["public_key"] == public_key

    def retention_entry() -> dict[str, object] | None:
        return next(iter(server.entries("operation = 'retention'")), None)

    run = eventually(retention_entry)
    assert json.loads(str(run["details"]))["action"] == "retention" and run["tenant"] == "local"
    # the log the oversight board was given extends the checkpoint it kept
    verified = CliRunner().invoke(main, ["audit", "verify", "--checkpoint", str(written[-1]),
                                         "--data-dir", str(server.home), "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True
    # the service itself checks the log against the newest checkpoint it kept there
    over_http = httpx.get(f"{server.url}/v1/audit/verify", headers={"Authorization": f"Bearer {server.keys['board']}"})
    assert over_http.status_code == 200 and over_http.json()["ok"] is True, over_http.text
    checked = over_http.json()["checkpoint"]
    assert checked["public_key"] == public_key and checked["file"] == f"checkpoint-{checked['seq']:012d}.json"
    last = server.entries("operation = 'audit_read' AND details LIKE '%verified_ok%'")[-1]
    assert json.loads(str(last["details"]))["checkpoint_seq"] >= on_disk["seq"]


def test_a_board_gets_a_consistency_proof_from_the_checkpoint_it_kept(anchored) -> None:  # type: ignore[no-untyped-def]
    server, folder, public_key = anchored
    board = {"Authorization": f"Bearer {server.keys['board']}"}
    kept = json.loads(eventually(lambda: sorted(folder.glob("checkpoint-*.json")) or None)[0].read_text())
    eventually(lambda: httpx.get(f"{server.url}/v1/audit/checkpoint", headers=board).json()["seq"] > kept["seq"] or None)
    answer = httpx.get(f"{server.url}/v1/audit/consistency", params={"from_checkpoint": kept["checkpoint_hash"]},
                       headers=board)
    assert answer.status_code == 200, answer.text
    proof = answer.json()
    assert proof["second"]["seq"] > kept["seq"] and consistency_holds(proof, public_key, kept)
    missing = httpx.get(f"{server.url}/v1/audit/consistency", params={"from_checkpoint": "ab" * 32}, headers=board)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CHECKPOINT_NOT_FOUND"
