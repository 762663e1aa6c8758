"""Checking the audit chain: a fast streaming verifier and a slow, obvious one that must agree.

`verify` walks the stored entries once, in seq order, keeping only the last two hashes.
`verify_naive` loads everything, recomputes the chain as it should be from genesis, and
compares (pymerkle keeps `_get_root_naive` beside its fast root for the same reason): a
test runs both over many tampered databases and requires the same answer.

The first bad entry is named by kind:
- "missing":  seq N is absent (deleted, or the tail cut off below the recorded head);
- "inserted": entry N does not belong (the next entry links past it, or it lies beyond the head);
- "link":     entry N does not link to entry N-1 (moved, swapped, or its prev_hash edited);
- "edited":   entry N's content does not match its own hash;
- "head":     the head record is missing or disagrees with the last entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from facegate.governance.audit import GENESIS, Anchor, chain_hash, entry_body, entry_count, head, stored_rows


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_entry: int | None
    problem: str | None
    kind: str | None
    head: Anchor | None

    def to_dict(self) -> dict[str, Any]:
        """The shape of `facegate audit verify --json` and `GET /v1/audit/verify`."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_entry": self.first_bad_entry,
            "problem": self.problem,
            "kind": self.kind,
            "head": None if self.head is None else {"seq": self.head.seq, "entry_hash": self.head.entry_hash},
        }


_Finding = tuple[int | None, str, str]  # (first bad entry, kind, problem)


def _row_finding(
    row: Mapping[Any, Any], expected_seq: int, prev: str, prev_prev: str | None, recomputed: str
) -> _Finding | None:
    seq = row["seq"]
    if seq > expected_seq:
        return expected_seq, "missing", f"entry {expected_seq} is missing (the next stored entry is {seq})"
    if seq < expected_seq:
        return seq, "inserted", f"entry {seq} does not belong: the chain starts at 1"
    if row["prev_hash"] != prev:
        if prev_prev is not None and row["prev_hash"] == prev_prev:
            return (
                seq - 1,
                "inserted",
                f"entry {seq - 1} was inserted: entry {seq} links past it to the entry before",
            )
        return seq, "link", f"entry {seq} does not link to the entry before it (moved, swapped or edited)"
    if row["entry_hash"] != recomputed:
        return seq, "edited", f"entry {seq} was edited: its content does not match its hash"
    return None


def _head_finding(anchor: Anchor | None, count: int, last_hash: str) -> _Finding | None:
    """Compare an intact chain of `count` entries with the recorded head."""
    if anchor is None:
        return None if count == 0 else (None, "head", "the audit head record is missing")
    if anchor.seq > count:
        return (
            count + 1,
            "missing",
            f"entries {count + 1}..{anchor.seq} are missing (the log ends at {count})",
        )
    if anchor.seq < count:
        return (
            anchor.seq + 1,
            "inserted",
            f"entry {anchor.seq + 1} lies beyond the recorded head ({anchor.seq})",
        )
    if anchor.entry_hash != last_hash:
        return count, "head", f"entry {count} does not match the recorded head hash"
    return None


def _result(session: Session, finding: _Finding | None, anchor: Anchor | None) -> VerifyResult:
    entries = entry_count(session)
    if finding is None:
        return VerifyResult(True, entries, None, None, None, anchor)
    bad, kind, problem = finding
    return VerifyResult(False, entries, bad, problem, kind, anchor)


def verify(session: Session) -> VerifyResult:
    """Walk the chain once, streaming; stop at the first bad entry."""
    anchor = head(session)
    expected, prev, prev_prev = 1, GENESIS, None
    for row in stored_rows(session):
        finding = _row_finding(row, expected, prev, prev_prev, chain_hash(row["prev_hash"], entry_body(row)))
        if finding is not None:
            return _result(session, finding, anchor)
        expected, prev, prev_prev = expected + 1, row["entry_hash"], prev
    return _result(session, _head_finding(anchor, expected - 1, prev), anchor)


def verify_naive(session: Session) -> VerifyResult:
    """Recompute the whole chain as it ought to be, then look for the first difference."""
    anchor = head(session)
    rows = list(stored_rows(session))
    ideal = [GENESIS]
    for position, row in enumerate(rows, start=1):
        ideal.append(chain_hash(ideal[-1], {**entry_body(row), "seq": position}))
    for position, row in enumerate(rows, start=1):
        if (row["seq"], row["prev_hash"], row["entry_hash"]) == (
            position,
            ideal[position - 1],
            ideal[position],
        ):
            continue
        if row["seq"] > position:
            finding: _Finding = (
                position,
                "missing",
                f"entry {position} is missing (the next stored entry is {row['seq']})",
            )
        elif row["seq"] < position:
            finding = (row["seq"], "inserted", f"entry {row['seq']} does not belong: the chain starts at 1")
        elif row["prev_hash"] != ideal[position - 1]:
            if position >= 2 and row["prev_hash"] == ideal[position - 2]:
                finding = (
                    position - 1,
                    "inserted",
                    f"entry {position - 1} was inserted: entry {position} links past it to the entry before",
                )
            else:
                finding = (
                    position,
                    "link",
                    f"entry {position} does not link to the entry before it (moved, swapped or edited)",
                )
        else:
            finding = (
                position,
                "edited",
                f"entry {position} was edited: its content does not match its hash",
            )
        return _result(session, finding, anchor)
    return _result(session, _head_finding(anchor, len(rows), ideal[-1]), anchor)
