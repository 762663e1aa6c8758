"""Catalogs prepared once per test module and backend, that each test changes in a
transaction rolled back afterwards.

Tampering tests need many copies of one audit log. On SQLite a copy is a file copy; on
PostgreSQL a new database per case would cost more than the case itself. Both backends
offer the same cheaper thing instead: one connection, one transaction, in which the test
tampers with raw SQL (as an intruder with write access to the database would, bypassing
facegate entirely), then verifies, appends and exports through facegate's own functions
on that connection, and nothing of it outlives the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facegate.store.db import open_engine, server_url, sqlite_url
from facegate.store.migrations import migrate

T = TypeVar("T")


class Scratch:
    """A catalog inside a transaction that will be rolled back."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.server = conn.dialect.name == "postgresql"
        # facegate's sessions join the test's transaction: their commits are savepoints
        self.sessions: sessionmaker[Session] = sessionmaker(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    def sql(self, *statements: tuple[str, dict[str, Any]] | str) -> None:
        """Raw SQL (SQLAlchemy `text`, named `:params`), as an intruder would write it."""
        for statement in statements:
            sql, params = (statement, {}) if isinstance(statement, str) else statement
            self.conn.execute(text(sql), params)

    def try_sql(self, sql: str, params: dict[str, Any]) -> bool:
        """One statement that the database may refuse (NOT NULL, or a value of the wrong type
        for a PostgreSQL column): False, with nothing of it applied, if it did."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(text(sql), params)
        except (IntegrityError, DataError):
            return False
        return True

    def value(self, column: str, seq: int) -> Any:
        return self.conn.execute(text(f"SELECT {column} FROM audit_log WHERE seq = :seq"), {"seq": seq}).scalar_one()


class Prepared(Generic[T]):
    """`fill(engine)` run once per backend on a fresh migrated catalog; what it returns is
    handed to every test with its scratch copy."""

    def __init__(self, fill: Callable[[Engine], T], request: pytest.FixtureRequest, where: Path) -> None:
        self._fill, self._request, self._where = fill, request, where
        self._made: dict[str, tuple[Engine, T]] = {}

    def _prepared(self, backend: str) -> tuple[Engine, T]:
        if backend not in self._made:
            if backend == "sqlite":
                url = sqlite_url(self._where)
            else:
                url = server_url(self._request.getfixturevalue("postgres_url_factory")())
            engine = open_engine(url)
            migrate(engine)
            self._made[backend] = (engine, self._fill(engine))
        return self._made[backend]

    @contextmanager
    def scratch(self, backend: str) -> Iterator[tuple[Scratch, T]]:
        engine, filled = self._prepared(backend)
        with engine.connect() as conn:
            outer = conn.begin()
            try:
                yield Scratch(conn), filled
            finally:
                outer.rollback()

    def dispose(self) -> None:
        for engine, _ in self._made.values():
            engine.dispose()
