"""Opening the catalog database: one declarative base, one engine per installation.

Two backends hold the same tables. Embedded (the default): one SQLite file in the data
directory, in WAL mode so that readers never block the writer and a crash mid-write leaves
the last committed state; foreign keys are enforced; a busy timeout lets several processes
share the file. Server mode (`FACEGATE_DATABASE_URL=postgresql://...`): PostgreSQL with
pgvector holds everything, so several service hosts share one installation.

Both backends give the code above one promise: transactions never interleave. SQLite keeps
it with BEGIN IMMEDIATE; PostgreSQL with a transaction-scoped advisory lock taken as each
transaction begins, held until it commits or rolls back, in the database and not in any
process, so writers on different hosts queue exactly as processes on one host do. The
audit chain's "previous hash" read, face row ids and change numbers handed out in commit
order all rest on it.
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError


class Base(DeclarativeBase):
    """Every table of the catalog, the governance records and the audit log."""


CATALOG_FILE = "catalog.sqlite3"


# pg_advisory_xact_lock key that serialises facegate's transactions ("facegate" as bytes).
TRANSACTION_LOCK = int.from_bytes(b"facegate", "big")
LOCK_TIMEOUT_MS = 30_000  # like SQLite's busy timeout: a stuck writer is an error, not a hang


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / CATALOG_FILE}"


def server_url(database_url: str) -> str:
    """The SQLAlchemy URL of a `postgresql://` database URL (psycopg 3 driver), or
    INVALID_SETTINGS naming what is wrong; the URL itself is never echoed (it may hold a
    password)."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise FacegateError(
            ErrorCode.INVALID_SETTINGS, "FACEGATE_DATABASE_URL is not a database URL (postgresql://user:pass@host:port/db)",
            setting="database_url",
        ) from None
    if url.get_backend_name() != "postgresql" or url.get_driver_name() not in ("psycopg", "psycopg2", "postgresql"):
        raise FacegateError(
            ErrorCode.INVALID_SETTINGS,
            f"FACEGATE_DATABASE_URL must be a postgresql:// URL, not {url.drivername}://",
            setting="database_url",
        )
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def is_server(bind: Engine | Connection | Session) -> bool:
    """True for server mode (PostgreSQL), False for the embedded SQLite catalog."""
    return bind.get_bind().dialect.name == "postgresql" if isinstance(bind, Session) else bind.dialect.name == "postgresql"


def upsert(bind: Connection | Session, table: Table) -> Any:
    """INSERT ... ON CONFLICT for the bind's dialect (both backends spell it alike)."""
    return (postgresql.insert if is_server(bind) else sqlite.insert)(table)


def create_private_catalog(data_dir: Path) -> None:
    """The data directory (0700) and an empty catalog file (0600) if they do not exist yet.

    Templates are biometric data: other users of the machine must not read them. SQLite
    creates its -wal and -shm files with the database file's mode, so they are private too.
    A directory that already exists is made private when its catalog is created in it.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(data_dir / CATALOG_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    data_dir.chmod(0o700)


def open_engine(url: str) -> Engine:
    """An engine that keeps the module's promise on either backend: the pragmas that make
    SQLite safe for concurrent, crash-prone use, or PostgreSQL sessions in UTC whose
    transactions each begin by taking facegate's advisory lock."""
    if url.startswith("postgresql"):
        engine = create_engine(
            url, future=True, pool_pre_ping=True,
            connect_args={"options": f"-c timezone=UTC -c lock_timeout={LOCK_TIMEOUT_MS}",
                          "application_name": "facegate"},
        )

        @event.listens_for(engine, "begin")
        def _serialise(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({TRANSACTION_LOCK})")

        return engine
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy manage transactions itself (pysqlite's own BEGIN handling
            # defers BEGIN past SELECTs, which breaks "BEGIN IMMEDIATE" below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # type: ignore[no-untyped-def]
            # Take the write lock at the start: two writers never interleave, and the
            # audit chain's "previous hash" read is always the true previous entry.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def reachable(engine: Engine) -> None:
    """Connect once, so that an unreachable server is DATABASE_UNAVAILABLE naming where it
    was looked for (never the password), not a driver traceback at the first operation."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "no answer"
        raise FacegateError(
            ErrorCode.DATABASE_UNAVAILABLE, f"the database {where} cannot be reached: {reason}", setting="database_url"
        ) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)
