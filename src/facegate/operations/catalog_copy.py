"""`db copy`: an embedded installation copied to a PostgreSQL server, on the record.

Every template, tenant and audit entry leaves the installation, so who copied it and where
to belongs in its audit log. Two entries of the source's chain frame the copy, as
`catalog rekey`'s two do: `phase: start`, naming the target (its password hidden), is
committed before the first row is read, so the copy carries it and a copy that dies midway
is still on the record; `phase: finish` follows with the rows copied, or with the code of
whatever stopped it (a refusal's own code, `INTERRUPTED` for Ctrl-C, else `INTERNAL`). The
copy thus ends one entry behind its source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import AuditEntry, Operation, append_entry
from facegate.store.catalog_copy import CopyReport, copy_catalog

log = logging.getLogger(__name__)


def copy_to_server(
    engine: Facegate, caller: Caller, target: Engine, shown_target: str, *, batch: int,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> CopyReport:
    """Copy the engine's embedded catalog into `target` (migrated, empty), framed by the
    `catalog_copy` entries; `shown_target` is the target's URL as it may be recorded."""

    def record(**details: object) -> Callable[[Session, AuditEntry], None]:
        def act(session: Session, entry: AuditEntry) -> None:
            append_entry(session, entry.with_details(to=shown_target, **details))

        return act

    engine.gate.run_recorded(caller, Operation.CATALOG_COPY, record(phase="start"))
    try:
        report = copy_catalog(engine.db, target, engine.codec, batch=batch, progress=progress)
    except BaseException as exc:  # a refusal, a lost connection, Ctrl-C: the record is finished all the same
        code = exc.code.value if isinstance(exc, FacegateError) else (
            "INTERRUPTED" if isinstance(exc, KeyboardInterrupt) else ErrorCode.INTERNAL.value)
        try:
            engine.gate.run_recorded(caller, Operation.CATALOG_COPY, record(phase="finish", error=code))
        except Exception:  # noqa: BLE001 - the copy's own failure is what the caller must see
            log.exception("the end of a failed catalog copy could not be recorded")
        raise
    engine.gate.run_recorded(caller, Operation.CATALOG_COPY, record(
        phase="finish", rows=report.rows, embeddings=report.embeddings,
    ))
    return report
