"""Rate limits in this process: a token bucket per API key, and one per client address for
requests that fail authentication.

Each key may make `per_minute` requests a minute on average, in bursts of up to
`per_minute`. The buckets live in the worker process: with N workers a key may reach N
times the limit, which is why the limit is per worker and documented so (a shared
limiter would need shared state that the embedded default does not have).

A client address has a bucket of its own that only unauthenticated and failed-auth
requests draw from (`take` after the refusal). While it is empty (`wait` > 0) every
request from that address is refused with 429 before anything costly happens: no key is
looked up, no body is read. Buckets that have filled up again are forgotten, so a flood
from many addresses cannot grow the table without bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_PRUNE_ABOVE = 10_000  # buckets; past it, full ones (nothing to remember) are dropped


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`take(key)` returns 0 when the request may go ahead, else the seconds to wait;
    `wait(key)` says the same without drawing a token."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def _prune(self, now: float) -> None:
        full = float(self.per_minute)
        for key in [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self._rate >= full]:
            del self._buckets[key]

    def _seconds_to_token(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    def take(self, key: str) -> int:
        if not self.enabled:
            return 0
        with self._lock:
            bucket = self._bucket(key, self._clock())
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return self._seconds_to_token(bucket)

    def wait(self, key: str) -> int:
        if not self.enabled:
            return 0
        with self._lock:
            bucket = self._bucket(key, self._clock())
            return 0 if bucket.tokens >= 1.0 else self._seconds_to_token(bucket)
