"""Audited operations per second with 1, 2 and 4 writer processes on one database.

Used by `pg_bench.py`; not run on its own. Each writer is its own process with its own
`Facegate` engine on the same installation (server mode: `Settings(database_url=URL)`;
embedded: the same `FACEGATE_HOME`), as separate service hosts would be. Every operation
goes through the gate and appends one audit entry, so all writers take turns on the one
chain (PostgreSQL: facegate's transaction-scoped advisory lock; SQLite: BEGIN IMMEDIATE).

Operations, neither of which decodes an image:
- `describe`: `collections.describe_collection` (counts of a collection; a read plus the
  audit append: the cost of the chain itself);
- `search_face`: `search.search_face` with a random enrolled face of a 1,000-face
  collection (its template read, a search, the results and the audit entry).

Each writer opens its engine and runs 5 untimed operations (connections, index load),
then all start together at a barrier; ops/s = all timed operations / (last end - first
start). The chain must verify afterwards and hold exactly one entry per operation.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy.engine import make_url

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import verify
from facegate.governance.audit import entry_count
from facegate.operations import collections, faces, search
from facegate.settings import Settings
from facegate.vision.types import Box, Face, Quality, QualityFilter

COLLECTION = "writers"
WARM_UP = 5
ME = Caller()  # the local operator, default purpose photo_library (the built-in policy)


def synthetic_face(template: np.ndarray, i: int) -> Face:
    quality = Quality(face_size=98, sharpness=400.0, brightness=120.0, yaw=0.0, roll=0.0, level=QualityFilter.HIGH)
    points = ((161, 111), (137, 112), (92, 113), (116, 113), (127, 145))
    return Face(Box(60 + i % 7, 70, 98, 98), 0.999, points, quality, template)


def enrol(settings: Settings, templates: np.ndarray, per_call: int = 100) -> list[str]:
    """The collection and its faces, enrolled through the gate (audited) as `per_call`
    faces of one synthetic image a call; their face ids."""
    engine = Facegate(settings)
    try:
        collections.create_collection(engine, ME, COLLECTION)
        face_ids: list[str] = []
        for first in range(0, len(templates), per_call):
            found = [synthetic_face(t, first + i) for i, t in enumerate(templates[first : first + per_call])]
            result = faces.index_analysed(
                engine, ME, COLLECTION, uuid.uuid4().hex * 2, lambda found=found: (found, (1000, 1000)),
            ).value
            face_ids += [f.face_id for f in result.indexed]
        return face_ids
    finally:
        engine.close()


def _writer(settings: Settings, operation: str, ops: int, face_ids: list[str], seed: int,
            barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue) -> None:
    engine = Facegate(settings)
    rng = np.random.default_rng(seed)
    probes = rng.choice(face_ids, ops + WARM_UP)

    def one(i: int) -> None:
        if operation == "describe":
            collections.describe_collection(engine, ME, COLLECTION)
        else:
            search.search_face(engine, ME, COLLECTION, str(probes[i]))

    try:
        for i in range(WARM_UP):
            one(i)
        barrier.wait()
        start = time.perf_counter()
        seconds = np.empty(ops)
        for i in range(ops):
            begun = time.perf_counter()
            one(WARM_UP + i)
            seconds[i] = time.perf_counter() - begun
        out.put((start, time.perf_counter(), seconds.tolist()))
    finally:
        engine.close()


def run(settings: Settings, operation: str, writers: int, ops: int, face_ids: list[str]) -> dict[str, object]:
    """`writers` processes doing `ops` timed operations each; ops/s, per-op latency, and
    whether the chain verifies with one entry per operation."""
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(writers), context.Queue()
    engine = Facegate(settings)
    with engine.sessions() as session:
        before = entry_count(session)
    processes = [
        context.Process(target=_writer, args=(settings, operation, ops, face_ids, seed, barrier, out))
        for seed in range(writers)
    ]
    watch = LockWatch(settings.database_url) if settings.database_url else None
    for process in processes:
        process.start()
    results = [out.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a writer failed (exit {process.exitcode})")
    seen = watch.stop(writers * (ops + WARM_UP)) if watch else {}
    with engine.sessions() as session:
        added = entry_count(session) - before
        ok = verify(session).ok
    engine.close()
    wall = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    latency = np.concatenate([np.array(s) for _, _, s in results])
    return {
        "operation": operation, "writers": writers, "ops": writers * ops, "seconds": wall,
        "ops_s": writers * ops / wall, "p50_ms": float(np.median(latency) * 1e3),
        "p99_ms": float(np.percentile(latency, 99) * 1e3),
        "entries_added": added, "entries_expected": writers * (ops + WARM_UP), "verify_ok": ok, **seen,
    }


class LockWatch:
    """Server mode: how many writers wait for facegate's advisory lock (sampled every 5 ms
    while they run) and how many transactions an operation costs (pg_stat_database). It
    watches from the server's `postgres` database, so its own queries are not counted."""

    def __init__(self, url: str) -> None:
        self._database = make_url(url).database
        self._admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)
        self._conn = psycopg.connect(self._admin, autocommit=True)
        self._before = self._transactions()
        self._samples: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _transactions(self) -> int:
        self._conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(self._conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (self._database,)
        ).fetchone()[0])

    def _sample(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as conn:
            while not self._done.wait(0.005):
                self._samples.append(int(conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                    " AND wait_event_type = 'Lock' AND wait_event = 'advisory'", (self._database,),
                ).fetchone()[0]))

    def stop(self, operations: int) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        time.sleep(1.0)  # backends report their counters within a second of ending
        spent = self._transactions() - self._before
        self._conn.close()
        waiting = float(np.mean(self._samples)) if self._samples else 0.0
        return {"transactions_per_op": spent / operations, "mean_waiting_for_lock": waiting}


def measure(settings: Settings, templates: np.ndarray, writer_counts: list[int], ops: int,
            operations: tuple[str, ...] = ("describe", "search_face")) -> list[dict[str, object]]:
    """The table for one backend: every operation with every writer count."""
    face_ids = enrol(settings, templates)
    return [run(settings, op, w, ops, face_ids) for op in operations for w in writer_counts]


def server_mode_available() -> bool:
    """Whether this checkout's facegate has server mode (FACEGATE_DATABASE_URL)."""
    return "database_url" in Settings.model_fields


def settings_for(home: Path, database_url: str | None) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    return Settings(home=home, database_url=database_url)
