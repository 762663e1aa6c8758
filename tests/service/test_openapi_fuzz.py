"""Fuzzing the published OpenAPI document with schemathesis against the running server.

Schemathesis reads /openapi.json and sends the schema's examples, boundary values of every
constraint (valid and invalid), and random requests to every operation, with a key whose
tenant may operate and audit. Every answer must be documented and match its schema (no
500, no undocumented status, no body that violates its model), and data that breaks the
schema must be refused with a 4xx. Bounded: a few examples per operation.
The number of cases run is printed (`-s`) and must be in the hundreds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.service.server import Server

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance,negative_data_rejection"
)
ST = Path(sys.executable).parent / "st"


def test_every_answer_is_documented_and_no_input_causes_a_500(
    server: Server, keys: dict[str, str], tmp_path: Path
) -> None:
    report = tmp_path / "schemathesis.json"
    command = [
        str(ST), "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {keys['fuzzer']}",
        "--checks", CHECKS, "--phases", "examples,coverage,fuzzing", "--max-examples", "3", "--seed", "2026",
        "--generation-database", "none", "--workers", "1", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300, cwd=tmp_path)
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]
    operations = summary["operations"]
    print(f"\nschemathesis: {cases['generated']} cases over {operations['tested']} operations "
          f"in {summary['running_time']:.0f} s")
    assert run.returncode == 0 and summary["exit_code"] == 0, run.stdout[-6000:]
    assert cases["with_failures"] == 0 and cases["errored"] == 0
    assert cases["generated"] >= 300
    published = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert operations["tested"] == sum(len(methods) for methods in published.values())
