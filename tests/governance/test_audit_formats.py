"""One log, two entry formats, and redaction: entries written by the code before format 2
still verify beside new ones; retention redacts only format-2 entries; a redacted entry
still verifies, is reported, and any edit of it (its digest included) is named. The slow
verifier agrees with the fast one throughout."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from facegate.governance.audit import GENESIS, HASHED_FIELDS, AuditEntry, MatchRef, append_entry
from facegate.governance.audit_verify import VerifyResult, verify, verify_naive
from facegate.governance.policy import Policy
from facegate.governance.retention import apply_retention
from facegate.store.db import CATALOG_FILE, open_engine, session_factory, sqlite_url
from facegate.store.migrations import migrate
from tests.governance.gov_support import admin_record, at
from tests.governance.prepared import Prepared, Scratch

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


def _insert_old_format(conn: Connection, count: int) -> None:
    """Entries 1..count as the code before format 2 wrote them, and their head."""
    prev = GENESIS
    for i in range(1, count + 1):
        row = _old_format_row(i, prev)
        conn.execute(text(f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"), row)
        prev = row["entry_hash"]
    conn.execute(text("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, :seq, :hash)"), {"seq": count, "hash": prev})


def _fill(policy: Policy) -> Callable[[Engine], list[int]]:
    """Old entries, new entries, and a retention run at 2021-03-01 (30 days for photo_library);
    the seqs it redacted."""

    def fill(engine: Engine) -> list[int]:
        with engine.begin() as conn:
            _insert_old_format(conn, OLD)
        with session_factory(engine).begin() as session:
            for i in range(OLD + 1, OLD + NEW + 1):
                append_entry(session, _entry(i))
            record = replace(admin_record("2021-03-01T00:00:00Z"), operation="retention")
            run = apply_retention(session, policy, at=at("2021-03-01T00:00:00Z"), record=record)
        return list(run.redacted)

    return fill


@pytest.fixture(scope="module")
def mixeds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, example_policy: Policy
) -> Iterator[Prepared[list[int]]]:
    prepared = Prepared(_fill(example_policy), request, tmp_path_factory.mktemp("mixed"))
    yield prepared
    prepared.dispose()


@pytest.fixture
def mixed(mixeds: Prepared[list[int]], backend: str) -> Iterator[tuple[Scratch, list[int]]]:
    """The mixed log and the seqs its retention run redacted, for this test to tamper with."""
    with mixeds.scratch(backend) as prepared:
        yield prepared


def _agree(catalog: Scratch) -> VerifyResult:
    with catalog.sessions() as session:
        fast, naive = verify(session), verify_naive(session)
    assert (fast.ok, fast.entries, fast.first_bad_entry, fast.kind, fast.redacted) == (
        naive.ok, naive.entries, naive.first_bad_entry, naive.kind, naive.redacted,
    )  # fmt: skip
    return fast


def _set(catalog: Scratch, column: str, value: Any, seq: int) -> None:
    catalog.sql((f"UPDATE audit_log SET {column} = :v WHERE seq = :seq", {"v": value, "seq": seq}))


def test_old_and_new_entries_and_redactions_verify_together(mixed: tuple[Scratch, list[int]]) -> None:
    catalog, redacted = mixed
    # photo_library entries of format 2 older than 30 days at 2021-03-01: days 6, 8, 10, ... < 2021-01-30
    assert redacted == [s for s in range(OLD + 1, OLD + NEW + 1) if s % 2 == 1 and s < 30]
    result = _agree(catalog)
    assert (result.ok, result.entries) == (True, OLD + NEW + 1)
    assert list(result.redacted) == redacted
    assert result.to_dict()["redactions"]["count"] == len(redacted)
    for seq in range(1, OLD + 1):  # the first format cannot be redacted: its content stays
        assert catalog.value("probe_sha256", seq) is not None and catalog.value("format", seq) is None
    details = json.loads(catalog.value("details", OLD + NEW + 1))
    assert details["action"] == "retention" and details["old_format_entries_kept"] >= 1


@pytest.mark.parametrize("column", [c for c in HASHED_FIELDS if c != "seq"])
def test_any_edit_of_an_old_format_entry_is_named(mixed: tuple[Scratch, list[int]], column: str) -> None:
    catalog, _ = mixed
    value = catalog.value(column, 3)
    if value is None:
        changed: Any = "x"
    elif isinstance(value, int | float):
        changed = value + 1
    else:  # one character, inside the JSON or text
        i = len(value) // 2
        changed = value[:i] + chr(ord(value[i]) ^ 0x01) + value[i + 1 :]
    _set(catalog, column, changed, 3)
    result = _agree(catalog)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, 3, "edited")


@pytest.mark.parametrize("column", [
    *(c for c in HASHED_FIELDS if c not in ("seq", "probe_sha256", "results")),
    "format", "redactable_digest", "probe_sha256", "results", "salt",
])  # fmt: skip
def test_any_edit_of_a_redacted_entry_is_named(mixed: tuple[Scratch, list[int]], column: str) -> None:
    catalog, redacted = mixed
    seq = redacted[0]
    value = catalog.value(column, seq)
    if value is None or value == "null":  # put content back where it was removed
        changed: Any = "[]" if column == "results" else "ab" * 16
    else:
        changed = value + 1 if isinstance(value, int | float) else value[:-1] + ("0" if value[-1] != "0" else "1")
    _set(catalog, column, changed, seq)
    result = _agree(catalog)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, seq, "edited"), column


def test_an_unredacted_entry_cannot_pass_as_redacted(mixed: tuple[Scratch, list[int]]) -> None:
    catalog, _ = mixed
    seq = OLD + 3  # victim_identification: kept
    _set(catalog, "redacted_at", "2021-03-01T00:00:00+00:00", seq)
    assert (_agree(catalog).first_bad_entry, _agree(catalog).kind) == (seq, "edited")


def test_a_redaction_no_retention_run_claims_is_named(mixed: tuple[Scratch, list[int]]) -> None:
    """An intruder who blanks a kept entry's content and marks it redacted keeps the chain
    whole (the digest stays), but no retention run's entry names that seq."""
    catalog, _ = mixed
    seq = OLD + 3  # victim_identification: kept by the retention run
    catalog.sql(("UPDATE audit_log SET probe_sha256 = NULL, results = 'null', salt = NULL, "
                 "redacted_at = '2021-03-01T00:00:00.000000+00:00' WHERE seq = :seq", {"seq": seq}))  # fmt: skip
    result = _agree(catalog)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, seq, "redacted")
    assert seq in result.redacted


def test_the_verifiers_agree_on_many_tampered_mixed_logs(mixeds: Prepared[list[int]], backend: str) -> None:
    rng = random.Random(20210301)
    columns = [c for c in HASHED_FIELDS if c != "seq"] + ["format", "salt", "redactable_digest", "prev_hash", "entry_hash"]
    kinds = set()
    for _case in range(60):
        with mixeds.scratch(backend) as (catalog, _):
            for _ in range(rng.randint(1, 3)):
                seq, column = rng.randint(1, OLD + NEW + 1), rng.choice(columns)
                choice = rng.random()
                if choice < 0.7:  # a NOT NULL column (or, on PostgreSQL, a number column) may refuse the value
                    catalog.try_sql(f"UPDATE audit_log SET {column} = :v WHERE seq = :seq",
                                    {"v": rng.choice([None, "x", 7, "null"]), "seq": seq})  # fmt: skip
                elif choice < 0.85:
                    catalog.sql(("DELETE FROM audit_log WHERE seq = :seq", {"seq": seq}))
                else:
                    catalog.sql(("UPDATE audit_log SET redacted_at = :at, probe_sha256 = NULL, results = 'null', "
                                 "salt = NULL WHERE seq = :seq", {"at": "2021-03-02T00:00:00+00:00", "seq": seq}))  # fmt: skip
            kinds.add(_agree(catalog).kind)
    assert {"edited", "missing", "redacted"} <= kinds


def test_a_catalog_from_before_format_2_upgrades_in_place(tmp_path: Path) -> None:
    """A catalog at revision 0001 (no format columns, no checkpoints table, no collection
    retention) migrates, its entries still verify, and new entries are written in format 2.
    SQLite only: such catalogs exist only as embedded data directories (server mode came
    after format 2, and `db copy` moves a migrated catalog)."""
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
        with engine.connect() as conn:
            catalog = Scratch(conn)
            result = _agree(catalog)
            formats = [catalog.value("format", s) for s in (1, OLD, OLD + 1)]
    finally:
        engine.dispose()
    assert (result.ok, result.entries) == (True, OLD + 1)
    assert formats == [None, None, 2]
