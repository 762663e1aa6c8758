"""A bulk enrolment reads its files outside transactions. Every transaction holds the
installation's write lock (BEGIN IMMEDIATE on SQLite; on PostgreSQL an advisory lock that
the writers of every host queue on, refused after 30 s), so a slow disk under one run must
not stop every other writer. A named pipe stands in for the slow file: the run blocks
reading it for as long as the test holds the pipe's other end, while another engine writes.
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


def hand_over(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def test_a_bulk_run_reading_a_slow_file_blocks_no_other_writer(settings: Settings, lfw: Path, tmp_path: Path) -> None:
    engine = Facegate(settings)
    collections.create_collection(engine, Caller(), "people")
    photo = (lfw / "Tony_Blair" / "Tony_Blair_0001.jpg").read_bytes()
    slow = tmp_path / "slow.jpg"
    os.mkfifo(slow)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,subject\n{slow},tony_blair\n")

    outcome: dict[str, object] = {}
    run = threading.Thread(target=lambda: outcome.update(
        report=bulk.index_manifest(engine, Caller(), "people", manifest, workers=1)))
    run.start()
    held = reader_waiting(slow)  # the run is reading the file (to skip what is enrolled), and waits
    other = Facegate(settings)
    meanwhile = threading.Thread(target=lambda: collections.create_collection(other, Caller(), "meanwhile"))
    started = time.monotonic()
    meanwhile.start()
    meanwhile.join(timeout=15)
    blocked = meanwhile.is_alive()
    waited = time.monotonic() - started
    hand_over(held, photo)
    hand_over(reader_waiting(slow), photo)  # read again to be analysed
    meanwhile.join(timeout=60)
    run.join(timeout=120)
    assert not blocked, f"another writer waited {waited:.1f} s for a bulk run reading a file"
    report = outcome["report"]
    assert [f["subject"] for f in report.indexed] == ["tony_blair"]  # type: ignore[attr-defined]
    assert {c.collection_id for c in collections.list_collections(other, Caller()).value} == {"people", "meanwhile"}
    other.close()
    engine.close()
