"""Bias audits keyed on template space and detector.

Recorded bias audits name the template space and detector they measured. Older rows keep
NULL: they named no detector, so they vouch for no template space and a purpose that
requires an audit needs a new one (the safe reading of missing evidence).

Step 5 of the hand-written runner this replaced, unchanged: catalogs that recorded step 5
in `schema_version` are stamped past it (migrations.py). Idempotent, forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import add_missing_columns

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_missing_columns(op.get_bind(), "bias_audits")


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
