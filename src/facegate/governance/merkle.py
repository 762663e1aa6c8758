"""A Merkle tree over the audit entries, as Certificate Transparency builds it (RFC 9162 §2.1).

Leaf i (0-based) is the entry with seq i + 1. Its leaf data is `seq` as 8 big-endian bytes
followed by the 32 bytes of its `entry_hash`: `leaf = SHA-256(0x00 || seq || entry_hash)`,
`node = SHA-256(0x01 || left || right)`, and a tree of n leaves splits at the largest power
of two below n. Preimages cannot be confused: a leaf hashes 41 bytes starting 0x00, a node
65 bytes starting 0x01, and an audit chain hash (`0x01 || prev || JSON`) always more than
65 bytes, since an entry's JSON is far longer than 32 bytes. The entry hash commits to the
whole entry (a format-2 entry to its redactable part through the digest), so a redaction
changes no leaf and no signed root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(seq: int, entry_hash: str) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + seq.to_bytes(8, "big") + bytes.fromhex(entry_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]); level by level, an odd last node moving up unchanged, which builds the same
    tree as the RFC's recursive split."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the siblings from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is outside a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(leaves[:k], index), root(leaves[k:])]
    return [*inclusion_path(leaves[k:], index - k), root(leaves[:k])]


def root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion path leads to (RFC 9162 §2.1.3.2); None for an impossible path."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(sibling, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, sibling)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def consistency_path(leaves: Sequence[bytes], first: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: that the tree of the first `first` leaves is a
    prefix of the tree of all of them (0 < first <= n; empty when first == n)."""
    if not 0 < first <= len(leaves):
        raise ValueError(f"a tree of {first} leaves is not a prefix of one of {len(leaves)}")
    return _subproof(leaves, first, True)


def _subproof(leaves: Sequence[bytes], first: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b): `whole` while the first tree is still the left edge of this one."""
    if first == len(leaves):
        return [] if whole else [root(leaves)]
    k = _split(len(leaves))
    if first <= k:
        return [*_subproof(leaves[:k], first, whole), root(leaves[k:])]
    return [*_subproof(leaves[k:], first - k, False), root(leaves[:k])]
