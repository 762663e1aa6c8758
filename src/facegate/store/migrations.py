"""Schema migrations with Alembic, for both backends (embedded SQLite, PostgreSQL server).

`migrate(engine)` is the one entry point: the engine calls it when it opens the catalog,
`facegate db migrate` calls it on demand. Revisions live in the package
(`store/alembic/versions/`, one file per step, never edited once released: a change is a
new revision) and run programmatically on the caller's connection, in ONE transaction: a
failing revision leaves the database exactly as it was. Writers are serialised by SQLite's
`BEGIN IMMEDIATE`, and on PostgreSQL by an advisory lock, so two processes starting at once
never both run DDL; the second finds the first one's revision and does nothing.

Revision 0001 creates the ORM schema as it is *now*, so on a new database the later
revisions find their tables and columns already there: every revision is idempotent
(`create_missing_tables`, `add_missing_columns`). Revisions 0001-0012 are the steps 1-12 of
the hand-written runner this replaced; catalogs it migrated record them in `schema_version`,
which `migrate` bridges once (see `_bridge`). tests/store/test_migrations.py checks that a
migrated empty database matches the ORM metadata on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.schema import CreateColumn

from facegate.errors import ErrorCode, FacegateError
from facegate.store import tables  # noqa: F401  (registers catalog tables on Base)
from facegate.store import governance_tables  # noqa: F401  (governance tables, audit log)
from facegate.store import catalog_meta  # noqa: F401  (catalog settings, last good policies)
from facegate.store import console_tables  # noqa: F401  (console sessions)
from facegate.store import video_jobs  # noqa: F401  (video-search jobs)
from facegate.store.db import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic itself is imported only when a database is not at HEAD: every command opens the
# catalog, and the import costs a command ~50 ms it would spend on nothing.
HEAD = "0013"  # the newest revision in store/alembic/versions (tests/store/test_migrations.py checks)

SCRIPT_LOCATION = Path(__file__).with_name("alembic")
LEGACY_TABLE = "schema_version"  # the hand-written runner's record of applied steps
LEGACY_STEPS = 12  # its last step (1-10 released; 11-12 briefly on main): revision 0012
# pg_advisory_xact_lock key held while migrating a PostgreSQL database ("fgmigrat").
MIGRATION_LOCK = 0x66676D6967726174


def create_missing_tables(conn: Connection) -> None:
    """Create the ORM tables a catalog lacks (a step that adds tables; idempotent).

    Revision 0001 creates the ORM schema as it is *now*, so on a new catalog later
    revisions find their tables and columns already there: every later revision must be
    idempotent, as this is.
    """
    Base.metadata.create_all(conn, checkfirst=True)


def add_missing_columns(conn: Connection, table: str) -> list[str]:
    """Add the ORM columns that `table` lacks in the database (idempotent); their names.

    Only nullable columns or columns with a server default can be added to a table that
    holds rows: declare new columns that way, then backfill in the same revision.
    """
    present = {c["name"] for c in inspect(conn).get_columns(table)}
    added = []
    for column in Base.metadata.tables[table].columns:
        if column.name in present:
            continue
        ddl = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {ddl}"))
        added.append(column.name)
    return added


@dataclass(frozen=True, slots=True)
class Migrated:
    """What `migrate` found and left: revisions are Alembic's ("0001" ... head)."""

    backend: str  # "sqlite" | "postgresql"
    before: str | None  # None: an empty database
    after: str

    def to_dict(self) -> dict[str, str | None]:
        return {"backend": self.backend, "from": self.before, "to": self.after}


@cache
def script_directory() -> ScriptDirectory:
    """The package's revisions (read once per process)."""
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - see HEAD

    return ScriptDirectory.from_config(alembic_config())


@cache
def known_revisions() -> frozenset[str]:
    return frozenset(r.revision for r in script_directory().walk_revisions())


def alembic_config(conn: Connection | None = None) -> Config:
    """An Alembic configuration without an ini file; env.py migrates `conn`."""
    from alembic.config import Config  # noqa: PLC0415 - see HEAD

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if conn is not None:
        config.attributes["connection"] = conn
    return config


def head() -> str:
    found = script_directory().get_current_head()
    assert found is not None
    return found


def legacy_revision(conn: Connection) -> str | None:
    """The revision a catalog of the hand-written runner is at: the highest N such that
    steps 1..N are all recorded in `schema_version` (None: no such table, or no step 1).

    Steps were reserved per line of work and could land out of order (a catalog may record
    8 before 7): every step above a gap runs again, which is harmless as all are idempotent."""
    if not inspect(conn).has_table(LEGACY_TABLE):
        return None
    recorded = set(conn.execute(text(f"SELECT version FROM {LEGACY_TABLE}")).scalars())
    n = 0
    while n + 1 in recorded and n < LEGACY_STEPS:
        n += 1
    return f"{n:04d}" if n else None


def _bridge(conn: Connection) -> str | None:
    """Hand a catalog of the old runner to Alembic: stamp the revision its `schema_version`
    implies, then drop that table. It is dropped rather than kept frozen beside
    `alembic_version` because two records of the schema's state that disagree (it would never
    learn of later revisions) invite a reader, or an older facegate, to believe the wrong one;
    an older facegate that opens the catalog again finds no `schema_version` and re-runs its
    idempotent steps, which is harmless. The history of the steps is in git, not in the catalog."""
    revision = legacy_revision(conn)
    if revision is not None:
        from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - see HEAD

        MigrationContext.configure(conn).stamp(script_directory(), revision)
    if inspect(conn).has_table(LEGACY_TABLE):
        conn.execute(text(f"DROP TABLE {LEGACY_TABLE}"))
    return revision


def current_revision(conn: Connection) -> str | None:
    """The revision Alembic recorded (None: none yet), read without importing Alembic."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


def migrate(engine: Engine) -> Migrated:
    """Bring the database to the head revision, in one transaction; what it was and is.

    On PostgreSQL the transaction first takes an advisory lock, so that of two processes
    migrating one database at once the second waits, then finds nothing left to do."""
    with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, the file's write lock
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        before = current_revision(conn)
        if before == HEAD:
            return Migrated(engine.dialect.name, before, before)
        from alembic import command  # noqa: PLC0415 - see HEAD
        import pgvector.sqlalchemy  # noqa: F401, PLC0415 - reflection then knows faces.embedding's type

        if before is None:
            before = _bridge(conn)
        elif before not in known_revisions():  # a newer release migrated it (a rolling upgrade)
            raise FacegateError(
                ErrorCode.INVALID_SETTINGS,
                f"the database is at schema revision {before}, newer than this facegate knows (its last is "
                f"{head()}): a newer release migrated it; run that release here too. Nothing was written",
                revision=before,
            )
        if before != head():
            command.upgrade(alembic_config(conn), "head")  # env.py runs it on `conn`
        after = current_revision(conn)
    assert after == head(), after
    return Migrated(engine.dialect.name, before, after)
