"""faces.score_offset for fair score normalization.

The per-face fair score normalization offset (nullable). Faces enrolled before have none;
search computes theirs from the template (no backfill needed here, which could not
decrypt keyed templates anyway).

Step 6 of the hand-written runner this replaced, unchanged: catalogs that recorded step 6
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import add_missing_columns

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_missing_columns(op.get_bind(), "faces")


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
