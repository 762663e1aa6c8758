"""Signed checkpoints of the audit log, and proofs against them.

A checkpoint says, under an Ed25519 signature whose key lives outside the catalog: "the
log had `seq` entries, the last with hash `head`, and the Merkle root of all of them was
`merkle_root`, at `signed_at`; the checkpoint before this one was `previous`". Like
CloudTrail's digest files each checkpoint names the previous one, and a copy kept by
someone else (an oversight board) pins the log: rewriting, truncating or wiping any entry
up to `seq` can no longer go unnoticed without the signing key (`extends`).

The signature covers the canonical JSON of the signed fields; `checkpoint_hash` is the
SHA-256 of the same bytes, which the next checkpoint names as `previous`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import merkle
from facegate.governance.audit import canonical_json, head
from facegate.governance.audit_verify import last_checkpoint, stored_document
from facegate.store.governance_tables import AuditCheckpointRow, AuditLogRow

TYPE = "facegate-audit-checkpoint/1"
SIGNED_FIELDS = ("type", "seq", "head", "merkle_root", "signed_at", "previous")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64: what an oversight board pins."""
    return _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def generate_key(out: Path) -> str:
    """Write a new private key (PEM, PKCS#8, mode 0600; never overwrites); its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"{out} exists: refusing to overwrite a key", path=str(out)
        ) from None
    except OSError as exc:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"cannot write {out}: {exc.strerror}", path=str(out)) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return public_key_text(key.public_key())


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key named by FACEGATE_AUDIT_SIGNING_KEY; a clear error for anything else."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise FacegateError(
            ErrorCode.AUDIT_SIGNING_KEY_INVALID, f"cannot read the audit signing key {path}: {exc.strerror}"
        ) from None
    except (ValueError, TypeError):
        raise FacegateError(
            ErrorCode.AUDIT_SIGNING_KEY_INVALID, f"{path} is not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FacegateError(ErrorCode.AUDIT_SIGNING_KEY_INVALID, f"{path} is not an Ed25519 key")
    return key


def entry_hashes(session: Session, upto: int) -> list[str]:
    """Entry hashes of seq 1..upto, in order; AUDIT_CHAIN_BROKEN when one is missing."""
    rows = session.execute(
        select(AuditLogRow.seq, AuditLogRow.entry_hash).where(AuditLogRow.seq <= upto).order_by(AuditLogRow.seq)
    ).all()
    if [r.seq for r in rows] != list(range(1, upto + 1)):
        raise FacegateError(
            ErrorCode.AUDIT_CHAIN_BROKEN, f"the audit log does not hold entries 1..{upto}; run `facegate audit verify`"
        )
    return [r.entry_hash for r in rows]


def merkle_root(hashes: list[str]) -> str:
    return merkle.root([merkle.leaf_hash(i, h) for i, h in enumerate(hashes, start=1)]).hex()


def _signed_part(document: dict[str, Any]) -> dict[str, Any]:
    return {k: document.get(k) for k in SIGNED_FIELDS}


def checkpoint_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(_signed_part(document))).hexdigest()


def create_checkpoint(session: Session, key: Ed25519PrivateKey, now: datetime) -> dict[str, Any]:
    """Sign the log as it stands in `session` and store the checkpoint (caller's transaction).

    Only a log that extends the last stored checkpoint is signed: one rewritten or cut below
    it (by whoever holds the database, not the key) is refused with AUDIT_CHAIN_BROKEN, so the
    key never vouches for a rewrite, and the scheduled signing fails loudly until it is seen to."""
    anchor = head(session)
    seq = 0 if anchor is None else anchor.seq
    hashes = entry_hashes(session, seq)
    previous = last_checkpoint(session)
    if previous is not None:
        before = previous.get("seq")
        if not isinstance(before, int) or before > seq or merkle_root(hashes[:before]) != previous.get("merkle_root"):
            raise FacegateError(
                ErrorCode.AUDIT_CHAIN_BROKEN,
                f"the audit log no longer extends the last checkpoint (entry {before}): nothing signed; "
                "run `facegate audit verify`",
            )
    signed = {
        "type": TYPE,
        "seq": seq,
        "head": hashes[-1] if hashes else None,
        "merkle_root": merkle_root(hashes),
        "signed_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "previous": None if previous is None else previous.get("checkpoint_hash"),
    }
    document = {
        **signed,
        "signature": _b64(key.sign(canonical_json(signed))),
        "public_key": public_key_text(key.public_key()),
        "checkpoint_hash": hashlib.sha256(canonical_json(signed)).hexdigest(),
    }
    session.execute(
        insert(AuditCheckpointRow).values(
            seq=seq, checkpoint_hash=document["checkpoint_hash"], document=json.dumps(document, sort_keys=True)
        )
    )
    return document


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file as JSON; CHECKPOINT_INVALID when it is not one."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    except ValueError:
        raise FacegateError(ErrorCode.CHECKPOINT_INVALID, f"{path} is not JSON", path=str(path)) from None
    if not isinstance(document, dict):
        raise FacegateError(ErrorCode.CHECKPOINT_INVALID, f"{path} is not a checkpoint", path=str(path))
    return document


def signature_problem(document: dict[str, Any], public_key: str | None = None) -> str | None:
    """Why `document` is not a checkpoint validly signed (by `public_key`, when given)."""
    if document.get("type") != TYPE or not isinstance(document.get("seq"), int) or document["seq"] < 0:
        return "not a facegate audit checkpoint"
    if public_key is not None and document.get("public_key") != public_key:
        return "signed by another key than the one expected"
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(str(document.get("public_key")), validate=True))
        key.verify(base64.b64decode(str(document.get("signature")), validate=True),
                   canonical_json(_signed_part(document)))  # fmt: skip
    except (ValueError, binascii.Error, InvalidSignature):
        return "its signature does not verify"
    return None


Finding = tuple[int | None, str, str]  # (first bad entry, kind, problem)


def extension_finding(
    session: Session, document: dict[str, Any], entries: int, public_key: str | None = None
) -> Finding | None:
    """Does a log of `entries` intact entries extend the signed checkpoint `document`
    (signed by `public_key`, when the verifier pinned one)?"""
    problem = signature_problem(document, public_key)
    if problem is not None:
        return None, "checkpoint_invalid", f"the checkpoint is invalid: {problem}"
    seq = document["seq"]
    if seq == 0:
        return None
    if entries == 0:
        return 1, "wiped", f"the audit log is empty, but the checkpoint signed {seq} entries"
    if entries < seq:
        return entries + 1, "truncated", f"the log ends at entry {entries}, before the checkpoint's entry {seq}"
    hashes = entry_hashes(session, seq)
    if hashes[-1] != document.get("head") or merkle_root(hashes) != document.get("merkle_root"):
        return (
            seq,
            "rewritten",
            f"entries up to {seq} are not the ones the checkpoint signed: the log was rewritten",
        )
    return None


def inclusion_proof(session: Session, seq: int, document: dict[str, Any]) -> dict[str, Any]:
    """Proof that entry `seq` is in the tree the checkpoint signed, checkable with the entry,
    the path and the checkpoint alone (docs/governance.md shows how)."""
    problem = signature_problem(document)
    if problem is not None:
        raise FacegateError(ErrorCode.CHECKPOINT_INVALID, f"the checkpoint is invalid: {problem}")
    size = document["seq"]
    if not 1 <= seq <= size:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"entry {seq} is not covered by a checkpoint of {size} entries", seq=seq
        )
    hashes = entry_hashes(session, size)
    if merkle_root(hashes) != document.get("merkle_root"):
        raise FacegateError(
            ErrorCode.AUDIT_CHAIN_BROKEN, "the audit log does not extend the checkpoint; run `facegate audit verify`"
        )
    leaves = [merkle.leaf_hash(i, h) for i, h in enumerate(hashes, start=1)]
    return {
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": size,
        "entry_hash": hashes[seq - 1],
        "leaf_hash": leaves[seq - 1].hex(),
        "path": [p.hex() for p in merkle.inclusion_path(leaves, seq - 1)],
        "merkle_root": document["merkle_root"],
        "checkpoint": document,
    }


def consistency_proof(session: Session, first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Proof that the log the checkpoint `second` signed extends the one `first` signed
    (RFC 9162 §2.1.4), checkable with the two checkpoints and the path alone: an oversight
    board that kept `first` learns that nothing up to it was rewritten, without the log."""
    for name, document in (("first", first), ("second", second)):
        problem = signature_problem(document)
        if problem is not None:
            raise FacegateError(ErrorCode.CHECKPOINT_INVALID, f"the {name} checkpoint is invalid: {problem}")
    if first["seq"] == 0:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a checkpoint of the empty log is extended by any log")
    if first["seq"] > second["seq"]:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            f"the first checkpoint ({first['seq']} entries) is later than the second ({second['seq']})",
        )
    hashes = entry_hashes(session, second["seq"])
    if any(merkle_root(hashes[: d["seq"]]) != d.get("merkle_root") for d in (first, second)):
        raise FacegateError(
            ErrorCode.AUDIT_CHAIN_BROKEN, "the audit log does not extend both checkpoints; run `facegate audit verify`"
        )
    leaves = [merkle.leaf_hash(i, h) for i, h in enumerate(hashes, start=1)]
    path = merkle.consistency_path(leaves, first["seq"])
    return {
        "first": {"seq": first["seq"], "merkle_root": first["merkle_root"]},
        "second": {"seq": second["seq"], "merkle_root": second["merkle_root"]},
        "path": [p.hex() for p in path],
        "checkpoints": [first, second],
    }


def stored_checkpoint(session: Session, checkpoint_hash: str) -> dict[str, Any] | None:
    """The checkpoint stored in the catalog under `checkpoint_hash` (what its keeper holds), if any."""
    row = session.execute(
        select(AuditCheckpointRow.document).where(AuditCheckpointRow.checkpoint_hash == checkpoint_hash).limit(1)
    ).first()
    document = None if row is None else stored_document(row.document)
    return document if document is not None and document.get("checkpoint_hash") == checkpoint_hash else None
