"""A bulk enrolment reads its files outside transactions. Every transaction holds the
installation's write lock (BEGIN IMMEDIATE on SQLite; on PostgreSQL an advisory lock that
the writers of every host queue on, refused after 30 s), so a slow disk under one run must
not stop every other writer. A named pipe stands in for the slow file: the run blocks
reading it for as long as the test holds the pipe's other end, while another engine writes.
(The analysis reads the pipe again and finds it empty: that image is refused, which is
beside the point here.)
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.operations import bulk, collections
from facegate.settings import Settings


def reader_waiting(fifo: Path, within: float = 60.0) -> int:
    """The write end of `fifo`, opened once a reader has it open (it then waits for data)."""
    deadline = time.monotonic() + within
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while nobody reads
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        os.set_blocking(fd, True)
        return fd


def end_every_read(fifo: Path, running: threading.Thread, within: float = 120.0) -> None:
    """End-of-file to whoever reads `fifo` next, until `running` is done (so no thread is
    left waiting on the pipe, whatever happened)."""
    deadline = time.monotonic() + within
    while running.is_alive() and time.monotonic() < deadline:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # nobody reading right now
        time.sleep(0.01)


def test_a_bulk_run_reading_a_slow_file_blocks_no_other_writer(settings: Settings, lfw: Path, tmp_path: Path) -> None:
    engine = Facegate(settings)
    collections.create_collection(engine, Caller(), "people")
    slow = tmp_path / "slow.jpg"
    os.mkfifo(slow)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,subject\n{slow},tony_blair\n")

    outcome: dict[str, object] = {}

    def bulk_run() -> None:
        try:
            outcome["report"] = bulk.index_manifest(engine, Caller(), "people", manifest, workers=1)
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            outcome["error"] = exc

    run = threading.Thread(target=bulk_run, daemon=True)
    run.start()
    try:
        held = reader_waiting(slow)  # the run reads the file (to skip what is enrolled), and waits
        other = Facegate(settings)
        meanwhile = threading.Thread(
            target=lambda: collections.create_collection(other, Caller(), "meanwhile"), daemon=True)
        started = time.monotonic()
        meanwhile.start()
        meanwhile.join(timeout=15)
        blocked, waited = meanwhile.is_alive(), time.monotonic() - started
        with os.fdopen(held, "wb") as out:
            out.write((lfw / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes())
    finally:
        end_every_read(slow, run)  # the analysis reads it again: an empty file now
    meanwhile.join(timeout=60)
    run.join(timeout=5)
    assert not blocked, f"another writer waited {waited:.1f} s for a bulk run reading a file"
    assert "error" not in outcome, outcome
    report = outcome["report"]
    assert [u["reason"] for u in report.unindexed] == ["INVALID_IMAGE"]  # type: ignore[attr-defined]
    assert {c.collection_id for c in collections.list_collections(other, Caller()).value} == {"people", "meanwhile"}
    other.close()
    engine.close()
