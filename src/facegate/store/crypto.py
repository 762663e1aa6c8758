"""Templates at rest: AES-256-GCM when a key is configured, raw float32 bytes otherwise.

A template is biometric data: whoever copies the catalog file should not get usable
templates unless they also hold the key (kept outside the data directory, e.g. in the
environment variable FACEGATE_TEMPLATE_KEY as base64). Without a key the catalog stores
the plain float32 bytes, so an embedded installation works with no setup.

An encrypted blob is `MAGIC | key id | nonce | ciphertext+tag`. MAGIC read as a float32 is
a NaN, which a unit-length template never holds, so a plain blob is never mistaken for an
encrypted one. The key id (first bytes of SHA-256 of the key) lets us tell "encrypted with
another key" from "tampered" and say which, instead of handing back garbage. The header is
authenticated data, so it cannot be edited without the tag failing.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facegate.errors import ErrorCode, FacegateError

MAGIC = b"FG\xc0\x7f"  # little-endian float32: a NaN
KEY_BYTES = 32
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
_THUMBNAIL = b"thumbnail"  # authenticated with a thumbnail's header: what the blob is


PLAINTEXT = "none"  # the fingerprint of "no key": templates stored as plain floats


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"facegate-template-key\x00" + key).digest()[:KEY_ID_BYTES]


def fingerprint_of_key_id(key_id: bytes) -> str:
    """How the catalog names a key: its id (a hash, never the key) with the cipher."""
    return f"aes256gcm:{key_id.hex()}"


def sealed_key_id(blob: bytes) -> bytes | None:
    """The key id in a sealed blob's header; None for a plain template."""
    if blob[: len(MAGIC)] != MAGIC:
        return None
    return blob[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]


class TemplateCodec:
    """Turns templates into stored blobs and back, with or without a key."""

    def __init__(self, key: bytes | None) -> None:
        """`key`: 32 raw bytes (Settings.template_key_bytes), or None to store plain floats."""
        if key is not None and len(key) != KEY_BYTES:
            raise FacegateError(
                ErrorCode.INVALID_ARGUMENT,
                f"the template key must be {KEY_BYTES} bytes (AES-256), got {len(key)}",
            )
        self._aead = AESGCM(key) if key is not None else None
        self._key_id = _key_id(key) if key is not None else b""

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    @property
    def fingerprint(self) -> str:
        """What the catalog records of this codec's key (store/template_key.py)."""
        return fingerprint_of_key_id(self._key_id) if self._aead is not None else PLAINTEXT

    def seals(self, blob: bytes) -> bool:
        """Whether `blob` is sealed with this codec's key (a rekey skips those)."""
        return self._aead is not None and sealed_key_id(blob) == self._key_id

    def encode(self, vector: np.ndarray) -> bytes:
        """A 1-D template as stored: float32 bytes, sealed when a key is configured."""
        plain = np.ascontiguousarray(vector, dtype=np.float32)
        if plain.ndim != 1 or not np.isfinite(plain).all():
            raise FacegateError(
                ErrorCode.INVALID_ARGUMENT, "a template is a 1-D vector of finite numbers"
            )
        return self._seal(plain.tobytes(), b"")

    def decode(self, blob: bytes) -> np.ndarray:
        """The float32 template of a stored blob, or a refusal that says what is wrong."""
        return np.frombuffer(self._open(blob, b"", "template"), dtype=np.float32).copy()

    def seal_thumbnail(self, jpeg: bytes) -> bytes:
        """A face thumbnail as stored: sealed exactly as templates are when a key is configured
        (bound to its kind, so a sealed thumbnail never opens as a template or back)."""
        return self._seal(jpeg, _THUMBNAIL)

    def open_thumbnail(self, blob: bytes) -> bytes:
        """The JPEG bytes of a stored thumbnail, or the refusal `decode` would give."""
        return self._open(blob, _THUMBNAIL, "thumbnail")

    def _seal(self, raw: bytes, kind: bytes) -> bytes:
        if self._aead is None:
            return raw
        header = MAGIC + self._key_id + os.urandom(NONCE_BYTES)
        return header + self._aead.encrypt(header[-NONCE_BYTES:], raw, header + kind)

    def _open(self, blob: bytes, kind: bytes, what: str) -> bytes:
        sealed = blob[: len(MAGIC)] == MAGIC
        if not sealed:
            if self._aead is not None:
                raise FacegateError(
                    ErrorCode.TEMPLATE_KEY_MISMATCH,
                    f"a {what} is stored unencrypted but a template key is configured; "
                    "re-encrypt the catalog or remove the key",
                )
            return blob
        if self._aead is None:
            raise FacegateError(
                ErrorCode.TEMPLATE_KEY_MISMATCH,
                f"{what}s are encrypted but no template key is configured",
            )
        header = blob[:HEADER_BYTES]
        if len(blob) > HEADER_BYTES and header[len(MAGIC) : -NONCE_BYTES] != self._key_id:
            raise FacegateError(
                ErrorCode.TEMPLATE_KEY_MISMATCH,
                f"a {what} was encrypted with another key than the one configured",
            )
        try:
            return self._aead.decrypt(header[-NONCE_BYTES:], blob[HEADER_BYTES:], header + kind)
        except InvalidTag as exc:
            raise FacegateError(
                ErrorCode.TEMPLATE_KEY_MISMATCH,
                f"a stored {what} failed authentication: it was altered after encryption",
            ) from exc
