"""Secrets the server must be able to read back, sealed with a key kept beside the catalog.

An API key is checked by hashing what the caller presents, so only its hash is stored. A
Signature Version 4 secret cannot work that way: to check a signature the server must
compute the same HMAC the client did, with the secret itself. So the AWS secret access
key is stored sealed (AES-256-GCM) under a key-encryption key (KEK) that lives in its own
file in the data directory, mode 0600, never in the catalog database. A copy of the
catalog alone (a backup, a stolen file, a SQL injection reading rows) yields no usable
secret; whoever can read the KEK file *and* the catalog can. The threat model is in
docs/rekognition.md.

A sealed value is `v1:` + base64(nonce | ciphertext+tag); the row's access key id is the
authenticated data, so a sealed secret copied onto another key's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facegate.errors import ErrorCode, FacegateError

KEK_FILE = "credentials.kek"
_VERSION = "v1:"
_KEY_BYTES = 32
_NONCE_BYTES = 12


def _broken(message: str) -> FacegateError:
    return FacegateError(ErrorCode.CREDENTIALS_KEY_INVALID, message)


def write_new_kek(path: Path) -> bool:
    """Create a KEK file at `path` (mode 0600) unless one exists; True if this call made it.

    The key is written whole to a private temporary file and then linked into place, which
    fails if the file exists: two processes starting at once (the server and the CLI) end
    up with the same key, and neither can read a half-written one.
    """
    fd, temporary = tempfile.mkstemp(prefix=".kek-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(base64.b64encode(os.urandom(_KEY_BYTES)) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False  # another process made it first: use theirs
    finally:
        os.unlink(temporary)


def load_kek(path: Path) -> bytes:
    """The KEK in `path`, which must exist, be private to its owner and hold 32 bytes."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise _broken(f"credentials key file {path} does not exist") from None
    if mode & 0o077:
        raise _broken(f"{path} must be readable by its owner only (chmod 600)")
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _broken(f"{path} is not base64") from None
    if len(key) != _KEY_BYTES:
        raise _broken(f"{path} must hold {_KEY_BYTES} bytes")
    return key


def load_or_create_kek(home: Path) -> bytes:
    """The data directory's KEK, created on first use with mode 0600 (embedded mode).

    Server mode keeps no files: there every host reads the same key file, named by
    FACEGATE_CREDENTIALS_KEY_FILE (`load_kek`)."""
    path = home / KEK_FILE
    if not path.exists():
        write_new_kek(path)
    return load_kek(path)


class SecretBox:
    """Seals and opens short secrets bound to a label (the access key id)."""

    def __init__(self, kek: bytes) -> None:
        self._aead = AESGCM(kek)

    def seal(self, secret: str, label: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), label.encode("utf-8"))
        return _VERSION + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, label: str) -> str:
        if not sealed.startswith(_VERSION):
            raise _broken("a sealed secret has an unknown format")
        try:
            raw = base64.b64decode(sealed.removeprefix(_VERSION), validate=True)
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], label.encode("utf-8"))
        except (binascii.Error, ValueError, InvalidTag):
            raise _broken("a sealed secret does not open with this data directory's key") from None
        return plain.decode("utf-8")
