"""Audit entries for requests refused before authentication, aggregated per client address
and minute, so that a flood cannot grow the audit log without bound.

Every refused unauthenticated or failed-auth request still counts, but the log gets at most
two entries per client address, minute and worker:

- the first refusal of an address in a minute is written at once, before its answer
  (`aggregated: "open"`, `count: 1`): whoever knocks is on the record even if the
  process dies a moment later;
- later refusals in the same minute are counted in memory; the window is closed (one
  entry, `aggregated: "closed"`, with the `count` of the whole minute and the count per
  code) at the next refusal from that address after the minute ends, by the periodic
  `flush` of the service, or at shutdown.

Crash safety: a worker killed mid-minute loses the counts of its open windows, never the
fact that an address was refused (its opening entry is already committed). Refusals of
authenticated callers (a denial by the policy, a bad body) are not aggregated: each keeps
its own entry with its request id.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gatekeeper
from facegate.governance import Operation


@dataclass(slots=True)
class _Window:
    minute: int  # minutes since the epoch
    operation: Operation
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.codes.values())


class RefusalLedger:
    """Counts refusals per (address, minute) in this worker and writes their entries."""

    def __init__(self, gate: Callable[[], Gatekeeper], clock: Callable[[], float] = time.time) -> None:
        self._gate = gate
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, _Window] = {}

    def refused(self, address: str, operation: Operation, exc: FacegateError, request_id: str) -> None:
        """Count one refusal; write the window's opening entry if it is the first (blocking)."""
        minute = int(self._clock() // 60)
        with self._lock:
            window = self._open.get(address)
            closing = None
            if window is not None and window.minute != minute:
                closing, window = self._open.pop(address), None
            opening = window is None
            if window is None:
                window = self._open[address] = _Window(minute, operation)
            window.codes[exc.code.value] += 1
        if closing is not None:
            self._close(address, closing)
        if opening:
            try:
                self._write(address, minute, operation, exc, request_id, "open", {exc.code.value: 1})
            except Exception:
                # Not on the record (the database did not answer): the window is not open,
                # so the address's next refusal tries to open it again.
                with self._lock:
                    if self._open.get(address) is window:
                        del self._open[address]
                raise

    def count_if_open(self, address: str, code: ErrorCode) -> bool:
        """Count a refusal in the address's window of this minute if it has one (no I/O);
        False when the refusal would open a window, which the caller must record in full."""
        minute = int(self._clock() // 60)
        with self._lock:
            window = self._open.get(address)
            if window is None or window.minute != minute:
                return False
            window.codes[code.value] += 1
            return True

    def flush(self, everything: bool = False) -> int:
        """Close the windows whose minute has ended (all of them at shutdown); how many."""
        minute = int(self._clock() // 60)
        with self._lock:
            done = [(a, w) for a, w in self._open.items() if everything or w.minute != minute]
            for address, _ in done:
                del self._open[address]
        for address, window in done:
            self._close(address, window)
        return len(done)

    def _close(self, address: str, window: _Window) -> None:
        if window.count > 1:  # a lone refusal is fully told by its opening entry
            code, _ = window.codes.most_common(1)[0]
            exc = FacegateError(ErrorCode(code), "refusals of one client address in one minute")
            self._write(address, window.minute, window.operation, exc, uuid.uuid4().hex, "closed", dict(window.codes))

    def _write(
        self, address: str, minute: int, operation: Operation, exc: FacegateError, request_id: str,
        phase: str, codes: dict[str, int],
    ) -> None:
        start = datetime.fromtimestamp(minute * 60, UTC).isoformat()
        details = {"aggregated": phase, "client": address, "window_start": start, "count": sum(codes.values()),
                   "codes": codes}
        self._gate().refuse(Caller(request_id=request_id), operation, exc, None, details)
