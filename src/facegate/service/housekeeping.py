"""The service's own schedule: retention runs and signed checkpoints, in one background thread.

Both are operations of the local operator, through the gate like any other, so each run
leaves its audit entry (a checkpoint only when entries were appended since the last one,
so an idle service does not grow its log). Checkpoints go to the catalog and, when
FACEGATE_CHECKPOINT_DIR is set, to `checkpoint-<seq>.json` files there, for whoever keeps
copies (an oversight board syncing the directory). With several workers each runs its own
schedule: retention is idempotent and a duplicate checkpoint is harmless.
"""

from __future__ import annotations

import logging
import threading
import time

from facegate.engine import Facegate
from facegate.errors import FacegateError
from facegate.gate import Caller
from facegate.operations import audit, retention

log = logging.getLogger("facegate.service")


def signing_status(engine: Facegate) -> str:
    """What `/readyz` and the start-up log say about checkpoint signing."""
    if engine.settings.audit_signing_key is None:
        return "not configured: checkpoints are not signed (set FACEGATE_AUDIT_SIGNING_KEY)"
    try:
        engine.signing_key  # noqa: B018 - loads and checks the key file
    except FacegateError as exc:  # reported; the service still serves
        return f"unusable: {exc.code.value}: {exc.message}"
    return "ok"


class Housekeeping:
    """Runs retention and checkpoints every so many seconds until `stop()`, the first time one
    interval after start (so a restart loop cannot flood the log)."""

    def __init__(self, engine: Facegate) -> None:
        self._engine = engine
        self._stop = threading.Event()
        settings = engine.settings
        self._jobs = [
            (self._retention, settings.retention_interval_seconds),
            (self._checkpoint, settings.checkpoint_interval_seconds if signing_status(engine) == "ok" else 0),
        ]
        self._thread = threading.Thread(target=self._loop, name="facegate-housekeeping", daemon=True)

    def start(self) -> None:
        if any(interval > 0 for _, interval in self._jobs):
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        due = [time.monotonic() + interval for _, interval in self._jobs]  # first runs after one interval
        while not self._stop.is_set():
            for i, (job, interval) in enumerate(self._jobs):
                if interval > 0 and time.monotonic() >= due[i]:
                    due[i] = time.monotonic() + interval
                    try:
                        job()
                    except Exception:  # a failed run is logged and retried at the next interval
                        log.exception("housekeeping: %s failed", job.__name__.strip("_"))
            waits = [d - time.monotonic() for d, (_, interval) in zip(due, self._jobs, strict=True) if interval > 0]
            self._stop.wait(max(0.05, min(waits)))

    def _retention(self) -> None:
        run = retention.apply(self._engine, Caller(request_id=f"retention-{time.time_ns()}"))
        log.info("retention: redacted %d entries, purged %d leads, erased %d faces",
                 len(run.redacted), run.purged_reviews, run.erased_faces)

    def _checkpoint(self) -> None:
        if not audit.checkpoint_is_due(self._engine):
            return
        document = audit.checkpoint(self._engine, Caller(request_id=f"checkpoint-{time.time_ns()}"))
        log.info("audit checkpoint signed at entry %d", document["seq"])
