"""Tamper evidence on a real catalog, SQLite and PostgreSQL: every edit, deletion, swap or
insertion made directly in the database is named by `verify`, the slow verifier always
agrees, and writers in separate processes keep one chain."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.audit import (
    GENESIS,
    HASHED_FIELDS,
    AuditEntry,
    MatchRef,
    append_entry,
    canonical_json,
    chain_hash,
    entry_hash_of,
    export_jsonl,
    head,
    read_entries,
)
from facegate.governance.audit_verify import VerifyResult, verify, verify_naive
from facegate.store.db import open_engine, session_factory
from facegate.store.governance_tables import AuditLogRow
from tests.governance.gov_support import at
from tests.governance.prepared import Prepared, Scratch

N = 12


def _entry(i: int) -> AuditEntry:
    """Entries that use every column: results with float similarities, None fields, non-ASCII text."""
    denied = i % 4 == 3
    return AuditEntry(
        time=at("2020-07-01T10:00:00Z") + timedelta(minutes=37 * i, microseconds=i),
        operation=["search_image", "index", "list", "compare"][i % 4],
        decision="deny" if denied else "allow",
        rule="moratorium:law-enforcement-2020" if denied else "purpose:victim_identification",
        policy_version="sha256:3711157de1eca5ba",
        tenant=["polaris", "metro-police", None][i % 3],
        key_id=None if i % 5 == 0 else f"{i:016x}",
        sector=["nonprofit", "law_enforcement", "local"][i % 3],
        purpose="victim_identification" if i % 2 == 0 else None,
        case_reference=f"Fall-{i}-Zürich" if i % 2 == 0 else None,
        collection="victims-2020" if i % 3 else None,
        mode="post_event",
        probe_sha256=f"{i:02x}" * 32 if i % 2 == 0 else None,
        results=tuple(
            MatchRef(f"face-{i}-{k}", f"subject-{k}" if k else None, 80.0 + k / 3.0) for k in range(i % 3)
        ),
        max_fmr=1e-5 if not denied else None,
        threshold=83.0 + i / 7.0 if not denied else None,
        max_results=20 if not denied else None,
        code="MORATORIUM" if denied else None,
        request_id=f"req-{i}",
        model_id="dlib_resnet_v1",
        details={"requested": {"max_fmr": 1e-3, "threshold": None}, "note": f"n°{i}"},
    )


def _fill(engine: Engine) -> None:
    with session_factory(engine).begin() as session:
        for i in range(1, N + 1):
            append_entry(session, _entry(i))


@pytest.fixture(scope="module")
def pristines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared[None]]:
    """A catalog with N chained entries per backend, written once for the module."""
    prepared = Prepared(_fill, request, tmp_path_factory.mktemp("pristine"))
    yield prepared
    prepared.dispose()


@pytest.fixture
def pristine(pristines: Prepared[None], backend: str) -> Iterator[Scratch]:
    """The pristine catalog, for this test to tamper with (rolled back afterwards)."""
    with pristines.scratch(backend) as (scratch, _):
        yield scratch


def _check(catalog: Scratch) -> tuple[VerifyResult, VerifyResult]:
    with catalog.sessions() as session:
        return verify(session), verify_naive(session)


def _agree(catalog: Scratch) -> VerifyResult:
    fast, naive = _check(catalog)
    assert (fast.ok, fast.entries, fast.first_bad_entry, fast.kind, fast.redacted) == (
        naive.ok,
        naive.entries,
        naive.first_bad_entry,
        naive.kind,
        naive.redacted,
    )
    return fast


_NUMERIC = {c.name: c.type.python_type for c in AuditLogRow.__table__.columns if c.type.python_type in (int, float)}


def _one_byte_changed(value: object, column: str) -> object:
    if value is None:  # content where there was none, of the column's type
        return {int: 1, float: 0.5}.get(_NUMERIC.get(column), "x")
    if isinstance(value, str):
        i = len(value) // 2
        return value[:i] + chr(ord(value[i]) ^ 0x01) + value[i + 1 :]
    if isinstance(value, float):
        return math.nextafter(value, math.inf)
    if isinstance(value, int):
        return value ^ 0x01
    raise TypeError(value)


def _edit(catalog: Scratch, column: str, seq: int) -> tuple[str, dict[str, object]]:
    changed = _one_byte_changed(catalog.value(column, seq), column)
    return (f"UPDATE audit_log SET {column} = :v WHERE seq = :seq", {"v": changed, "seq": seq})


def test_an_untouched_chain_verifies(pristine: Scratch) -> None:
    result = _agree(pristine)
    assert (result.ok, result.entries, result.first_bad_entry) == (True, N, None)
    assert result.head is not None and result.head.seq == N
    assert set(result.to_dict()) >= {"ok", "entries", "first_bad_entry"}


# Every stored column: the format-2 columns too (an unredacted entry must keep its salt,
# its digest, and no redaction time).
EDITABLE = [c for c in HASHED_FIELDS if c != "seq"] + [
    "format", "salt", "redactable_digest", "redacted_at", "prev_hash", "entry_hash",
]  # fmt: skip


@pytest.mark.parametrize("column", EDITABLE)
@pytest.mark.parametrize("seq", [1, 6, N])
def test_one_byte_edit_of_any_field_is_named(pristine: Scratch, column: str, seq: int) -> None:
    pristine.sql(_edit(pristine, column, seq))
    result = _agree(pristine)
    assert (result.ok, result.first_bad_entry) == (False, seq), result.problem
    assert result.kind == ("link" if column == "prev_hash" else "edited")


@pytest.mark.parametrize("seq", [1, 6, N])
def test_a_changed_sequence_number_is_named(pristine: Scratch, seq: int) -> None:
    pristine.sql(("UPDATE audit_log SET seq = 1000 WHERE seq = :seq", {"seq": seq}))
    result = _agree(pristine)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, seq, "missing")


@pytest.mark.parametrize("seq", [1, 6, N])
def test_a_deleted_entry_is_named(pristine: Scratch, seq: int) -> None:
    pristine.sql(("DELETE FROM audit_log WHERE seq = :seq", {"seq": seq}))
    result = _agree(pristine)
    assert (result.ok, result.entries, result.first_bad_entry, result.kind) == (
        False,
        N - 1,
        seq,
        "missing",
    ), result.problem


def test_a_deletion_with_renumbering_is_named(pristine: Scratch) -> None:
    pristine.sql(
        "DELETE FROM audit_log WHERE seq = 5",
        "UPDATE audit_log SET seq = -(seq - 1) WHERE seq > 5",
        "UPDATE audit_log SET seq = -seq WHERE seq < 0",
        "UPDATE audit_head SET seq = seq - 1",
    )
    result = _agree(pristine)
    assert (result.ok, result.first_bad_entry) == (False, 5), result.problem


def _swap(a: int, b: int) -> list[tuple[str, dict[str, object]]]:
    return [
        ("UPDATE audit_log SET seq = -1 WHERE seq = :a", {"a": a}),
        ("UPDATE audit_log SET seq = :a WHERE seq = :b", {"a": a, "b": b}),
        ("UPDATE audit_log SET seq = :b WHERE seq = -1", {"b": b}),
    ]


@pytest.mark.parametrize(("a", "b"), [(1, 2), (3, 9), (N - 1, N)])
def test_swapped_entries_are_named(pristine: Scratch, a: int, b: int) -> None:
    pristine.sql(*_swap(a, b))
    result = _agree(pristine)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, a, "link"), result.problem


def _forged_row(seq: int, prev_hash: str) -> dict[str, object]:
    """A plausible entry with a correctly computed hash: the intruder knows the algorithm."""
    values = _entry(3).columns(seq)
    return {**values, "prev_hash": prev_hash, "entry_hash": entry_hash_of(prev_hash, values)}


def _insert(row: dict[str, object]) -> tuple[str, dict[str, object]]:
    names = ", ".join(row)
    return (f"INSERT INTO audit_log ({names}) VALUES ({', '.join(':' + n for n in row)})", row)


@pytest.mark.parametrize("position", [1, 7, N])
def test_an_inserted_entry_is_named(pristine: Scratch, position: int) -> None:
    prev = GENESIS if position == 1 else str(pristine.value("entry_hash", position - 1))
    forged = _forged_row(position, prev)
    pristine.sql(
        ("UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= :p", {"p": position}),
        "UPDATE audit_log SET seq = -seq WHERE seq < 0",
        _insert(forged),
    )
    result = _agree(pristine)
    assert (result.ok, result.entries, result.first_bad_entry, result.kind) == (
        False,
        N + 1,
        position,
        "inserted",
    ), result.problem


def test_an_entry_appended_behind_facegates_back_is_named(pristine: Scratch) -> None:
    forged = _forged_row(N + 1, str(pristine.value("entry_hash", N)))
    pristine.sql(_insert(forged))
    result = _agree(pristine)
    assert (result.ok, result.first_bad_entry, result.kind) == (False, N + 1, "inserted")
    with pytest.raises(FacegateError) as raised, pristine.sessions.begin() as session:
        append_entry(session, _entry(1))
    assert raised.value.code is ErrorCode.AUDIT_CHAIN_BROKEN


def test_a_cut_tail_stays_visible_after_new_entries(pristine: Scratch) -> None:
    pristine.sql(("DELETE FROM audit_log WHERE seq > :s", {"s": N - 2}))
    assert (_agree(pristine).first_bad_entry, _agree(pristine).kind) == (N - 1, "missing")
    with pristine.sessions.begin() as session:
        assert append_entry(session, _entry(1)).seq == N + 1  # chained from the head, not the cut log
    assert _agree(pristine).first_bad_entry == N - 1


def test_a_removed_head_is_reported_and_blocks_appends(pristine: Scratch) -> None:
    pristine.sql("DELETE FROM audit_head")
    result = _agree(pristine)
    assert (result.ok, result.kind) == (False, "head")
    with pytest.raises(FacegateError) as raised, pristine.sessions.begin() as session:
        append_entry(session, _entry(1))
    assert raised.value.code is ErrorCode.AUDIT_CHAIN_BROKEN


def _random_tampering(rng: random.Random, catalog: Scratch) -> None:
    """One to three tamperings of random kinds at random places."""
    for _ in range(rng.randint(1, 3)):
        seqs = list(catalog.conn.execute(text("SELECT seq FROM audit_log ORDER BY seq")).scalars())
        if not seqs:
            return
        seq = rng.choice(seqs)
        kind = rng.choice(["edit", "delete", "swap", "reseq", "head", "forge"])
        if kind == "edit":
            catalog.sql(_edit(catalog, rng.choice(EDITABLE), seq))
        elif kind == "delete":
            catalog.sql(("DELETE FROM audit_log WHERE seq = :seq", {"seq": seq}))
        elif kind == "swap" and len(seqs) > 1:
            catalog.sql(*_swap(seq, rng.choice([s for s in seqs if s != seq])))
        elif kind == "reseq":
            new = max(seqs) + rng.randint(1, 5)
            catalog.sql(("UPDATE audit_log SET seq = :new WHERE seq = :seq", {"new": new, "seq": seq}))
        elif kind == "head":
            catalog.sql(("UPDATE audit_head SET seq = seq + :d", {"d": rng.choice([-2, -1, 1])}))
        else:
            catalog.sql(_insert(_forged_row(max(seqs) + 1, str(catalog.value("entry_hash", max(seqs))))))


def test_fast_and_naive_verifiers_agree_on_many_tampered_catalogs(pristines: Prepared[None], backend: str) -> None:
    rng = random.Random(20200610)
    outcomes: set[str | None] = set()
    for _case in range(80):
        with pristines.scratch(backend) as (catalog, _):
            _random_tampering(rng, catalog)
            outcomes.add(_agree(catalog).kind)
    assert {"edited", "missing", "link", "inserted"} <= outcomes


def test_export_is_jsonl_that_an_officer_can_rehash(pristine: Scratch) -> None:
    with pristine.sessions() as session:
        out = io.StringIO()
        assert export_jsonl(session, out) == N
        page = read_entries(session, after_seq=4, limit=3)
        tail = io.StringIO()
        assert export_jsonl(session, tail, since_seq=10) == N - 10
        anchor = head(session)
    prev = GENESIS
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    for line in lines:  # the recipe of docs/governance.md, format 2
        assert line["format"] == 2 and line["redacted_at"] is None
        part = {"probe_sha256": line["probe_sha256"], "results": line["results"], "salt": line["salt"]}
        assert hashlib.sha256(canonical_json(part)).hexdigest() == line["redactable_digest"]
        unhashed = ("prev_hash", "entry_hash", "probe_sha256", "results", "salt", "redacted_at")
        body = {k: v for k, v in line.items() if k not in unhashed}
        assert line["prev_hash"] == prev and chain_hash(prev, body) == line["entry_hash"]
        prev = line["entry_hash"]
    assert anchor is not None and anchor.entry_hash == prev
    assert [e["seq"] for e in page] == [5, 6, 7]
    assert [json.loads(x)["seq"] for x in tail.getvalue().splitlines()] == [11, 12]
    assert lines[1]["results"] == [
        {"face_id": "face-2-0", "subject": None, "similarity": 80.0},
        {"face_id": "face-2-1", "subject": "subject-1", "similarity": 80.0 + 1 / 3.0},
    ]


def test_appends_share_the_callers_transaction(catalog: tuple[Engine, sessionmaker[Session]]) -> None:
    _, sessions = catalog
    with pytest.raises(RuntimeError), sessions.begin() as session:
        append_entry(session, _entry(1))
        raise RuntimeError("the operation failed after its audit entry was written")
    with sessions() as session:
        assert head(session) is None and verify(session).entries == 0
    with sessions.begin() as session:
        first, second = append_entry(session, _entry(1)), append_entry(session, _entry(2))
    assert (first.seq, second.seq) == (1, 2)
    with sessions() as session:
        assert verify(session).ok


def test_naive_times_and_non_json_details_are_refused(catalog: tuple[Engine, sessionmaker[Session]]) -> None:
    from datetime import datetime

    _, sessions = catalog
    with sessions.begin() as session:
        with pytest.raises(FacegateError):
            append_entry(session, replace(_entry(1), time=datetime(2020, 7, 1)))
        with pytest.raises(ValueError):
            append_entry(session, replace(_entry(1), details={"fmr": float("nan")}))


def _append_many(url: str, worker: int, count: int) -> None:
    """Run in a separate process: append `count` entries, one transaction each."""
    engine = open_engine(url)
    sessions = session_factory(engine)
    for i in range(count):
        with sessions.begin() as session:
            append_entry(session, replace(_entry(i + 1), request_id=f"worker{worker}-{i}"))
    engine.dispose()


def test_concurrent_writers_in_separate_processes_keep_one_chain(
    catalog: tuple[Engine, sessionmaker[Session]],
) -> None:
    """Three processes, each its own engine (on a server: its own connections, as three
    hosts would have), append at once: the database serialises them into one chain."""
    import multiprocessing

    engine, _ = catalog
    url = engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(url, w, 15)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    _, sessions = catalog
    with sessions() as session:
        fast, naive = verify(session), verify_naive(session)
        request_ids = {e["request_id"] for e in read_entries(session, limit=100)}
    assert (fast.ok, fast.entries, naive.ok) == (True, 45, True)
    assert len(request_ids) == 45
