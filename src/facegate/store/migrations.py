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
from facegate.store import console_tables  # noqa: F401  (console sessions)
from facegate.store import video_jobs  # noqa: F401  (video-search jobs)
from facegate.store.db import Base
from facegate.store.server_index import install
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
# 5 newcomer fixes, 6 fair score normalization, 7 Rekognition protocol, 8 video,
# 9 oversight console, 10 face thumbnails (console review).
# Steps are applied in version order; a gap is harmless.
def _tenant_boundaries(conn: Connection) -> None:
    """Collections get an owner (existing ones: the local operator) and grants; keys name
    a holder, audit entries record it; review items keep what was searched and by whom."""
    create_missing_tables(conn)
    for table in ("collections", "api_keys", "audit_log", "reviews"):
        add_missing_columns(conn, table)
    conn.execute(text("UPDATE collections SET owner = 'local' WHERE owner IS NULL"))


def _audit_integrity(conn: Connection) -> None:
    """Entry format 2 (redactable digest), signed checkpoints, collection retention."""
    create_missing_tables(conn)
    add_missing_columns(conn, "audit_log")
    add_missing_columns(conn, "collections")


def _template_key_and_policies(conn: Connection) -> None:
    """Step 4: catalog settings and kept policies; an existing catalog's template key
    fingerprint is read from its templates (store/template_key.py)."""
    create_missing_tables(conn)
    record_from_templates(conn)


def _audit_space(conn: Connection) -> None:
    """Step 5: recorded bias audits name the template space and detector they measured.

    Older rows keep NULL: they named no detector, so they vouch for no template space and a
    purpose that requires an audit needs a new one (the safe reading of missing evidence)."""
    add_missing_columns(conn, "bias_audits")


def _score_offsets(conn: Connection) -> None:
    """Step 6: the per-face fair score normalization offset (nullable). Faces enrolled
    before have none; search computes theirs from the template (no backfill needed here,
    which could not decrypt keyed templates anyway)."""
    add_missing_columns(conn, "faces")


def _aws_credentials(conn: Connection) -> None:
    """Step 7: keys bound to a purpose and case, their AWS credentials, and the size of
    the image each face came from (Rekognition's boxes are fractions of it)."""
    add_missing_columns(conn, "api_keys")
    add_missing_columns(conn, "faces")
    for index in Base.metadata.tables["api_keys"].indexes:
        index.create(conn, checkfirst=True)


def _video_jobs(conn: Connection) -> None:
    """The jobs table of asynchronous video searches, with the key holder each job records."""
    create_missing_tables(conn)
    add_missing_columns(conn, "video_jobs")


def _thumbnails(conn: Connection) -> None:
    """Step 10: opt-in face thumbnails: the collection's choice (off for existing ones), the
    face's sealed crop, and the probe's with a lead."""
    for table in ("collections", "faces", "reviews"):
        add_missing_columns(conn, table)


def _server_mode(conn: Connection) -> None:
    """Step 11: on PostgreSQL, pgvector and the searchable copy of templates; nothing on SQLite."""
    if conn.dialect.name == "postgresql":
        install(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _initial),
    Migration(2, "tenant boundaries: collection owners and grants, key holders, review workflow", _tenant_boundaries),
    Migration(3, "audit entry format 2, checkpoints, collection retention", _audit_integrity),
    Migration(4, "template key fingerprint, last good policies", _template_key_and_policies),
    Migration(5, "bias audits keyed on template space and detector", _audit_space),
    Migration(6, "faces.score_offset for fair score normalization", _score_offsets),
    Migration(7, "purpose-bound keys, AWS credentials, face image size", _aws_credentials),
    Migration(8, "video-search jobs", _video_jobs),
    Migration(9, "console sessions", create_missing_tables),
    Migration(10, "face thumbnails kept by collections that opt in", _thumbnails),
    Migration(11, "server mode: pgvector embeddings and their HNSW index", _server_mode),
)


def applied_versions(conn: Connection) -> set[int]:
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    )
    return set(conn.execute(text("SELECT version FROM schema_version")).scalars())


def migrate(engine: Engine) -> int:
    """Apply every step not yet recorded, in version order; returns the highest version.

    Steps are compared one by one, not against the highest recorded version: step numbers
    are reserved per line of work, so a catalog may hold step 8 before step 7 exists.
    """
    for step in MIGRATIONS:
        with engine.begin() as conn:
            if step.version in applied_versions(conn):
                continue
            step.apply(conn)
            conn.execute(
                text("INSERT INTO schema_version VALUES (:v, :d, :t)"),
                {"v": step.version, "d": step.description, "t": datetime.now(UTC).isoformat()},
            )
    with engine.begin() as conn:
        return max(applied_versions(conn), default=0)
