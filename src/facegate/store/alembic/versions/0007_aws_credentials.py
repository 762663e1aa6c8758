"""Purpose-bound keys, AWS credentials, face image size.

Keys bound to a purpose and case, their AWS credentials, and the size of the image each
face came from (Rekognition's boxes are fractions of it).

Step 7 of the hand-written runner this replaced, unchanged: catalogs that recorded step 7
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.db import Base
from facegate.store.migrations import add_missing_columns

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    add_missing_columns(conn, "api_keys")
    add_missing_columns(conn, "faces")
    for index in Base.metadata.tables["api_keys"].indexes:
        index.create(conn, checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
