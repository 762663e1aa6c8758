"""Alembic's environment for facegate: migrate the connection the caller opened.

Revisions run only through `facegate.store.migrations.migrate(engine)` (the engine at
open, `facegate db migrate`), which passes its open Connection in
`config.attributes["connection"]` inside the transaction it began (and, on PostgreSQL,
under its advisory lock): Alembic neither opens nor commits anything itself.

A new revision: the next number, `down_revision` the current head, idempotent (see
migrations.py), forward only. To start one from the template:

    .venv/bin/python -c "from alembic import command; from facegate.store.migrations import alembic_config; \
command.revision(alembic_config(), 'what it does', rev_id='0012')"
"""

from __future__ import annotations

from alembic import context

from facegate.store.db import Base
from facegate.store.migrations import LEGACY_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "facegate migrates through facegate.store.migrations.migrate(engine) or `facegate db migrate`, "
        "which hand Alembic an open connection"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things in place: Alembic's batch mode copies the table.
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=lambda name, kind, _parent: not (kind == "table" and name == LEGACY_TABLE),
)
with context.begin_transaction():  # the caller's: nothing is committed here
    context.run_migrations()
