"""Merkle inclusion proofs against signed checkpoints, checked by a small verifier written
here from RFC 9162 and docs/governance.md alone: it never calls facegate's verification
code, only hashlib and `cryptography`, and it sees nothing of the log but the proof."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import merkle
from facegate.governance.audit import AuditEntry, MatchRef, append_entry, read_entries
from facegate.governance.checkpoints import consistency_proof, create_checkpoint, inclusion_proof
from facegate.governance.policy import Policy
from facegate.governance.retention import apply_retention
from tests.governance.gov_support import admin_record, at

SIGNED = ("type", "seq", "head", "merkle_root", "signed_at", "previous")


# --- the independent verifier --------------------------------------------------------------
def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """Format 2, as docs/governance.md writes it."""
    if entry["redacted_at"] is None:
        part = {"probe_sha256": entry["probe_sha256"], "results": entry["results"], "salt": entry["salt"]}
        assert sha256(canonical(part)).hex() == entry["redactable_digest"], "content does not match its digest"
    unhashed = {"prev_hash", "entry_hash", "probe_sha256", "results", "salt", "redacted_at"}
    body = {k: v for k, v in entry.items() if k not in unhashed}
    return sha256(b"\x01" + bytes.fromhex(entry["prev_hash"]) + canonical(body)).hex()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def subtree_hash(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Hash of a subtree of `size` leaves holding `leaf` at `index`; PATH(m, D[n]) ends with
    the sibling of the top split, so the path is consumed from its end (RFC 9162 §2.1.3.1)."""
    if size == 1:
        if path:
            raise ValueError("path too long")
        return leaf
    if not path:
        raise ValueError("path too short")
    k = largest_power_of_two_below(size)
    *rest, sibling = path
    if index < k:
        return sha256(b"\x01" + subtree_hash(index, k, leaf, rest) + sibling)
    return sha256(b"\x01" + sibling + subtree_hash(index - k, size - k, leaf, rest))


def proof_holds(proof: dict[str, Any], public_key: str) -> bool:
    """Is the proof's entry in the log the checkpoint signed, by the key we were given?"""
    checkpoint = proof["checkpoint"]
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(
            base64.b64decode(checkpoint["signature"]), canonical({k: checkpoint[k] for k in SIGNED})
        )
    except InvalidSignature:
        return False
    entry = proof["entry"]
    try:
        digest = entry_hash(entry)
    except AssertionError:
        return False
    if digest != entry["entry_hash"]:
        return False
    leaf = sha256(b"\x00" + entry["seq"].to_bytes(8, "big") + bytes.fromhex(digest))
    try:
        root = subtree_hash(entry["seq"] - 1, checkpoint["seq"], leaf, [bytes.fromhex(p) for p in proof["path"]])
    except ValueError:
        return False
    return 1 <= entry["seq"] <= checkpoint["seq"] and root.hex() == checkpoint["merkle_root"]


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) by the RFC's recursive definition."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = largest_power_of_two_below(len(leaves))
    return sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:]))


def consistent(first_size: int, second_size: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2's verification of a consistency proof, step by step as written."""
    if not 0 < first_size <= second_size:
        return False
    if first_size == second_size:
        return not path and first_root == second_root
    if first_size & (first_size - 1) == 0:  # an exact power of two: the first root is a node of the second tree
        path = [first_root, *path]
    if not path:
        return False
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = sha256(b"\x01" + c + fr), sha256(b"\x01" + c + sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = sha256(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def consistency_holds(proof: dict[str, Any], public_key: str, kept: dict[str, Any]) -> bool:
    """Does the checkpoint we `kept` sign the start of the log the later one signs, both signed
    by the key we were given? The proof's first checkpoint must be ours, not one like it."""
    first, second = proof["checkpoints"]
    if any(first.get(k) != kept[k] for k in SIGNED):
        return False
    for checkpoint in (first, second):
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(
                base64.b64decode(checkpoint["signature"]), canonical({k: checkpoint[k] for k in SIGNED})
            )
        except InvalidSignature:
            return False
    return consistent(first["seq"], second["seq"], bytes.fromhex(first["merkle_root"]),
                      bytes.fromhex(second["merkle_root"]), [bytes.fromhex(p) for p in proof["path"]])


# --- the tests -----------------------------------------------------------------------------
def _entry(i: int) -> AuditEntry:
    return AuditEntry(
        time=at("2021-03-01T10:00:00Z") + timedelta(minutes=i), operation="search_image", decision="allow",
        rule="purpose:victim_identification", policy_version="sha256:0123456789abcdef", tenant="polaris",
        purpose="victim_identification", case_reference=f"Fall-{i}-Zürich", probe_sha256=f"{i:064x}",
        results=(MatchRef(f"face-{i}", "subject", 88.0 + i / 3),), threshold=83.0,
    )  # fmt: skip


@pytest.mark.parametrize("size", [*range(1, 18), 31, 32, 33, 64, 100])
def test_the_tree_is_rfc_9162s(size: int) -> None:
    leaves = [merkle.leaf_hash(i, f"{i:064x}") for i in range(1, size + 1)]
    assert merkle.root(leaves) == naive_root(leaves)
    for index in range(size):
        path = merkle.inclusion_path(leaves, index)
        assert subtree_hash(index, size, leaves[index], path) == naive_root(leaves)
        assert merkle.root_from_path(index, size, leaves[index], path) == naive_root(leaves)


def test_every_entry_has_a_proof_that_an_outsider_can_check(catalog: tuple[Engine, sessionmaker[Session]]) -> None:
    _, sessions = catalog
    key = Ed25519PrivateKey.generate()
    with sessions.begin() as session:
        for i in range(1, 14):
            append_entry(session, _entry(i))
        checkpoint = create_checkpoint(session, key, at("2021-03-02T00:00:00Z"))
        for i in range(14, 20):  # the log goes on; proofs stay against the checkpoint
            append_entry(session, _entry(i))
    public_key = checkpoint["public_key"]
    assert checkpoint["seq"] == 13
    with sessions() as session:
        proofs = [inclusion_proof(session, seq, checkpoint) for seq in range(1, 14)]
        for proof in proofs:
            proof["entry"] = read_entries(session, after_seq=proof["seq"] - 1, limit=1)[0]
    for proof in proofs:
        assert proof_holds(json.loads(json.dumps(proof)), public_key), proof["seq"]

    proof = proofs[6]
    forged_path = {**proof, "path": [("00" * 32), *proof["path"][1:]]}
    assert not proof_holds(forged_path, public_key)
    forged_entry = {**proof, "entry": {**proof["entry"], "case_reference": "another case"}}
    assert not proof_holds(forged_entry, public_key)
    forged_results = {**proof, "entry": {**proof["entry"], "results": []}}
    assert not proof_holds(forged_results, public_key)
    other_entry = {**proof, "entry": proofs[7]["entry"]}  # a real entry, with another's path
    assert not proof_holds(other_entry, public_key)
    short = {**proof, "path": proof["path"][:-1]}
    assert not proof_holds(short, public_key)
    foreign_key = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
    assert not proof_holds(proof, foreign_key)
    resigned = {**proof, "checkpoint": {**proof["checkpoint"], "merkle_root": "00" * 32}}
    assert not proof_holds(resigned, public_key)


def test_a_proof_is_refused_when_the_log_no_longer_extends_the_checkpoint(
    catalog: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, sessions = catalog
    key = Ed25519PrivateKey.generate()
    with sessions.begin() as session:
        for i in range(1, 6):
            append_entry(session, _entry(i))
        checkpoint = create_checkpoint(session, key, at("2021-03-02T00:00:00Z"))
    with sessions() as session:
        with pytest.raises(FacegateError) as outside:
            inclusion_proof(session, 6, checkpoint)
        assert outside.value.code is ErrorCode.INVALID_ARGUMENT
        with pytest.raises(FacegateError) as forged:
            inclusion_proof(session, 2, {**checkpoint, "seq": 4})
        assert forged.value.code is ErrorCode.CHECKPOINT_INVALID
    with sessions.begin() as session:
        session.execute(
            text("UPDATE audit_log SET entry_hash = :h WHERE seq = 3"), {"h": "ab" * 32}
        )
    with sessions() as session, pytest.raises(FacegateError) as diverged:
        inclusion_proof(session, 2, checkpoint)
    assert diverged.value.code is ErrorCode.AUDIT_CHAIN_BROKEN


def test_a_proof_still_holds_after_its_entry_was_redacted(
    catalog: tuple[Engine, sessionmaker[Session]], example_policy: Policy
) -> None:
    _, sessions = catalog
    key = Ed25519PrivateKey.generate()
    with sessions.begin() as session:
        for i in range(1, 8):
            append_entry(session, _entry(i))
        checkpoint = create_checkpoint(session, key, at("2021-03-02T00:00:00Z"))
    with sessions.begin() as session:  # two years on: victim_identification keeps 365 days
        record = replace(admin_record("2023-03-02T00:00:00Z"), operation="retention")
        run = apply_retention(session, example_policy, at=at("2023-03-02T00:00:00Z"), record=record)
    assert list(run.redacted) == list(range(1, 8))
    with sessions() as session:
        proof = inclusion_proof(session, 4, checkpoint)
        proof["entry"] = read_entries(session, after_seq=3, limit=1)[0]
    assert proof["entry"]["redacted_at"] is not None and proof["entry"]["results"] is None
    assert proof_holds(proof, checkpoint["public_key"])
    put_back = {**proof, "entry": {**proof["entry"], "probe_sha256": "00" * 32, "redacted_at": None, "salt": "00"}}
    assert not proof_holds(put_back, checkpoint["public_key"])


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100])
def test_every_prefix_has_a_consistency_path_the_rfc_verifier_accepts(size: int) -> None:
    leaves = [merkle.leaf_hash(i, f"{i:064x}") for i in range(1, size + 1)]
    for first in range(1, size + 1):
        path = merkle.consistency_path(leaves, first)
        assert consistent(first, size, naive_root(leaves[:first]), naive_root(leaves), path), (first, size)
        if path:  # any changed hash, or another first tree, is refused
            bent = [bytes(32), *path[1:]]
            assert not consistent(first, size, naive_root(leaves[:first]), naive_root(leaves), bent)
        other = [merkle.leaf_hash(1, "ff" * 32), *leaves[1:first]]
        assert not consistent(first, size, naive_root(other), naive_root(leaves), path)


def test_a_consistency_proof_between_checkpoints_is_checked_by_an_outsider(
    catalog: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, sessions = catalog
    key = Ed25519PrivateKey.generate()
    with sessions.begin() as session:
        for i in range(1, 6):
            append_entry(session, _entry(i))
        first = create_checkpoint(session, key, at("2021-03-02T00:00:00Z"))
        for i in range(6, 19):
            append_entry(session, _entry(i))
        second = create_checkpoint(session, key, at("2021-03-03T00:00:00Z"))
    with sessions() as session:
        proof = consistency_proof(session, first, second)
        assert consistency_holds(proof, first["public_key"], first)
        assert consistency_proof(session, second, second)["path"] == []
        with pytest.raises(FacegateError) as backwards:
            consistency_proof(session, second, first)
        assert backwards.value.code is ErrorCode.INVALID_ARGUMENT
        forged = {**first, "merkle_root": "00" * 32}
        with pytest.raises(FacegateError) as invalid:
            consistency_proof(session, forged, second)
        assert invalid.value.code is ErrorCode.CHECKPOINT_INVALID
    assert not consistency_holds({**proof, "checkpoints": [first, {**second, "seq": 17}]}, first["public_key"], first)
    assert not consistency_holds(proof, first["public_key"], {**first, "merkle_root": "00" * 32})  # not what we kept
    other_key = Ed25519PrivateKey.generate()
    with sessions.begin() as session:  # an impostor's checkpoint fails the pinned key
        impostor = create_checkpoint(session, other_key, at("2021-03-04T00:00:00Z"))
    with sessions() as session:
        assert not consistency_holds(consistency_proof(session, first, impostor), first["public_key"], first)
    with sessions.begin() as session:  # the log rewritten below the first checkpoint: no proof
        session.execute(text("UPDATE audit_log SET entry_hash = :h WHERE seq = 2"), {"h": "ab" * 32})
    with sessions() as session, pytest.raises(FacegateError) as broken:
        consistency_proof(session, first, second)
    assert broken.value.code is ErrorCode.AUDIT_CHAIN_BROKEN
    with sessions.begin() as session, pytest.raises(FacegateError) as unsigned:  # nor is it signed again
        create_checkpoint(session, key, at("2021-03-05T00:00:00Z"))
    assert unsigned.value.code is ErrorCode.AUDIT_CHAIN_BROKEN and "no longer extends" in unsigned.value.message
