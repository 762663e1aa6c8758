"""Server mode: pgvector embeddings and their HNSW index (PostgreSQL only; nothing on SQLite).

On PostgreSQL: `CREATE EXTENSION IF NOT EXISTS vector` where the role may (else
DATABASE_EXTENSION_MISSING says what a database administrator must run, and nothing is
written), `faces.embedding vector` (no typmod, nullable, not in the ORM metadata; NULL
where templates are sealed under a template key) and the partial HNSW index of 128-d
embeddings (store/server_index.py `install`). The embedded catalog keeps its vectors in
index files beside it, so its schema is untouched. Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.server_index import install

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        install(conn)


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
