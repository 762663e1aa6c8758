"""Template key fingerprint, last good policies.

Catalog settings and kept policies; an existing catalog's template key fingerprint is
read from its templates (store/template_key.py).

Step 4 of the hand-written runner this replaced, unchanged: catalogs that recorded step 4
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import create_missing_tables
from facegate.store.template_key import record_from_templates

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    create_missing_tables(conn)
    record_from_templates(conn)


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
