"""The template key through the real `facegate` executable: a wrong key exits non-zero with
TEMPLATE_KEY_MISMATCH and leaves the catalog byte-for-byte as it was; `catalog rekey`
takes the new key from a file; a malformed key is one line, not a traceback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facegate.settings import Settings
from tests.service.server import free_port

FACEGATE = Path(sys.executable).parent / "facegate"
OBAMA = Path("face_recognition") / "tests" / "test_images" / "obama.jpg"
BIDEN = Path("face_recognition") / "tests" / "test_images" / "biden.jpg"


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def facegate(
    home: Path, template_key: str | None, *args: str, timeout: float = 180, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")} | (extra or {})
    env["FACEGATE_HOME"] = str(home)
    if template_key is not None:
        env["FACEGATE_TEMPLATE_KEY"] = template_key
    return subprocess.run([str(FACEGATE), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def files(home: Path) -> dict[str, str]:
    """Digest of every catalog file (the WAL too, if one was left)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(home.glob("catalog.sqlite3*"))}


@pytest.fixture()
def keyed_catalog(settings: Settings, peers: Path) -> tuple[Path, str]:
    secret = key()
    assert facegate(settings.home, secret, "collection", "create", "people").returncode == 0
    done = facegate(settings.home, secret, "index", "people", str(peers / OBAMA), "--json")
    assert done.returncode == 0 and len(json.loads(done.stdout)["indexed"]) == 1, done.stderr
    return settings.home, secret


@pytest.mark.parametrize("given", ["other", "missing"])
def test_a_wrong_or_missing_key_exits_non_zero_and_the_catalog_is_unchanged(
    keyed_catalog: tuple[Path, str], peers: Path, given: str
) -> None:
    home, _ = keyed_catalog
    before = files(home)
    wrong = key() if given == "other" else None
    run = facegate(home, wrong, "index", "people", str(peers / BIDEN), str(peers / OBAMA), "--json")
    assert run.returncode == 1
    assert json.loads(run.stdout)["error"]["code"] == "TEMPLATE_KEY_MISMATCH"
    human = facegate(home, wrong, "collection", "create", "more")
    assert human.returncode == 1 and human.stderr.startswith("Error TEMPLATE_KEY_MISMATCH:")
    assert "Traceback" not in human.stderr
    assert files(home) == before


def test_serve_with_the_wrong_key_does_not_start(keyed_catalog: tuple[Path, str]) -> None:
    home, _ = keyed_catalog
    before = files(home)
    run = facegate(home, key(), "serve", "--host", "127.0.0.1", "--port", str(free_port()), timeout=60)
    assert run.returncode == 1
    assert "TEMPLATE_KEY_MISMATCH" in run.stderr and "listening" not in run.stderr
    assert files(home) == before


def test_a_key_on_a_plain_catalog_is_refused(settings: Settings) -> None:
    assert facegate(settings.home, None, "collection", "create", "people").returncode == 0
    before = files(settings.home)
    run = facegate(settings.home, key(), "collection", "list", "--json")
    assert run.returncode == 1 and json.loads(run.stdout)["error"]["code"] == "TEMPLATE_KEY_MISMATCH"
    assert files(settings.home) == before


@pytest.mark.parametrize("bad", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_key_is_one_line_with_a_code(settings: Settings, bad: str) -> None:
    run = facegate(settings.home, bad, "collection", "list")
    assert run.returncode == 1
    assert run.stderr.startswith("Error TEMPLATE_KEY_INVALID: FACEGATE_TEMPLATE_KEY must")
    assert len(run.stderr.strip().splitlines()) == 1 and bad not in run.stderr
    assert not (settings.home / "catalog.sqlite3").exists()


def test_rekey_from_a_file_switches_the_key(keyed_catalog: tuple[Path, str], tmp_path: Path, peers: Path) -> None:
    home, old = keyed_catalog
    new = key()
    key_file = tmp_path / "new.key"
    key_file.write_text(new + "\n")
    done = facegate(home, old, "catalog", "rekey", "--new-key-file", str(key_file), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["resealed"], out["templates"]) == (1, 1)
    assert out["from_key"] != out["to_key"] and out["to_key"].startswith("aes256gcm:") and out["audit_seq"] > 0
    assert new not in done.stdout + done.stderr
    assert facegate(home, old, "collection", "list").returncode == 1  # the old key is refused now
    found = facegate(home, new, "search", "people", str(peers / OBAMA), "--json")
    assert found.returncode == 0 and len(json.loads(found.stdout)["matches"]) == 1, found.stdout
    third = key()  # and again, from an environment variable (kept out of shell history too)
    again = facegate(home, new, "catalog", "rekey", "--new-key-env", "FG_NEXT_KEY", "--json",
                     extra={"FG_NEXT_KEY": third})
    assert again.returncode == 0 and json.loads(again.stdout)["resealed"] == 1, again.stdout
    assert facegate(home, third, "collection", "list").returncode == 0
    bad_file = tmp_path / "bad.key"
    bad_file.write_text("zz")
    refused = facegate(home, third, "catalog", "rekey", "--new-key-file", str(bad_file), "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["error"]["code"] == "TEMPLATE_KEY_INVALID"
