"""Operations fixtures: a host cache of each test's own, and server mode's file contract.

With FACEGATE_DATABASE_URL set, nothing but model caches is written to FACEGATE_HOME
(issue 14): every test here that runs in server mode checks, as it ends, that its data
directory holds nothing but the `models` cache entry. Host caches (evaluation templates in
server mode) go to the user cache directory, here one per test, as empty as a fresh home's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def host_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's user cache directory (XDG_CACHE_HOME), so that no test reads another's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "host-cache"))
    return tmp_path / "host-cache"


@pytest.fixture(autouse=True)
def server_mode_writes_no_files(request: pytest.FixtureRequest) -> Iterator[None]:
    settings = request.getfixturevalue("settings") if "settings" in request.fixturenames else None
    yield
    if settings is not None and settings.server_mode:
        left = sorted(p.name for p in settings.home.iterdir())
        assert left == ["models"], f"server mode wrote to FACEGATE_HOME: {left}"
