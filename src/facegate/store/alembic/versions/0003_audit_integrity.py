"""Audit entry format 2 (redactable digest), signed checkpoints, collection retention.

Step 3 of the hand-written runner this replaced, unchanged: catalogs that recorded step 3
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import add_missing_columns, create_missing_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    create_missing_tables(conn)
    add_missing_columns(conn, "audit_log")
    add_missing_columns(conn, "collections")


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
