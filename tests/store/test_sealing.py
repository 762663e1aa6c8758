"""AWS secret keys at rest: sealed under a key-encryption key kept in a 0600 file beside
the catalog, bound to their access key id; tampering or a foreign key file is refused."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.store.sealing import KEK_FILE, SecretBox, load_or_create_kek


def test_kek_is_created_once_owner_only(tmp_path: Path) -> None:
    first = load_or_create_kek(tmp_path)
    assert stat.S_IMODE((tmp_path / KEK_FILE).stat().st_mode) == 0o600
    assert load_or_create_kek(tmp_path) == first and len(first) == 32


def test_a_readable_kek_file_is_refused(tmp_path: Path) -> None:
    load_or_create_kek(tmp_path)
    os.chmod(tmp_path / KEK_FILE, 0o644)
    with pytest.raises(FacegateError) as refused:
        load_or_create_kek(tmp_path)
    assert refused.value.code is ErrorCode.CREDENTIALS_KEY_INVALID


def test_sealed_secrets_open_only_with_their_label_and_key(tmp_path: Path) -> None:
    box = SecretBox(load_or_create_kek(tmp_path))
    sealed = box.seal("k8N-uHaUh6a_jqHICgyh6_e3lxMWZS01n4gAIkzo", "AKFGAAAAAAAAAAAAAAAA")
    assert "k8N" not in sealed and box.open(sealed, "AKFGAAAAAAAAAAAAAAAA").startswith("k8N")
    for bad in (
        lambda: box.open(sealed, "AKFGBBBBBBBBBBBBBBBB"),  # copied onto another key's row
        lambda: box.open(sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"), "AKFGAAAAAAAAAAAAAAAA"),
        lambda: SecretBox(os.urandom(32)).open(sealed, "AKFGAAAAAAAAAAAAAAAA"),  # another data directory's key
        lambda: box.open("plain-text-secret", "AKFGAAAAAAAAAAAAAAAA"),
    ):
        with pytest.raises(FacegateError) as refused:
            bad()
        assert refused.value.code is ErrorCode.CREDENTIALS_KEY_INVALID


def test_processes_starting_at_once_share_one_kek(tmp_path: Path) -> None:
    """The server and the CLI may both create the key file at first use: one key wins, whole."""
    with ProcessPoolExecutor(max_workers=4) as pool:
        keys = list(pool.map(load_or_create_kek, [tmp_path] * 8))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    assert [p.name for p in tmp_path.iterdir()] == [KEK_FILE]  # no temporary file left behind
