"""The tests' view of an installation from outside, whichever backend holds it: plain SQL on
its catalog (what is stored, and tampering as someone with database access would do it),
the environment that points a `facegate` command at the same installation, and two
autouse fixtures a suite's conftest may import: a user cache directory of each test's own,
and server mode's file contract (with FACEGATE_DATABASE_URL set, nothing but model caches
is written to FACEGATE_HOME, issue 14) checked as each server-mode test ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from facegate.engine import Facegate
from facegate.settings import Settings


def rows(engine: Facegate, sql: str, **params: Any) -> list[tuple]:
    """The rows of one statement (named parameters, `:name`), read in a transaction of its own."""
    with engine.db.begin() as conn:
        return [tuple(row) for row in conn.execute(text(sql), params)]


def execute(engine: Facegate, *statements: tuple[str, dict[str, Any]] | str) -> None:
    """Statements committed together, as someone with write access to the database would."""
    with engine.db.begin() as conn:
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            conn.execute(text(sql), params)


def environment(settings: Settings) -> dict[str, str]:
    """FACEGATE_* variables that make a `facegate` command (CliRunner or a child process) open
    the installation of `settings`: its data directory and, in server mode, its database
    and credentials key file."""
    env = {"FACEGATE_HOME": str(settings.home)}
    if settings.database_url is not None:
        env["FACEGATE_DATABASE_URL"] = settings.database_url
    if settings.credentials_key_file is not None:
        env["FACEGATE_CREDENTIALS_KEY_FILE"] = str(settings.credentials_key_file)
    return env


def count_faces(settings: Settings) -> int:
    """Committed faces, read without the engine (and without taking its lock): by a reader
    beside a writer, as another process or host would; 0 before the catalog exists."""
    if settings.database_url is None:
        import sqlite3

        try:
            con = sqlite3.connect(f"file:{settings.home / 'catalog.sqlite3'}?mode=ro", uri=True, timeout=5)
            try:
                return int(con.execute("SELECT COUNT(*) FROM faces").fetchone()[0])
            finally:
                con.close()
        except sqlite3.Error:
            return 0
    with psycopg.connect(settings.database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as con:
        return int(con.execute("SELECT count(*) FROM faces").fetchone()[0])


@pytest.fixture(autouse=True)
def host_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's user cache directory (XDG_CACHE_HOME: server mode's evaluation templates),
    as empty as a fresh data directory, so that no test reads another's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "host-cache"))
    return tmp_path / "host-cache"


@pytest.fixture(autouse=True)
def server_mode_writes_no_files(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test on `settings` in server mode leaves nothing but the `models` cache entry in home."""
    settings = request.getfixturevalue("settings") if "settings" in request.fixturenames else None
    yield
    if settings is not None and settings.server_mode:
        left = sorted(p.name for p in settings.home.iterdir())
        assert left == ["models"], f"server mode wrote to FACEGATE_HOME: {left}"
