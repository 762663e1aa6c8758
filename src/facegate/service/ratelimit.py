"""Per-key rate limits: a token bucket per API key, in this process.

Each key may make `per_minute` requests a minute on average, in bursts of up to
`per_minute`. The buckets live in the worker process: with N workers a key may reach N
times the limit, which is why the limit is per worker and documented so (a shared
limiter would need shared state that the embedded default does not have).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`take(key)` returns 0 when the request may go ahead, else the seconds to wait."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: str) -> int:
        if not self.enabled:
            return 0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:  # one per authenticated key: as many as the catalog holds
                bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

