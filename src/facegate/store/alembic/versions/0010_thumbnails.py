"""Face thumbnails kept by collections that opt in.

Opt-in face thumbnails: the collection's choice (off for existing ones), the face's sealed
crop, and the probe's with a lead.

Step 10 of the hand-written runner this replaced, unchanged: catalogs that recorded step 10
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import add_missing_columns

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    for table in ("collections", "faces", "reviews"):
        add_missing_columns(conn, table)


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
