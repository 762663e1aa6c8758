"""One real server for the service tests that run the built-in default policy.

Starting a server loads the models in each worker, and the CLI that makes tenants and keys
is a process of its own: both are slow on two shared cores, so the flow, bad-input and
fuzzing modules share one server (two workers) and the tenants they need are all made
while it loads. Each module works in collections of its own. test_moratorium.py runs its
own server with the example policy.
"""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    """`facegate serve --workers 2` on the default policy, rate limits off (see test_moratorium,
    test_abuse)."""
    home = tmp_path_factory.mktemp("service")
    with running_server(home, model_cache, workers=2, tenants=TENANTS,
                        settings={"FACEGATE_RATE_LIMIT_PER_MINUTE": "0",
                                  "FACEGATE_UNAUTHENTICATED_PER_MINUTE": "0"}) as running:
        yield running


@pytest.fixture(scope="session")
def keys(server: Server) -> dict[str, str]:
    return server.keys
