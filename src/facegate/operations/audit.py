"""Reading the audit trail: verify the chain, export it, the transparency report, and
its signed checkpoints and inclusion proofs.

Reading the trail is an operation like any other: it is itself recorded (after the read,
so `verify` checks the chain as it was found). What is read depends on the role the gate
admitted it under (the rule of its decision): `oversight` (and the local operator, who
holds every role) reads the whole installation's trail and report; `auditor` reads only
its own tenant's entries and report; anyone else is refused (ROLE_REQUIRED). `verify`
walks the whole chain for either role, since a chain can only be checked whole; it
answers with counts and hashes, never another tenant's entries.
Signed checkpoints and inclusion proofs live here too; a chain that cannot take
its entry (its head is gone) still gets its `verify` finding reported.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.governance.permissions import Role
from facegate.gate import Caller
from facegate.governance import (
    AuditEntry,
    Operation,
    TransparencyReport,
    VerifyResult,
    append_entry,
    export_jsonl,
    read_entries,
    transparency_report,
    verify,
)
from facegate.governance.audit import head as chain_head
from facegate.governance.audit_verify import last_checkpoint
from facegate.governance.checkpoints import (
    Finding,
    consistency_proof,
    create_checkpoint,
    extension_finding,
    inclusion_proof,
    public_key_text,
    read_checkpoint,
    stored_checkpoint,
)

log = logging.getLogger(__name__)


def scope(record: AuditEntry) -> str | None:
    """Whose entries the admitted reader may see: None (all) under oversight, else its own."""
    return None if record.rule == f"role:{Role.OVERSIGHT.value}" else record.tenant


def _record_if_possible(session: Session, entry: AuditEntry) -> None:
    """Record a read; a broken chain refuses the entry, and the reader still gets the finding."""
    try:
        append_entry(session, entry)
    except FacegateError as exc:
        if exc.code is not ErrorCode.AUDIT_CHAIN_BROKEN:
            raise


def verify_chain(
    engine: Facegate, caller: Caller, checkpoint: dict[str, Any] | None = None, public_key: str | None = None
) -> VerifyResult:
    """Verify the chain and that the log extends the signed checkpoints it can find.

    `checkpoint` is a file its keeper gave. Without one, the newest checkpoint `serve` wrote
    to FACEGATE_CHECKPOINT_DIR stands in for it where that is set (a directory the database's
    administrators cannot write, so a consistent rewrite of the log and of the catalog's
    checkpoint rows still shows), and then the latest checkpoint stored in the catalog. Each
    must be signed by `public_key` when given; those found rather than given, failing that,
    by the configured signing key (as `chain_state` checks it), so a checkpoint replaced by
    one signed with an intruder's key is reported rather than trusted.

    The walk over the whole chain runs, once the gate has admitted the reader, in a snapshot
    that holds no write lock (a long log must not stop every other operation meanwhile);
    the read is then recorded in a short transaction of its own."""
    engine.gate.admit(caller, Operation.AUDIT_READ)
    pinned = public_key if public_key is not None or checkpoint is not None else _configured_public_key(engine)
    kept = None if checkpoint is not None else _newest_kept_checkpoint(engine)
    external = checkpoint if kept is None else kept.document
    with engine.read_sessions.begin() as session:
        result = verify(session)
        finding: Finding | None = None
        if kept is not None and kept.unreadable is not None:
            finding = (None, "checkpoint_invalid", kept.unreadable) if result.ok else None
        elif external is not None:
            summary = {k: external.get(k) for k in ("seq", "head", "signed_at", "checkpoint_hash", "public_key")}
            result = replace(result, checkpoint=summary if kept is None else {**summary, "file": str(kept.path)})
            finding = extension_finding(session, external, result.entries, pinned) if result.ok else None
            if finding is not None and kept is not None:  # its name, not the host's directory, for a reader
                finding = finding[0], finding[1], finding[2].replace("the checkpoint", f"the kept {kept.path.name}", 1)
        if finding is None and checkpoint is None and result.ok and (stored := last_checkpoint(session)) is not None:
            finding = _not_extended(session, result, stored, pinned)
            if finding is not None:
                finding = finding[0], finding[1], finding[2].replace(
                    "the checkpoint", "the last checkpoint stored in the catalog", 1)
        if finding is not None:
            bad, kind, problem = finding
            result = replace(result, ok=False, first_bad_entry=bad, kind=kind, problem=problem)

    def act(session: Session, record: AuditEntry) -> VerifyResult:
        details: dict[str, Any] = {"verified_ok": result.ok, "entries": result.entries, "kind": result.kind}
        if result.checkpoint is not None:
            details["checkpoint_seq"] = result.checkpoint.get("seq")
        _record_if_possible(session, record.with_details(**details))
        return result

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


@dataclass(frozen=True, slots=True)
class KeptCheckpoint:
    """The newest `checkpoint-<seq>.json` in FACEGATE_CHECKPOINT_DIR: its document, or why it
    cannot be read (a file there that is not a checkpoint is itself a finding)."""

    path: Path
    document: dict[str, Any] | None
    unreadable: str | None = None


def _newest_kept_checkpoint(engine: Facegate) -> KeptCheckpoint | None:
    folder = engine.settings.checkpoint_dir
    if folder is None or not folder.is_dir():
        return None
    numbered = [(int(p.stem.removeprefix("checkpoint-")), p) for p in folder.glob("checkpoint-*.json")
                if p.stem.removeprefix("checkpoint-").isdigit()]
    if not numbered:
        return None
    path = max(numbered)[1]
    try:
        return KeptCheckpoint(path, read_checkpoint(path))
    except FacegateError as exc:
        why = "it is not a checkpoint" if exc.code is ErrorCode.CHECKPOINT_INVALID else "it cannot be read"
        return KeptCheckpoint(path, None, f"the newest kept checkpoint, {path.name}, is unreadable: {why}")


def _configured_public_key(engine: Facegate) -> str | None:
    """The public half of FACEGATE_AUDIT_SIGNING_KEY, when one is configured and this process
    may read it. A verifier that cannot read the private key still verifies, without a pinned
    key (as before one was configured), and says so in the log."""
    try:
        key = engine.signing_key
    except FacegateError as exc:
        log.warning("checkpoints verified without a pinned key: %s", exc.message)
        return None
    return None if key is None else public_key_text(key.public_key())


# Kinds of `verify` that are about the last stored checkpoint rather than one entry.
_CHECKPOINT_KINDS = frozenset({"wiped", "truncated", "rewritten", "checkpoint"})


@dataclass(frozen=True, slots=True)
class ChainState:
    """The chain as `verify` found it, the latest signed checkpoint stored in the catalog
    (None: none was signed), and why the log does not extend that checkpoint (None: it does)."""

    verified: VerifyResult
    checkpoint: dict[str, Any] | None
    not_extended: Finding | None


def _not_extended(session: Session, result: VerifyResult, document: dict[str, Any], pinned: str | None) -> Finding | None:
    """Does the log extend `document`? As `audit verify --checkpoint` decides it, and a break at
    or before the checkpoint's last entry means it does not either."""
    seq = document.get("seq")
    if result.kind in _CHECKPOINT_KINDS:
        return result.first_bad_entry, str(result.kind), str(result.problem)
    if not result.ok and result.first_bad_entry is not None and (not isinstance(seq, int) or result.first_bad_entry <= seq):
        return result.first_bad_entry, str(result.kind), str(result.problem)
    try:
        return extension_finding(session, document, result.entries, pinned)
    except FacegateError as exc:
        if exc.code is not ErrorCode.AUDIT_CHAIN_BROKEN:
            raise
        return None, "missing", exc.message


def chain_state(engine: Facegate, caller: Caller) -> ChainState:
    """Verify the chain and whether it extends the latest stored checkpoint, in one recorded
    read. With a signing key configured the checkpoint must be signed by it (a checkpoint row
    replaced by one signed with an intruder's key does not count)."""
    pinned = _configured_public_key(engine)
    engine.gate.admit(caller, Operation.AUDIT_READ)  # as verify_chain: walk in a snapshot, record after
    with engine.read_sessions.begin() as session:
        result = verify(session)
        document = last_checkpoint(session)
        finding = None if document is None else _not_extended(session, result, document, pinned)
    summary = None if document is None else {
        k: document.get(k) for k in ("seq", "head", "signed_at", "checkpoint_hash", "public_key")
    }  # fmt: skip

    def act(session: Session, record: AuditEntry) -> ChainState:
        _record_if_possible(session, record.with_details(
            action="chain_state", verified_ok=result.ok, entries=result.entries, kind=result.kind,
            checkpoint_seq=None if document is None else document.get("seq"),
            extends_checkpoint=None if document is None else finding is None,
        ))  # fmt: skip
        return ChainState(result, summary, finding)

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def _key(engine: Facegate) -> Ed25519PrivateKey:
    key = engine.signing_key
    if key is None:
        raise FacegateError(
            ErrorCode.AUDIT_SIGNING_KEY_MISSING,
            "no audit signing key: create one with `facegate audit keygen --out FILE` "
            "and set FACEGATE_AUDIT_SIGNING_KEY",
        )
    return key


def checkpoint_is_due(engine: Facegate) -> bool:
    """Whether entries were appended since the last checkpoint (the service's schedule signs
    nothing, and records nothing, while the log stands still)."""
    with engine.sessions() as session:
        last, anchor = last_checkpoint(session), chain_head(session)
    return last is None or anchor is None or last.get("seq") != anchor.seq


def checkpoint(engine: Facegate, caller: Caller, out: Path | None = None) -> dict[str, Any]:
    """Sign the log as it stands, its own request's entry included, and store the checkpoint;
    keep it in FACEGATE_CHECKPOINT_DIR as well where that is set (whoever signs, `serve` on
    its schedule or the CLI), so `verify` there always checks the newest."""
    key = _key(engine)

    def act(session: Session, record: AuditEntry) -> dict[str, Any]:
        append_entry(session, record.with_details(action="checkpoint"))
        return create_checkpoint(session, key, engine.now())

    document = engine.gate.run_recorded(caller, Operation.AUDIT_CHECKPOINT, act)
    if out is not None:
        write_checkpoint(document, out)
    folder = engine.settings.checkpoint_dir
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_checkpoint(document, folder / f"checkpoint-{document['seq']:012d}.json")
        except OSError as exc:  # signed and stored already: the copy is what failed, said loudly
            log.error("checkpoint at entry %d not kept in %s: %s", document["seq"], folder, exc.strerror)
    return document


def write_checkpoint(document: dict[str, Any], out: Path) -> None:
    """Write atomically, so a reader (a sync to the oversight board) never sees half a file."""
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")  # workers may write at once
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    partial.replace(out)


def latest_checkpoint(engine: Facegate, caller: Caller) -> dict[str, Any]:
    def act(session: Session, record: AuditEntry) -> dict[str, Any] | None:
        found = last_checkpoint(session)
        append_entry(session, record.with_details(action="read_checkpoint"))
        return found

    found = engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)
    if found is None:
        raise FacegateError(ErrorCode.CHECKPOINT_NOT_FOUND, "no checkpoint has been signed yet")
    return found


def prove(
    engine: Facegate, caller: Caller, seq: int, checkpoint_document: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An inclusion proof of entry `seq` against a checkpoint (default: the latest stored)."""

    def act(session: Session, record: AuditEntry) -> dict[str, Any]:
        document = checkpoint_document if checkpoint_document is not None else last_checkpoint(session)
        if document is None:
            raise FacegateError(ErrorCode.CHECKPOINT_NOT_FOUND, "no checkpoint has been signed yet")
        proof = inclusion_proof(session, seq, document)
        entries = read_entries(session, after_seq=seq - 1, limit=1, tenant=scope(record))
        if not entries or entries[0]["seq"] != seq:  # the reader may not see it (or it is gone)
            raise FacegateError(ErrorCode.NOT_FOUND, f"no audit entry {seq}", seq=seq)
        append_entry(session, record.with_details(action="prove", seq=seq, checkpoint_seq=document.get("seq")))
        return {**proof, "entry": entries[0]}

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def prove_consistency(
    engine: Facegate, caller: Caller, first: dict[str, Any] | str, second: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A consistency proof from the checkpoint `first` (a document, or the `checkpoint_hash`
    of one stored in the catalog) to `second` (default: the latest stored). As `verify_chain`,
    it reads in a snapshot without the write lock, then records the read."""
    engine.gate.admit(caller, Operation.AUDIT_READ)
    with engine.read_sessions.begin() as session:
        earlier = stored_checkpoint(session, first) if isinstance(first, str) else first
        later = second if second is not None else last_checkpoint(session)
        if earlier is None or later is None:
            raise FacegateError(ErrorCode.CHECKPOINT_NOT_FOUND, "no such checkpoint is stored")
        proof = consistency_proof(session, earlier, later)

    def act(session: Session, record: AuditEntry) -> dict[str, Any]:
        append_entry(session, record.with_details(action="prove_consistency", first_seq=proof["first"]["seq"],
                                                  second_seq=proof["second"]["seq"]))
        return proof

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def export(engine: Facegate, caller: Caller, out: TextIO, since_seq: int | None = None, limit: int | None = None) -> int:
    def act(session, record) -> int:  # type: ignore[no-untyped-def]
        count = export_jsonl(session, out, since_seq=since_seq, limit=limit, tenant=scope(record))
        append_entry(session, record.with_details(exported=count, since_seq=since_seq, scope=scope(record) or "all"))
        return count

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def page(engine: Facegate, caller: Caller, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    def act(session, record) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        rows = read_entries(session, after_seq=after_seq, limit=limit, tenant=scope(record))
        append_entry(session, record.with_details(
            after_seq=after_seq, returned=len(rows), scope=scope(record) or "all"
        ))
        return rows

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)


def report(
    engine: Facegate, caller: Caller, since: datetime | None = None, until: datetime | None = None
) -> TransparencyReport:
    def act(session, record) -> TransparencyReport:  # type: ignore[no-untyped-def]
        result = transparency_report(session, since=since, until=until, tenant=scope(record))
        append_entry(session, record.with_details(scope=scope(record) or "all"))
        return result

    return engine.gate.run_recorded(caller, Operation.AUDIT_READ, act)
