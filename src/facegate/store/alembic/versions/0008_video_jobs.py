"""Video-search jobs: the jobs table of asynchronous video searches, with the key holder
each job records.

Step 8 of the hand-written runner this replaced, unchanged: catalogs that recorded step 8
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import add_missing_columns, create_missing_tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    create_missing_tables(conn)
    add_missing_columns(conn, "video_jobs")


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
