"""Attacks that need a server of their own (the browser tests need an intact chain and no
rate limit): a tampered audit log, seen in the console, names the first bad entry; a
flood of page requests runs into the key's rate limit like API calls do.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.service.server import Server, running_server

RATE = 8  # requests a minute per key (and sign-in attempts per address): above what each test sends


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("console-tamper")
    tenants = (("board", "government", "", "auditor,oversight"), ("desk", "commercial", "photo_library", "operator"))
    limit = {"FACEGATE_RATE_LIMIT_PER_MINUTE": str(RATE)}
    with running_server(home, model_cache, tenants=tenants, settings=limit) as running:
        yield running


def signed_in(server: Server, tenant: str) -> httpx.Client:
    web = httpx.Client(base_url=server.url, timeout=60)
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/console/login").text)
    assert csrf is not None
    assert web.post("/console/login", data={"key": server.keys[tenant], "csrf": csrf.group(1)}).status_code == 303
    return web


def test_an_edited_entry_shows_as_a_broken_chain(server: Server) -> None:
    with closing(signed_in(server, "board")) as web:
        intact = web.get("/console/audit")
        assert "Verified: entries 1 to" in intact.text
        with sqlite3.connect(server.home / "catalog.sqlite3") as db:
            db.execute("UPDATE audit_log SET tenant = 'someone-else' WHERE seq = 2")
        broken = web.get("/console/audit")
        assert broken.status_code == 200
        state = re.search(r'id="chain-state"[^>]*>(.*?)</p>', broken.text, re.S).group(1)
        assert "Broken: verified up to entry 1" in state and "entry 2 was edited" in state
        assert "someone-else" in web.get("/console/audit/2").text  # shown as stored, for the record


def test_a_flood_of_pages_runs_into_the_keys_rate_limit(server: Server) -> None:
    with closing(signed_in(server, "desk")) as web:
        answers = [web.get("/console/") for _ in range(3 * RATE)]
        assert answers[0].status_code == 200
        limited = [a for a in answers if a.status_code == 429]
        assert limited and "RATE_LIMITED" in limited[0].text and int(limited[0].headers["retry-after"]) >= 1
