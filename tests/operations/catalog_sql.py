"""Plain SQL on an engine's catalog, whichever backend holds it (the tests' view from outside:
what is stored, and tampering as an attacker with database access would do it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from facegate.engine import Facegate


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
