"""A bulk enrolment killed with SIGKILL part-way, then re-run: every image enrolled exactly
once, catalog and index agree, and every face has its audit entry (and no entry claims a
face that is not there): the operation and its record commit together or not at all.

On both backends: a process killed while writing to PostgreSQL loses its connection, its
open transaction (and the advisory lock that transaction held) with it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import verify
from facegate.operations import collections
from facegate.settings import Settings
from facegate.store.server_index import ServerVectors
from tests.backend import count_faces, environment

CLI = Path(sys.executable).parent / "facegate"


def bulk(settings: Settings, manifest: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CLI), "index", "people", "--manifest", str(manifest), "--workers", "1", "--json"],
        env={**os.environ, **environment(settings)}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )


def test_killed_bulk_index_converges(settings: Settings, lfw: Path, tmp_path: Path) -> None:
    with (lfw / "manifest.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["pairs_fold"] == "1"][:36]
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject", "external_id"])
        for r in rows:
            writer.writerow([str(lfw / r["path"]), r["subject"], r["path"]])
    engine = Facegate(settings)
    collections.create_collection(engine, Caller(), "people")
    engine.close()

    for _ in range(2):  # kill twice, each time after a few more images were committed
        before = count_faces(settings)
        child = bulk(settings, manifest)
        deadline = time.monotonic() + 240
        while count_faces(settings) < before + 3 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)  # polling the catalog, not waiting for luck: the checks below say what happened
        assert child.poll() is None, "the run ended before the kill: this run tested nothing"
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        assert before < count_faces(settings) < len(rows), "killed mid-way, with work done and work left"
    child = bulk(settings, manifest)
    out, _ = child.communicate(timeout=600)
    assert child.returncode == 0, out
    report = json.loads(out)
    assert report["skipped"] >= 3

    engine = Facegate(settings)
    with engine.sessions.begin() as session:
        con = session.connection()
        faces = con.exec_driver_sql("SELECT face_id, row_id, external_image_id FROM faces").all()
        entries = con.exec_driver_sql(
            "SELECT decision, details FROM audit_log WHERE operation = 'index' ORDER BY seq"
        ).all()
        in_database = isinstance(engine.vectors, ServerVectors)
        searchable = [] if not in_database else con.exec_driver_sql(
            "SELECT row_id FROM faces WHERE embedding IS NOT NULL"
        ).scalars().all()
        assert verify(session).ok
    # every image is either enrolled or reported by the last run (e.g. NO_FACE)
    enrolled = {f.external_image_id for f in faces}
    reported = {Path(u["path"]).relative_to(lfw).as_posix() for u in report["unindexed"]}
    refused = {Path(u["path"]).relative_to(lfw).as_posix() for u in report["unindexed"] if "face" not in u}
    assert enrolled | reported == {r["path"] for r in rows} and not enrolled & refused
    # a bystander beside the row's subject is reported, never enrolled under the subject
    assert all(len([f for f in faces if f.external_image_id == image]) == 1 for image in enrolled)
    # ...exactly once: all faces of an image come from one audit entry, and every stored
    # face is claimed by exactly one allowed entry (no face without its record, and no
    # record of a face that a crash took away)
    entry_of: dict[str, int] = {}
    for number, (decision, details) in enumerate(entries):
        if decision == "allow":
            for face_id in json.loads(details).get("indexed", []):
                assert face_id not in entry_of
                entry_of[face_id] = number
    assert set(entry_of) == {f.face_id for f in faces}
    by_image: dict[str, set[int]] = {}
    for f in faces:
        by_image.setdefault(f.external_image_id, set()).add(entry_of[f.face_id])
    assert all(len(numbers) == 1 for numbers in by_image.values())
    if in_database:  # server mode: the embedding column is the index
        assert sorted(searchable) == sorted(f.row_id for f in faces)
    else:
        index = engine.vectors.vectors("people").index
        assert sorted(index.keys().tolist()) == sorted(f.row_id for f in faces)
