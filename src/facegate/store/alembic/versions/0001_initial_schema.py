"""Initial schema: every ORM table as it is now (later revisions then find theirs present).

Step 1 of the hand-written runner this replaced, unchanged: catalogs that recorded step 1
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.db import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    Base.metadata.create_all(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
