"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Idempotent (revision 0001 creates the ORM schema as it is now) and forward only.
"""

from __future__ import annotations

from alembic import op

from facegate.store.migrations import add_missing_columns, create_missing_tables  # noqa: F401
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    raise NotImplementedError("facegate's migrations go forward only: restore a backup to go back")
