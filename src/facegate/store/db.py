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
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DataError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError


class Base(DeclarativeBase):
    """Every table of the catalog, the governance records and the audit log."""


CATALOG_FILE = "catalog.sqlite3"


# pg_advisory_xact_lock key that serialises facegate's transactions ("facegate" as bytes).
TRANSACTION_LOCK = int.from_bytes(b"facegate", "big")
# Execution option of a connection whose transactions only read (searches): on PostgreSQL
# they run READ ONLY without the lock, so searches through many hosts run side by side.
READ_ONLY = "facegate_read_only"
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


# libpq takes a password in the URL's query too (`?password=...`, `?sslpassword=...`).
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def shown_url(url: str | URL) -> str:
    """A database URL as it may be printed (errors, logs, command output): without the
    password, whether it is in the user part or, as libpq also takes it, in the query."""
    parsed = make_url(url) if isinstance(url, str) else url
    hidden = sorted(k for k in parsed.query if k.lower() in SECRET_QUERY_KEYS)
    shown = parsed.difference_update_query(hidden).render_as_string(hide_password=True)
    return shown + ("&" if "?" in shown else "?") + "&".join(f"{k}=***" for k in hidden) if hidden else shown


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
    transactions each begin by taking facegate's advisory lock.

    Its errors name the statement but never its values (`hide_parameters`): they may be a
    template, a key's hash or an audit entry, and an unexpected error is logged whole."""
    if url.startswith("postgresql"):
        engine = create_engine(
            url, future=True, pool_pre_ping=True, hide_parameters=True,
            connect_args={"options": f"-c timezone=UTC -c lock_timeout={LOCK_TIMEOUT_MS}",
                          "application_name": "facegate"},
        )

        @event.listens_for(engine, "begin")
        def _serialise(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get(READ_ONLY):
                # One snapshot for the whole read (a chain verified while others append),
                # read-only as the server enforces, and no lock: readers never queue.
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({TRANSACTION_LOCK})")

        @event.listens_for(engine, "handle_error")
        def _nul(context: ExceptionContext) -> None:
            # PostgreSQL cannot store U+0000 in text (SQLite can): a caller's text holding
            # one is their bad input, not a server fault (it was a 500 with nothing recorded).
            if isinstance(context.sqlalchemy_exception, DataError) and "NUL (0x00)" in str(context.original_exception):
                raise FacegateError(ErrorCode.INVALID_ARGUMENT, "text may not contain the NUL character (U+0000)")

        @event.listens_for(engine, "handle_error")
        def _unavailable(context: ExceptionContext) -> None:
            # A server that stops answering (stopped, restarted, unreachable, a lock not
            # granted in time) is DATABASE_UNAVAILABLE wherever it is met, not a driver
            # traceback: the service answers 503, the CLI one line. A failed pre-ping is
            # left alone: the pool then opens a new connection (after a restart, it works).
            if context.is_pre_ping or not isinstance(context.sqlalchemy_exception, OperationalError):
                return
            connected = context.connection is not None
            if connected and not context.is_disconnect and not _unavailable(context.original_exception):
                return  # another operational error of a statement: its own message, not an outage
            raise database_unavailable(engine, context.original_exception, connected=connected)

        return engine
    engine = create_engine(url, future=True, hide_parameters=True)
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
            # audit chain's "previous hash" read is always the true previous entry. A
            # read-only transaction reads a WAL snapshot instead and never waits for one.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


# SQLSTATEs of a server that is not there for this statement: connection exceptions (08),
# insufficient resources (53, e.g. too many connections), shut down or restarting (57P),
# a lock or statement timeout (55P03, 57014). None: the connection itself failed.
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
_UNAVAILABLE_STATES = ("55P03", "57014")


def _unavailable(exc: BaseException | None) -> bool:
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES


def database_unavailable(engine: Engine, exc: BaseException | None, *, connected: bool = False) -> FacegateError:
    """DATABASE_UNAVAILABLE naming where the database was looked for and the driver's first
    line of why, never the password (the URL is rendered without it, `?password=` included;
    libpq never echoes it)."""
    where = shown_url(engine.url)
    reason = (str(exc).strip().splitlines() or ["no answer"])[0] if exc is not None else "no answer"
    what = "stopped answering" if connected else "cannot be reached"
    return FacegateError(ErrorCode.DATABASE_UNAVAILABLE, f"the database {where} {what}: {reason}", setting="database_url")


def reachable(engine: Engine) -> None:
    """Connect once, so that an unreachable server is DATABASE_UNAVAILABLE naming where it
    was looked for (never the password), not a driver traceback at the first operation."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise database_unavailable(engine, exc.orig) from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)


def read_only_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for transactions that only read and need no serial order (a search turning
    index hits into faces, a whole-chain verification): one snapshot, without the write lock
    (SQLite: a deferred BEGIN on the WAL; PostgreSQL: REPEATABLE READ, READ ONLY, no advisory
    lock), so a long read never holds up writers and readers on many hosts run side by side.
    They must not write: PostgreSQL refuses it, SQLite would take the lock mid-transaction."""
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, future=True)
