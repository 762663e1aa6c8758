"""One real server for the service tests that run the built-in default policy, on each backend.

Starting a server loads the models in each worker, and the CLI that makes tenants and keys
is a process of its own: both are slow on two shared cores, so the flow, bad-input and
fuzzing modules share one server (two workers) and the tenants they need are all made
while it loads. Each module works in collections of its own. The server runs twice per
session, once on the embedded SQLite catalog and once in server mode on a PostgreSQL
database of its own (pytest runs every test of one before starting the other), so every
test that uses it runs on both backends. The modules that start special servers of their
own (test_moratorium.py with the example policy, test_abuse.py, the console's browser
tests, ...) run them on SQLite; test_two_hosts.py runs two hosts on one PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.service.server import Server, running_server

TENANTS = (
    ("newsroom", "commercial", "photo_library", "operator"),  # test_operator_flow
    ("watchdog", "research", "research", "oversight"),  # reads the whole trail
    ("leaver", "commercial", "photo_library", "operator"),
    ("intake", "nonprofit", "photo_library", "operator"),  # test_bad_input
    ("fuzzer", "commercial", "photo_library", "operator,auditor"),  # test_openapi_fuzz
)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           model_cache: Path) -> Iterator[Server]:
    """`facegate serve --workers 2` on the default policy, rate limits off (see test_moratorium,
    test_abuse): on SQLite, then in server mode on a database of its own."""
    database_url = None
    if request.param == "postgresql":
        make_database: Callable[..., str] = request.getfixturevalue("postgres_url_factory")
        database_url = make_database()
    home = tmp_path_factory.mktemp(f"service-{request.param}")
    with running_server(home, model_cache, workers=2, tenants=TENANTS, database_url=database_url,
                        settings={"FACEGATE_RATE_LIMIT_PER_MINUTE": "0",
                                  "FACEGATE_UNAUTHENTICATED_PER_MINUTE": "0"}) as running:
        yield running


@pytest.fixture(scope="session")
def keys(server: Server) -> dict[str, str]:
    return server.keys
