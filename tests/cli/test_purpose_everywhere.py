"""The CLI takes `--purpose` and `--case-reference` on every operation a moratorium may
exempt by purpose, as the HTTP API and the Python client do (tests/service/test_moratorium.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings
from tests.service.server import EXAMPLE_POLICY

CASE = "CASE-2026-0117"


def test_police_create_a_victim_gallery_only_under_the_exempt_purpose(settings: Settings) -> None:
    home = ["--data-dir", str(settings.home), "--policy", str(EXAMPLE_POLICY)]
    runner = CliRunner()

    def run(*args: str) -> tuple[int, dict]:
        done = runner.invoke(main, [*args, *home, "--json"])
        return done.exit_code, json.loads(done.output)

    assert run("tenant", "create", "metro-police", "--sector", "law_enforcement",
               "--purposes", "criminal_investigation,victim_identification")[0] == 0
    police = ("--tenant", "metro-police")
    code, out = run("collection", "create", "victims-police", *police)
    assert code == 1 and out["error"]["code"] == "MORATORIUM"
    code, out = run("collection", "create", "victims-police", *police, "--purpose", "criminal_investigation",
                    "--case-reference", CASE)
    assert code == 1 and out["error"]["code"] == "MORATORIUM"
    code, out = run("collection", "create", "victims-police", *police, "--purpose", "victim_identification",
                    "--case-reference", CASE)
    assert code == 0 and out["collection_id"] == "victims-police"
    code, out = run("subject", "create", "victims-police", "person-1", *police, "--purpose", "victim_identification",
                    "--case-reference", CASE)
    assert code == 0 and out["subject"] == "person-1"
