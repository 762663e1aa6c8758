"""One log, two entry formats, and redaction: entries written by the code before format 2
still verify beside new ones; retention redacts only format-2 entries; a redacted entry
still verifies, is reported, and any edit of it (its digest included) is named. The slow
verifier agrees with the fast one throughout."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from facegate.governance.audit import GENESIS, HASHED_FIELDS, AuditEntry, MatchRef, append_entry
from facegate.governance.audit_verify import VerifyResult, verify, verify_naive
from facegate.governance.policy import Policy
from facegate.governance.retention import apply_retention
from facegate.store.db import CATALOG_FILE, open_engine, session_factory, sqlite_url
from facegate.store.migrations import migrate
from tests.governance.gov_support import admin_record, at

OLD, NEW = 5, 10  # entries 1..5 in the first format, 6..15 in format 2


def _entry(i: int) -> AuditEntry:
    purpose = ["victim_identification", "photo_library"][i % 2]
    return AuditEntry(
        time=at("2021-01-01T10:00:00Z") + timedelta(days=i), operation="search_image", decision="allow",
        rule=f"purpose:{purpose}", policy_version="sha256:0123456789abcdef", tenant="polaris", key_id=f"{i:016x}",
        sector="nonprofit", purpose=purpose, case_reference=f"Fall-{i}-Zürich", probe_sha256=f"{i:02x}" * 32,
        results=tuple(MatchRef(f"face-{i}-{k}", f"s{k}" if k else None, 80 + k / 3) for k in range(1 + i % 3)),
        max_fmr=1e-5, threshold=83.5, max_results=20, request_id=f"req-{i}", model_id="dlib_resnet_v1",
        details={"note": f"n°{i}"},
    )  # fmt: skip


def _old_format_row(i: int, prev: str) -> dict[str, Any]:
    """An entry as the code before format 2 wrote it, hashed by its documented recipe."""
    values = _entry(i).columns(i)
    row = {k: values[k] for k in HASHED_FIELDS}
    body = {k: (json.loads(row[k]) if k in ("results", "details") else row[k]) for k in HASHED_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return {**row, "prev_hash": prev, "entry_hash": hashlib.sha256(b"\x01" + bytes.fromhex(prev) + canonical).hexdigest()}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, example_policy: Policy) -> tuple[Path, list[int]]:
    """Old entries, new entries, and a retention run at 2021-03-01 (30 days for photo_library)."""
    data_dir = tmp_path_factory.mktemp("mixed")
    engine = open_engine(sqlite_url(data_dir))
    migrate(engine)
    prev = GENESIS
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        for i in range(1, OLD + 1):
            row = _old_format_row(i, prev)
            db.execute(f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))  # fmt: skip
            prev = row["entry_hash"]
        db.execute("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, ?, ?)", (OLD, prev))
    with session_factory(engine).begin() as session:
        for i in range(OLD + 1, OLD + NEW + 1):
            append_entry(session, _entry(i))
        record = replace(admin_record("2021-03-01T00:00:00Z"), operation="retention")
        run = apply_retention(session, example_policy, at=at("2021-03-01T00:00:00Z"), record=record)
    engine.dispose()
    return data_dir, list(run.redacted)


def _copy(mixed: tuple[Path, list[int]], to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    for part in mixed[0].glob(CATALOG_FILE + "*"):
        shutil.copy(part, to / part.name)
    return to


def _agree(data_dir: Path) -> VerifyResult:
    engine = open_engine(sqlite_url(data_dir))
    try:
        with session_factory(engine)() as session:
            fast, naive = verify(session), verify_naive(session)
    finally:
        engine.dispose()
    assert (fast.ok, fast.entries, fast.first_bad_entry, fast.kind, fast.redacted) == (
        naive.ok, naive.entries, naive.first_bad_entry, naive.kind, naive.redacted,
    )  # fmt: skip
    return fast


def _sql(data_dir: Path, statement: str, args: tuple = ()) -> None:
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        db.execute(statement, args)


def _value(data_dir: Path, column: str, seq: int) -> Any:
    with sqlite3.connect(data_dir / CATALOG_FILE) as db:
        return db.execute(f"SELECT {column} FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]


def test_old_and_new_entries_and_redactions_verify_together(mixed: tuple[Path, list[int]], tmp_path: Path) -> None:
    data_dir, redacted = mixed
    # photo_library entries of format 2 older than 30 days at 2021-03-01: days 6, 8, 10, ... < 2021-01-30
    assert redacted == [s for s in range(OLD + 1, OLD + NEW + 1) if s % 2 == 1 and s < 30]
    result = _agree(_copy(mixed, tmp_path))
    assert (result.ok, result.entries) == (True, OLD + NEW + 1)
    assert list(result.redacted) == redacted
    assert result.to_dict()["redactions"]["count"] == len(redacted)
    for seq in range(1, OLD + 1):  # the first format cannot be redacted: its content stays
        assert _value(data_dir, "probe_sha256", seq) is not None and _value(data_dir, "format", seq) is None
    details = json.loads(_value(data_dir, "details", OLD + NEW + 1))
    assert details["action"] == "retention" and details["old_format_entries_kept"] >= 1


@pytest.mark.parametrize("column", [c for c in HASHED_FIELDS if c != "seq"])
def test_any_edit_of_an_old_format_entry_is_named(mixed: tuple[Path, list[int]], tmp_path: Path, column: str) -> None:
    data_dir = _copy(mixed, tmp_path)
    value = _value(data_dir, column, 3)
    if value is None:
        changed: Any = "x"
    elif isinstance(value, int | float):
        changed = value + 1
    else:  # one character, inside the JSON or text
        i = len(value) // 2
        changed = value[:i] + chr(ord(value[i]) ^ 0x01) + value[i + 1 :]
    _sql(data_dir, f"UPDATE audit_log SET {column} = ? WHERE seq = 3", (changed,))
    result = _agree(data_dir)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, 3, "edited")


@pytest.mark.parametrize("column", [
    *(c for c in HASHED_FIELDS if c not in ("seq", "probe_sha256", "results")),
    "format", "redactable_digest", "probe_sha256", "results", "salt",
])  # fmt: skip
def test_any_edit_of_a_redacted_entry_is_named(mixed: tuple[Path, list[int]], tmp_path: Path, column: str) -> None:
    data_dir = _copy(mixed, tmp_path)
    seq = mixed[1][0]
    value = _value(data_dir, column, seq)
    if value is None or value == "null":  # put content back where it was removed
        changed: Any = "[]" if column == "results" else "ab" * 16
    else:
        changed = value + 1 if isinstance(value, int | float) else value[:-1] + ("0" if value[-1] != "0" else "1")
    _sql(data_dir, f"UPDATE audit_log SET {column} = ? WHERE seq = ?", (changed, seq))
    result = _agree(data_dir)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, seq, "edited"), column


def test_an_unredacted_entry_cannot_pass_as_redacted(mixed: tuple[Path, list[int]], tmp_path: Path) -> None:
    data_dir = _copy(mixed, tmp_path)
    seq = OLD + 3  # victim_identification: kept
    _sql(data_dir, "UPDATE audit_log SET redacted_at = '2021-03-01T00:00:00+00:00' WHERE seq = ?", (seq,))
    assert (_agree(data_dir).first_bad_entry, _agree(data_dir).kind) == (seq, "edited")


def test_a_redaction_no_retention_run_claims_is_named(mixed: tuple[Path, list[int]], tmp_path: Path) -> None:
    """An intruder who blanks a kept entry's content and marks it redacted keeps the chain
    whole (the digest stays), but no retention run's entry names that seq."""
    data_dir = _copy(mixed, tmp_path)
    seq = OLD + 3  # victim_identification: kept by the retention run
    _sql(data_dir, "UPDATE audit_log SET probe_sha256 = NULL, results = 'null', salt = NULL, "
         "redacted_at = '2021-03-01T00:00:00.000000+00:00' WHERE seq = ?", (seq,))  # fmt: skip
    result = _agree(data_dir)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, seq, "redacted")
    assert seq in result.redacted


def test_the_verifiers_agree_on_many_tampered_mixed_logs(mixed: tuple[Path, list[int]], tmp_path: Path) -> None:
    rng = random.Random(20210301)
    columns = [c for c in HASHED_FIELDS if c != "seq"] + ["format", "salt", "redactable_digest", "prev_hash", "entry_hash"]
    kinds = set()
    for case in range(60):
        data_dir = _copy(mixed, tmp_path / f"case{case}")
        for _ in range(rng.randint(1, 3)):
            seq, column = rng.randint(1, OLD + NEW + 1), rng.choice(columns)
            choice = rng.random()
            if choice < 0.7:
                try:
                    _sql(data_dir, f"UPDATE audit_log SET {column} = ? WHERE seq = ?",
                         (rng.choice([None, "x", 7, "null"]), seq))  # fmt: skip
                except sqlite3.IntegrityError:  # a NOT NULL column
                    pass
            elif choice < 0.85:
                _sql(data_dir, "DELETE FROM audit_log WHERE seq = ?", (seq,))
            else:
                _sql(data_dir, "UPDATE audit_log SET redacted_at = ?, probe_sha256 = NULL, results = 'null', "
                     "salt = NULL WHERE seq = ?", ("2021-03-02T00:00:00+00:00", seq))  # fmt: skip
        kinds.add(_agree(data_dir).kind)
    assert {"edited", "missing", "redacted"} <= kinds


def test_a_catalog_from_before_format_2_upgrades_in_place(tmp_path: Path) -> None:
    """A catalog at revision 0001 (no format columns, no checkpoints table, no collection
    retention) migrates, its entries still verify, and new entries are written in format 2."""
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    engine.dispose()
    prev = GENESIS
    with sqlite3.connect(tmp_path / CATALOG_FILE) as db:  # make it what the older code left
        for column in ("format", "redactable_digest", "salt", "redacted_at"):
            db.execute(f"ALTER TABLE audit_log DROP COLUMN {column}")
        db.execute("ALTER TABLE collections DROP COLUMN retention_days")
        db.execute("DROP TABLE audit_checkpoints")
        db.execute("UPDATE alembic_version SET version_num = '0001'")
        for i in range(1, OLD + 1):
            row = _old_format_row(i, prev)
            db.execute(f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))  # fmt: skip
            prev = row["entry_hash"]
        db.execute("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, ?, ?)", (OLD, prev))
    engine = open_engine(sqlite_url(tmp_path))
    try:
        assert migrate(engine).before == "0001"
        with session_factory(engine)() as session:
            assert verify(session).ok and verify_naive(session).ok
        with session_factory(engine).begin() as session:
            append_entry(session, _entry(OLD + 1))
    finally:
        engine.dispose()
    result = _agree(tmp_path)
    assert (result.ok, result.entries) == (True, OLD + 1)
    assert [_value(tmp_path, "format", s) for s in (1, OLD, OLD + 1)] == [None, None, 2]
