"""Console sessions.

Step 9 of the hand-written runner this replaced, unchanged: catalogs that recorded step 9
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import create_missing_tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_missing_tables(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
