"""Checking the audit chain: a fast streaming verifier and a slow, obvious one that must agree.

`verify` walks the stored entries once, in seq order, keeping only the last two hashes.
`verify_naive` loads everything, recomputes the chain as it should be from genesis, and
compares (pymerkle keeps `_get_root_naive` beside its fast root for the same reason): a
test runs both over many tampered databases and requires the same answer.

The first bad entry is named by kind:
- "missing":  seq N is absent (deleted, or the tail cut off below the recorded head);
- "inserted": entry N does not belong (the next entry links past it, or it lies beyond the head);
- "link":     entry N does not link to entry N-1 (moved, swapped, or its prev_hash edited);
- "edited":   entry N's content does not match its own hash (or, in format 2, its
              redactable part does not match its digest);
- "head":     the head record is missing or disagrees with the last entry;
- "wiped":    the log is empty while the catalog holds tenants, collections or faces;
- "truncated": the log ends before the last checkpoint stored in the catalog;
- "rewritten": the entry a stored checkpoint names no longer has the hash it signed;
- "redacted":  entry N was redacted, but no retention run's entry (later in the chain)
               claims it: content blanked outside retention.

Verification only reads. Redacted entries (retention) verify; they are reported by seq
ranges, so a reader sees where content was removed and can match it with the retention
runs' own entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.governance.audit import (
    GENESIS,
    Anchor,
    chain_hash,
    content_problem,
    entry_body,
    entry_count,
    head,
    redactable_digest,
    stored_field,
    stored_rows,
)
from facegate.store.governance_tables import AuditCheckpointRow, AuditLogRow, TenantRow
from facegate.store.tables import CollectionRow, FaceRow


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted sequence numbers as closed ranges: [1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    ranges: list[list[int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_entry: int | None
    problem: str | None
    kind: str | None
    head: Anchor | None
    redacted: tuple[int, ...] = field(default=())  # seqs of redacted entries among those checked
    checkpoint: dict[str, Any] | None = None  # the checkpoint checked against, when one was given

    def to_dict(self) -> dict[str, Any]:
        """The shape of `facegate audit verify --json` and `GET /v1/audit/verify`."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_entry": self.first_bad_entry,
            "problem": self.problem,
            "kind": self.kind,
            "head": None if self.head is None else {"seq": self.head.seq, "entry_hash": self.head.entry_hash},
            "redactions": {"count": len(self.redacted), "ranges": seq_ranges(self.redacted)},
            **({} if self.checkpoint is None else {"checkpoint": self.checkpoint}),
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
    problem = content_problem(row)
    if problem is not None:
        return seq, "edited", f"entry {seq} was edited: {problem}"
    return None


def _head_finding(anchor: Anchor | None, count: int, last_hash: str) -> _Finding | None:
    """Compare an intact chain of `count` entries with the recorded head."""
    if anchor is None:
        if count == 0:
            return None
        return count, "head", f"the audit head record is missing (it should name entry {count})"
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


def _catalog_holds_data(session: Session) -> bool:
    return any(
        session.execute(select(column).limit(1)).first() is not None
        for column in (TenantRow.name, CollectionRow.collection_id, FaceRow.row_id)
    )


def stored_document(text: str) -> dict[str, Any] | None:
    """A checkpoint row's document, or None where it is not a JSON object (edited by hand)."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def last_checkpoint(session: Session) -> dict[str, Any] | None:
    """The latest checkpoint stored in the catalog, as its JSON document (`{"seq": None}`,
    which every reader reports as unreadable, where it is no JSON object)."""
    row = session.execute(
        select(AuditCheckpointRow.document).order_by(AuditCheckpointRow.checkpoint_id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return stored_document(row.document) or {"seq": None}


def _stored_hash(session: Session, seq: int) -> str | None:
    return session.execute(select(AuditLogRow.entry_hash).where(AuditLogRow.seq == seq)).scalar_one_or_none()


def claimed_redactions(row: Mapping[Any, Any]) -> set[int]:
    """The seqs a retention run's entry says it redacted (empty for any other entry)."""
    if row["operation"] != "retention":
        return set()
    details = stored_field(row, "details")
    ranges = details.get("redacted_ranges") if isinstance(details, dict) and not details.get("dry_run") else None
    if not isinstance(ranges, list):
        return set()
    return {
        seq for pair in ranges if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) for x in pair)
        for seq in range(pair[0], pair[1] + 1)
    }  # fmt: skip


def _log_finding(
    session: Session, anchor: Anchor | None, count: int, last_hash: str, unclaimed: set[int]
) -> _Finding | None:
    """After an intact chain of `count` entries: the head, a wipe, the last stored
    checkpoint, redactions that no retention run claims."""
    if count == 0 and anchor is None and _catalog_holds_data(session):
        return 1, "wiped", "the audit log is empty, but the catalog holds tenants, collections or faces"
    finding = _head_finding(anchor, count, last_hash)
    if finding is not None:
        return finding
    checkpoint = last_checkpoint(session)
    if checkpoint is None:
        return _unclaimed_finding(unclaimed)
    seq = checkpoint.get("seq")
    if not isinstance(seq, int) or seq < 0:
        return None, "checkpoint", "the last checkpoint stored in the catalog is unreadable"
    if count == 0 and seq > 0:
        return 1, "wiped", f"the audit log is empty, but the last checkpoint signed {seq} entries"
    if count < seq:
        return (
            count + 1,
            "truncated",
            f"the log ends at entry {count}, before the last checkpoint (entry {seq})",
        )
    if seq > 0 and _stored_hash(session, seq) != checkpoint.get("head"):
        return seq, "rewritten", f"entry {seq} no longer has the hash the last checkpoint signed"
    return _unclaimed_finding(unclaimed)


def _unclaimed_finding(unclaimed: set[int]) -> _Finding | None:
    if not unclaimed:
        return None
    first = min(unclaimed)
    return first, "redacted", f"entry {first} was redacted, but no retention run records redacting it"


def _result(
    session: Session, finding: _Finding | None, anchor: Anchor | None, redacted: list[int]
) -> VerifyResult:
    entries = entry_count(session)
    if finding is None:
        return VerifyResult(True, entries, None, None, None, anchor, tuple(redacted))
    bad, kind, problem = finding
    return VerifyResult(False, entries, bad, problem, kind, anchor, tuple(redacted))


def verify(session: Session) -> VerifyResult:
    """Walk the chain once, streaming; stop at the first bad entry."""
    anchor = head(session)
    expected, prev, prev_prev = 1, GENESIS, None
    redacted: list[int] = []
    claimed: set[int] = set()
    for row in stored_rows(session):
        finding = _row_finding(row, expected, prev, prev_prev, chain_hash(row["prev_hash"], entry_body(row)))
        if finding is not None:
            return _result(session, finding, anchor, redacted)
        if row["format"] is not None and row["redacted_at"] is not None:
            redacted.append(row["seq"])
        claimed |= claimed_redactions(row)
        expected, prev, prev_prev = expected + 1, row["entry_hash"], prev
    unclaimed = set(redacted) - claimed
    return _result(session, _log_finding(session, anchor, expected - 1, prev, unclaimed), anchor, redacted)


def _ideal_digest(row: Mapping[Any, Any]) -> str | None:
    """The digest a format-2 entry ought to carry: its content's, or, once redacted (and
    emptied), the one it kept."""
    if row["redacted_at"] is None:
        return redactable_digest(row)
    emptied = all(stored_field(row, name) is None for name in ("probe_sha256", "results", "salt"))
    return row["redactable_digest"] if emptied else None


def verify_naive(session: Session) -> VerifyResult:
    """Recompute the whole chain as it ought to be, then look for the first difference."""
    anchor = head(session)
    rows = list(stored_rows(session))
    ideal = [GENESIS]
    digests: list[str | None] = [None]
    for position, row in enumerate(rows, start=1):
        body = {**entry_body(row), "seq": position}
        digests.append(row["redactable_digest"] if row["format"] is None else _ideal_digest(row))
        if row["format"] is not None:
            body["redactable_digest"] = digests[-1]
        ideal.append(chain_hash(ideal[-1], body))
    redacted = []
    for position, row in enumerate(rows, start=1):
        if (row["seq"], row["prev_hash"], row["entry_hash"], row["redactable_digest"]) == (
            position,
            ideal[position - 1],
            ideal[position],
            digests[position],
        ):
            if row["format"] is not None and row["redacted_at"] is not None:
                redacted.append(position)
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
        return _result(session, finding, anchor, redacted)
    claimed = set().union(*(claimed_redactions(row) for row in rows))
    unclaimed = set(redacted) - claimed
    return _result(session, _log_finding(session, anchor, len(rows), ideal[-1], unclaimed), anchor, redacted)
