"""The catalog as it is at rest, read and written around facegate, on either backend.

What a stolen disk, a backup or an intruder with database access holds: on the embedded
backend the files of the data directory, byte for byte; on a server every value of every
row of every table of the database (what a `pg_dump` would write), read over a plain
connection that takes none of facegate's locks and runs none of its code. Tests use it to
check properties "at rest" (keys hashed, templates sealed, nothing written by a refused
process) and to tamper as an intruder would.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, create_engine, text

from facegate.store.db import CATALOG_FILE, server_url, sqlite_url


@dataclass(frozen=True)
class RawCatalog:
    """The catalog of the data directory `home`, or the database at `database_url`."""

    home: Path
    database_url: str | None = None

    @property
    def server(self) -> bool:
        return self.database_url is not None

    @contextmanager
    def _engine(self) -> Iterator[Engine]:
        if self.database_url is None:
            engine = create_engine(sqlite_url(self.home))
        else:  # UTC like facegate's own sessions, so naive times mean what they mean there
            engine = create_engine(server_url(self.database_url), connect_args={"options": "-c timezone=UTC"})
        try:
            yield engine
        finally:
            engine.dispose()

    def rows(self, statement: str, **params: Any) -> Sequence[Row[Any]]:
        """The rows of one query (SQLAlchemy `text`, named `:params`)."""
        with self._engine() as engine, engine.connect() as conn:
            return conn.execute(text(statement), params).all()

    def execute(self, *statements: str | tuple[str, dict[str, Any]]) -> None:
        """Statements (each SQL, or SQL and its parameters) in one committed transaction."""
        with self._engine() as engine, engine.begin() as conn:
            for statement in statements:
                sql, params = (statement, {}) if isinstance(statement, str) else statement
                conn.execute(text(sql), params)

    def tables(self) -> list[str]:
        if not self.server:
            return [r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [r[0] for r in self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name"
        )]

    def dump(self) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """Every table's rows (sorted, so that the physical order does not matter), and on
        a server its columns first (a schema change is a change too)."""
        with self._engine() as engine, engine.connect() as conn:
            found = []
            if self.server:
                columns = conn.execute(text(
                    "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
                )).all()
                found.append(("information_schema.columns", [tuple(c) for c in columns]))
            for table in self.tables():
                rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
                found.append((table, sorted((tuple(r) for r in rows), key=repr)))
            return found

    def stored_bytes(self) -> bytes:
        """Everything at rest. Embedded: the bytes of every file of the data directory
        (engines must be disposed first, so that SQLite has checkpointed its log). Server:
        every value of every row, bytea as its bytes, the rest as text."""
        if not self.server:
            return b"".join(p.read_bytes() for p in sorted(self.home.iterdir()) if p.is_file())
        parts = []
        for _table, rows in self.dump():
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        parts.append(bytes(value))
                    elif value is not None:
                        parts.append(str(value).encode())
        return b"\n".join(parts)

    def digest(self) -> str:
        """Changes whenever anything at rest changes: the catalog file's hash, or a hash of
        the database's schema and rows.

        The file is hashed once every committed page is in it (a WAL checkpoint first):
        otherwise an engine that the test left open, closing whenever it is collected,
        checkpoints the WAL itself and the bytes change with nothing written."""
        if not self.server:
            with closing(sqlite3.connect(self.home / CATALOG_FILE)) as raw:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return hashlib.sha256((self.home / CATALOG_FILE).read_bytes()).hexdigest()
        return hashlib.sha256(repr(self.dump()).encode()).hexdigest()
