"""The audit trail page's chain state against a signed checkpoint, in a real headless Chromium.

A server of its own (the test rewrites its audit log, which no other test may see) runs
with an audit signing key made by `facegate audit keygen`; a checkpoint is signed with
`facegate audit checkpoint`. The page shows it (seq, head, signed time) and that the log
extends it; after an intruder's consistent rewrite of an entry before it (edited content,
recomputed chain and head, as tests/cli/test_checkpoints.py does), the page says the log
does not extend it and names the kind. Set FACEGATE_CONSOLE_SCREENSHOTS=docs/console to
refresh the picture in docs/console.md.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.cli.test_checkpoints import rewrite_from, sql
from tests.service.browser import axe_source, axe_violations, chromium, screenshot
from tests.service.server import EXAMPLE_POLICY, FACEGATE, Server, running_server
from tests.service.test_console_browser import sign_in

TENANTS = (("board", "government", "", "auditor,oversight"), ("hope-ngo", "nonprofit", "victim_identification", "operator"))


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("signing")
    home, key = root / "home", root / "audit-key.pem"
    made = subprocess.run([str(FACEGATE), "audit", "keygen", "--out", str(key), "--json"],
                          capture_output=True, text=True, check=True, timeout=120)
    assert "public_key" in made.stdout
    return home, key


@pytest.fixture(scope="module")
def server(signing: tuple[Path, Path], model_cache: Path) -> Iterator[Server]:
    home, key = signing
    settings = {"FACEGATE_AUDIT_SIGNING_KEY": str(key), "FACEGATE_CHECKPOINT_INTERVAL_SECONDS": "0",
                "FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}
    with running_server(home, model_cache, policy=EXAMPLE_POLICY, tenants=TENANTS, settings=settings) as running:
        with running.client(running.keys["hope-ngo"]) as ngo:
            for name in ("shelter-intake", "ads-2026"):
                ngo.create_collection(name)
        yield running


def sign_checkpoint(server: Server, key: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(FACEGATE_HOME=str(server.home), FACEGATE_POLICY=str(EXAMPLE_POLICY), FACEGATE_AUDIT_SIGNING_KEY=str(key))
    run = subprocess.run([str(FACEGATE), "audit", "checkpoint", "--json"], env=env, capture_output=True, text=True,
                         check=False, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    return dict(json.loads(run.stdout))


def test_the_page_shows_the_checkpoint_and_a_rewrite_before_it(
    server: Server, signing: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    chosen = os.environ.get("FACEGATE_CONSOLE_SCREENSHOTS")
    shots = Path(chosen) if chosen else tmp_path_factory.mktemp("shots")
    axe = axe_source()
    signed = sign_checkpoint(server, signing[1])
    with chromium() as browser:
        sign_in(browser, server, "board", "/console/audit")
        shown = browser.find_element(By.ID, "checkpoint").text
        assert browser.find_element(By.ID, "checkpoint-seq").text == str(signed["seq"])
        assert browser.find_element(By.ID, "checkpoint-head").text == str(signed["head"])[:16] + "…"
        assert str(signed["signed_at"])[:19].replace("T", " ") in shown
        state = browser.find_element(By.ID, "checkpoint-state").text
        assert state.startswith("The log extends it: entries 1 to " + str(signed["seq"]))
        assert browser.find_element(By.ID, "chain-state").text.startswith("Verified")
        assert axe_violations(browser, axe) == []
        screenshot(browser, shots / "audit-checkpoint.png")

        # An intruder edits entry 2 (before the checkpoint) and recomputes every hash after it and
        # the head: the chain alone is consistent, but no longer the one that was signed.
        sql(server.home, "UPDATE audit_log SET collection = 'elsewhere' WHERE seq = 2")
        rewrite_from(server.home, 2)
        browser.get(f"{server.url}/console/audit")
        state = browser.find_element(By.ID, "checkpoint-state").text
        assert "does not extend it" in state and "(rewritten, at entry " + str(signed["seq"]) in state
        assert browser.find_element(By.ID, "checkpoint-state").get_attribute("role") == "alert"
        assert browser.find_element(By.ID, "checkpoint-seq").text == str(signed["seq"])
        assert axe_violations(browser, axe) == []
        screenshot(browser, shots / "audit-checkpoint-rewritten.png")
