"""Schema migrations: an ordered list of steps, each applied once, in its own transaction.

A tested equivalent of Alembic for an embedded database: `schema_version` records the
applied steps; `migrate` brings any catalog (new or old) to the current schema. Steps are
never edited once released; a change is a new step. tests/store/test_migrations.py checks
that a migrated empty database matches the ORM metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.schema import CreateColumn

from facegate.store import tables  # noqa: F401  (registers catalog tables on Base)
from facegate.store import governance_tables  # noqa: F401  (governance tables, audit log)
from facegate.store import catalog_meta  # noqa: F401  (catalog settings, last good policies)
from facegate.store.db import Base
from facegate.store.template_key import record_from_templates


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def create_missing_tables(conn: Connection) -> None:
    """Create the ORM tables a catalog lacks (a step that adds tables; idempotent).

    Step 1 creates the ORM schema as it is *now*, so on a new catalog later steps find their
    tables and columns already there: every later step must be idempotent, as this is.
    """
    Base.metadata.create_all(conn, checkfirst=True)


def add_missing_columns(conn: Connection, table: str) -> list[str]:
    """Add the ORM columns that `table` lacks in the database (idempotent); their names.

    Only nullable columns or columns with a server default can be added to a table that
    holds rows: declare new columns that way, then backfill in the same step.
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


# Step numbers are reserved per line of work so that parallel branches never collide:
# 2 tenant boundaries, 3 audit integrity and retention, 4 hardening (template key, policy),
# 5 newcomer fixes, 6 fair score normalization, 7 Rekognition protocol, 8 video.
# Steps are applied in version order; a gap is harmless.
def _template_key_and_policies(conn: Connection) -> None:
    """Step 4: catalog settings and kept policies; an existing catalog's template key
    fingerprint is read from its templates (store/template_key.py)."""
    create_missing_tables(conn)
    record_from_templates(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _initial),
    Migration(4, "template key fingerprint, last good policies", _template_key_and_policies),
)


def current_version(conn: Connection) -> int:
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    )
    return int(conn.execute(text("SELECT COALESCE(MAX(version), 0) FROM schema_version")).scalar_one())


def migrate(engine: Engine) -> int:
    """Apply every pending step; returns the schema version now in force."""
    version = 0
    for step in MIGRATIONS:
        with engine.begin() as conn:
            version = current_version(conn)
            if step.version <= version:
                continue
            step.apply(conn)
            conn.execute(
                text("INSERT INTO schema_version VALUES (:v, :d, :t)"),
                {"v": step.version, "d": step.description, "t": datetime.now(UTC).isoformat()},
            )
            version = step.version
    return version
