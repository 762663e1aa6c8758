"""The tests' view of an installation from outside, whichever backend holds it: plain SQL on
its catalog (what is stored, and tampering as someone with database access would do it),
and the environment that points a `facegate` command at the same installation."""

from __future__ import annotations

from typing import Any

import psycopg
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
