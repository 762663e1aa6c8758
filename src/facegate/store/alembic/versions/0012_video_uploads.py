"""Video uploads kept in the database (server mode): the `video_uploads` table.

A queued video search's upload lives in the database in server mode, so that any host's
runner may take the job. The table exists on both backends (the embedded catalog keeps its
uploads on disk and leaves it empty). Step 12 of the hand-written runner while both
existed. Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import create_missing_tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_missing_tables(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
