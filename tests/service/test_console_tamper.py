"""A tampered audit log, seen in the console: the chain state names the first bad entry.

Its own server (the browser tests need an intact chain): an auditor signs in over HTTP,
one stored entry is edited behind facegate's back, and the audit trail page reports the
chain broken at that entry and verified only up to the one before.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("console-tamper")
    tenants = (("board", "government", "", "auditor,oversight"), ("desk", "commercial", "photo_library", "operator"))
    with running_server(home, model_cache, tenants=tenants) as running:
        yield running


def test_an_edited_entry_shows_as_a_broken_chain(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as web:
        form = web.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        assert web.post("/console/login", data={"key": server.keys["board"], "csrf": csrf}).status_code == 303
        intact = web.get("/console/audit")
        assert "Verified: entries 1 to" in intact.text
        with sqlite3.connect(server.home / "catalog.sqlite3") as db:
            db.execute("UPDATE audit_log SET tenant = 'someone-else' WHERE seq = 2")
        broken = web.get("/console/audit")
        assert broken.status_code == 200
        state = re.search(r'id="chain-state"[^>]*>(.*?)</p>', broken.text, re.S).group(1)
        assert "Broken: verified up to entry 1" in state and "entry 2 was edited" in state
        assert "someone-else" in web.get("/console/audit/2").text  # shown as stored, for the record
