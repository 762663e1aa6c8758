"""Tenant boundaries: collection owners and grants, key holders, review workflow.

Collections get an owner (existing ones: the local operator) and grants; keys name a
holder, audit entries record it; review items keep what was searched and by whom.

Step 2 of the hand-written runner this replaced, unchanged: catalogs that recorded step 2
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from facegate.store.migrations import add_missing_columns, create_missing_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    create_missing_tables(conn)
    for table in ("collections", "api_keys", "audit_log", "reviews"):
        add_missing_columns(conn, table)
    conn.execute(text("UPDATE collections SET owner = 'local' WHERE owner IS NULL"))


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
