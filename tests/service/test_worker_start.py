"""What a worker does when it starts into trouble: a broken policy file (it decides with the
last good policy kept in the catalog, /readyz says "stale") and a template key that is not
the catalog's (it serves nothing, /readyz says why, the catalog stays as it was)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode
from facegate.service.app import create_app
from facegate.settings import Settings
from tests.service.server import EXAMPLE_POLICY, FACEGATE, _env, free_port, running_server

TENANT = ("ngo", "nonprofit", "victim_identification", "operator")


def test_a_worker_that_starts_while_the_policy_is_broken_keeps_the_last_good_one(
    tmp_path: Path, model_cache: Path
) -> None:
    home, policy = tmp_path / "home", tmp_path / "policy.toml"
    shutil.copy(EXAMPLE_POLICY, policy)
    with running_server(home, model_cache, policy=policy, tenants=(TENANT,)) as first:
        key = first.keys["ngo"]
        ready = httpx.get(f"{first.url}/readyz").json()
        good = ready["checks"]["policy"].removeprefix("ok: ")
        # Both lines' readiness news side by side: the template key and policy checks
        # (hardening) and whether checkpoints are signed (audit; informative only).
        assert ready["checks"]["template_key"] == "ok" and ready["status"] == "ready"
        assert ready["audit_signing"].startswith("not configured")
        assert good.startswith("sha256:")
        policy.write_text("[purposes.victim_identification\nbroken = ")  # a typo while it runs
        answer = httpx.get(f"{first.url}/readyz")
        assert answer.status_code == 200 and answer.json()["checks"]["policy"].startswith("stale: POLICY_INVALID")
    with running_server(home, model_cache, policy=policy) as second:  # (re)started on the broken file
        answer = httpx.get(f"{second.url}/readyz")
        assert answer.status_code == 200
        assert answer.json()["checks"]["policy"].startswith("stale: POLICY_INVALID at line")
        assert answer.json()["checks"]["policy"].endswith(f"in force {good}")
        listed = second.client(key).list_collections()
        assert listed["decision"]["policy_version"] == good
        assert second.last_entry()["policy_version"] == good
        shutil.copy(EXAMPLE_POLICY, policy)
        assert httpx.get(f"{second.url}/readyz").json()["checks"]["policy"] == f"ok: {good}"
    assert "POLICY_INVALID" not in {str(e) for e in _codes(home)}


def _codes(home: Path) -> list[object]:
    with sqlite3.connect(home / "catalog.sqlite3") as db:
        return [code for (code,) in db.execute("SELECT code FROM audit_log")]


def test_a_worker_with_the_wrong_template_key_serves_nothing_and_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home, None, {"FACEGATE_TEMPLATE_KEY": base64.b64encode(os.urandom(32)).decode()})
    made = subprocess.run([str(FACEGATE), "collection", "create", "people"], env=env, capture_output=True, timeout=120)
    assert made.returncode == 0, made.stderr
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.glob("catalog.sqlite3*")}
    port = free_port()
    wrong = _env(home, None, {"FACEGATE_TEMPLATE_KEY": base64.b64encode(os.urandom(32)).decode()})
    worker = subprocess.Popen(  # as a supervisor would start one worker, without `facegate serve`
        [sys.executable, "-m", "uvicorn", "facegate.service.app:from_environment", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        env=wrong, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or worker.poll() is not None:
                    pytest.fail("the worker did not answer")
                time.sleep(0.2)
        assert ready.status_code == 503
        assert ready.json()["checks"]["template_key"].startswith("TEMPLATE_KEY_MISMATCH: ")
        assert "audit_signing" in ready.json()
        aws = httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", headers={
            "X-Amz-Target": "RekognitionService.ListCollections", "Content-Type": "application/x-amz-json-1.1",
        })  # the Rekognition door is closed alike, before any signature is checked or recorded
        assert (aws.status_code, aws.json()["__type"]) == (500, "InternalServerError")
        assert "TEMPLATE_KEY_MISMATCH" in aws.headers["x-facegate-decision"]
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/collections", headers={"Authorization": "Bearer fg_x_y"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (500, "TEMPLATE_KEY_MISMATCH")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.glob("catalog.sqlite3*")}
    assert after == before


def _background_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name in ("facegate-housekeeping", "facegate-video-jobs")}


def test_nothing_that_writes_starts_beside_a_worker_with_the_wrong_template_key(tmp_path: Path, model_cache: Path) -> None:
    """The template key check comes before the audit line's housekeeping (retention,
    checkpoints) and the video job runner: a closed worker starts neither, so neither can
    erase faces, redact entries or resume a job under the wrong key. With the right key
    both run. (The app's own lifespan, in this process, so the threads can be counted.)"""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    key = base64.b64encode(os.urandom(32)).decode()
    schedule = {"retention_interval_seconds": 3600, "checkpoint_interval_seconds": 0}
    first = Facegate(Settings(home=home, template_key=key))
    first.db  # noqa: B018 - creates the catalog, which records its key
    first.close()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.glob("catalog.sqlite3*")}

    async def started(settings: Settings) -> tuple[set[str], object, bool]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            return _background_threads(), app.state.engine_problem, hasattr(app.state, "video_jobs")

    assert _background_threads() == set()
    threads, problem, runner = asyncio.run(
        started(Settings(home=home, template_key=base64.b64encode(os.urandom(32)).decode(), **schedule))
    )
    assert (threads, runner) == (set(), False)
    assert getattr(problem, "code", None) is ErrorCode.TEMPLATE_KEY_MISMATCH
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in home.glob("catalog.sqlite3*")}
    assert after == before
    threads, problem, runner = asyncio.run(started(Settings(home=home, template_key=key, **schedule)))
    assert (threads, problem, runner) == ({"facegate-housekeeping", "facegate-video-jobs"}, None, True)
