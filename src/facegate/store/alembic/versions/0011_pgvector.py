"""Server mode on PostgreSQL: the pgvector extension, `faces.embedding` and its HNSW index.

A no-op on SQLite (its vectors live in the data directory's index files). On PostgreSQL:
`CREATE EXTENSION IF NOT EXISTS vector` where the role may; where it may not (pgvector is
not a trusted extension: creating it takes a superuser), or where pgvector >= 0.8 is not
installed on the server, a DATABASE_EXTENSION_MISSING error says exactly what a database
administrator must run, and nothing is written (migrations run in one transaction). Then
the embedding column (no typmod: collections of any dimension share it; not in the ORM
metadata; NULL where templates are sealed under a template key) and the HNSW index of
128-d embeddings, partial so that other dimensions are searched exactly.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from facegate.errors import ErrorCode, FacegateError

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PGVECTOR_MIN = (0, 8)  # hnsw.iterative_scan (filtered searches that still fill k)
EMBEDDING_DDL = "ALTER TABLE faces ADD COLUMN IF NOT EXISTS embedding vector"
HNSW_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_faces_embedding_hnsw_128 ON faces "
    "USING hnsw ((embedding::vector(128)) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
    "WHERE vector_dims(embedding) = 128"
)


def _version(text_: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text_.split(".") if part.isdigit())


def _missing(conn: Connection, why: str, then: str = "") -> FacegateError:
    database, role = conn.execute(text("SELECT current_database(), current_user")).one()
    return FacegateError(
        ErrorCode.DATABASE_EXTENSION_MISSING,
        f"{why}: a database administrator must run `CREATE EXTENSION vector;` in database "
        f"{database!r} as a superuser (pgvector >= {'.'.join(map(str, PGVECTOR_MIN))} installed on the "
        f"server){then}, then run `facegate db migrate` again; nothing was written",
        database=database, role=role, sql="CREATE EXTENSION vector;",
    )


def ensure_vector_extension(conn: Connection) -> str:
    """The `vector` extension of this database, created if the role may; its version."""
    installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    if installed is None:
        available = conn.execute(
            text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        ).scalar()
        if available is None or _version(available) < PGVECTOR_MIN:
            found = "is not installed" if available is None else f"is version {available}"
            raise _missing(conn, f"pgvector {found} on this PostgreSQL server", " after installing pgvector")
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except DBAPIError as exc:
            role = conn.execute(text("SELECT current_user")).scalar()
            diag = getattr(exc.orig, "diag", None)
            reason = getattr(diag, "message_primary", None) or str(exc.orig).strip()
            raise _missing(conn, f"the pgvector extension is not enabled and role {role!r} may not create it "
                                 f"({reason})") from None
        installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar_one()
    if _version(installed) < PGVECTOR_MIN:
        database = conn.execute(text("SELECT current_database()")).scalar()
        raise FacegateError(
            ErrorCode.DATABASE_EXTENSION_MISSING,
            f"pgvector {installed} is enabled in database {database!r}, facegate needs >= "
            f"{'.'.join(map(str, PGVECTOR_MIN))}: a database administrator must install a newer pgvector on "
            "the server and run `ALTER EXTENSION vector UPDATE;` in that database, then run "
            "`facegate db migrate` again; nothing was written",
            database=database, sql="ALTER EXTENSION vector UPDATE;",
        )
    return installed


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    ensure_vector_extension(conn)
    conn.execute(text(EMBEDDING_DDL))
    conn.execute(text(HNSW_DDL))


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
