"""Opening the catalog database: one declarative base, one engine per data directory.

SQLite runs in WAL mode so that readers never block the writer and a crash mid-write
leaves the last committed state; foreign keys are enforced; a busy timeout lets several
processes share the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Every table of the catalog, the governance records and the audit log."""


CATALOG_FILE = "catalog.sqlite3"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / CATALOG_FILE}"


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
    """An engine with the pragmas that make SQLite safe for concurrent, crash-prone use."""
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


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, future=True)
