"""Signed checkpoints through the real CLI, attacked as an intruder with write access to the
data directory would: a consistent rewrite (edited entry, recomputed chain and head), a
truncation and a wipe pass a plain `verify` once the stored checkpoints are deleted too,
and are each named by `verify --checkpoint` with their kind. `verify` itself reads before it
records and names a missing or edited head, entries beyond it, a wiped log and a log
shorter than the last stored checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from facegate.cli import main
from facegate.governance.audit import GENESIS, entry_hash_of
from tests.governance.test_audit_proofs import consistency_holds, proof_holds

CATALOG = "catalog.sqlite3"


def run(home: Path | None, *args: str, key: Path | None = None) -> tuple[int, dict]:
    env = {"FACEGATE_AUDIT_SIGNING_KEY": str(key) if key else None}
    where = [] if home is None else ["--data-dir", str(home)]
    result = CliRunner().invoke(main, [*args, *where, "--json"], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A data directory with some history, a signing key and a checkpoint file."""
    root = tmp_path_factory.mktemp("signed")
    home, key = root / "home", root / "audit-key.pem"
    code, made = run(None, "audit", "keygen", "--out", str(key))
    assert code == 0 and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    for name in ("alpha", "beta", "gamma", "delta"):
        assert run(home, "collection", "create", name)[0] == 0
    code, first = run(home, "audit", "checkpoint", "--out", str(root / "first.json"), key=key)
    assert code == 0 and first["public_key"] == made["public_key"] and first["previous"] is None
    run(home, "tenant", "create", "polaris", "--sector", "nonprofit")
    code, checkpoint = run(home, "audit", "checkpoint", "--out", str(root / "checkpoint.json"), key=key)
    assert code == 0
    assert {"seq", "head", "signed_at", "signature", "public_key", "merkle_root", "previous"} <= set(checkpoint)
    assert checkpoint["previous"] == first["checkpoint_hash"] and checkpoint["seq"] == 7
    assert json.loads((root / "checkpoint.json").read_text()) == checkpoint
    run(home, "collection", "create", "epsilon")  # the log goes on after the checkpoint
    return home, root / "checkpoint.json", checkpoint


def copy(signed: tuple[Path, Path, dict], to: Path) -> Path:
    to.mkdir()
    for part in signed[0].glob(CATALOG + "*"):  # with its write-ahead log
        shutil.copy(part, to / part.name)
    return to


def sql(home: Path, *statements: str, args: tuple = ()) -> None:
    with sqlite3.connect(home / CATALOG) as db:
        for statement in statements:
            db.execute(statement, args)


def rewrite_from(home: Path, seq: int) -> None:
    """Recompute every hash from entry `seq` on and the head, as an informed intruder would."""
    with sqlite3.connect(home / CATALOG) as db:
        db.row_factory = sqlite3.Row
        prev = GENESIS if seq == 1 else db.execute("SELECT entry_hash FROM audit_log WHERE seq = ?", (seq - 1,)).fetchone()[0]
        for row in db.execute("SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
            values = dict(row)
            digest = entry_hash_of(prev, values)
            db.execute("UPDATE audit_log SET prev_hash = ?, entry_hash = ? WHERE seq = ?", (prev, digest, row["seq"]))
            prev = digest
            last = row["seq"]
        db.execute("UPDATE audit_head SET seq = ?, entry_hash = ?", (last, prev))


def verify(home: Path, checkpoint: Path | None = None) -> tuple[int, dict]:
    extra = ("--checkpoint", str(checkpoint)) if checkpoint else ()
    return run(home, "audit", "verify", *extra)


def test_the_log_extends_its_checkpoint(signed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    home = copy(signed, tmp_path / "h")
    code, out = verify(home, signed[1])
    assert code == 0 and out["ok"] is True and out["checkpoint"]["seq"] == signed[2]["seq"]


def _rewrite(home: Path) -> None:
    sql(home, "UPDATE audit_log SET collection = 'omega' WHERE seq = 2")
    rewrite_from(home, 2)


def _truncate(home: Path) -> None:
    sql(home, "DELETE FROM audit_log WHERE seq > 5")
    sql(home, "UPDATE audit_head SET seq = 5, entry_hash = (SELECT entry_hash FROM audit_log WHERE seq = 5)")


def _wipe(home: Path) -> None:
    sql(home, "DELETE FROM audit_log", "DELETE FROM audit_head")


@pytest.mark.parametrize(("tamper", "kind", "first_bad"), [
    (_rewrite, "rewritten", 7), (_truncate, "truncated", 6), (_wipe, "wiped", 1),
])  # fmt: skip
def test_rewrite_truncation_and_wipe_are_named(
    signed: tuple[Path, Path, dict], tmp_path: Path, tamper: Callable[[Path], None], kind: str, first_bad: int
) -> None:
    # The catalog's own last checkpoint (or, for a wipe, the data it still holds) names it ...
    home = copy(signed, tmp_path / "kept")
    tamper(home)
    code, out = verify(home)
    assert code == 1 and (out["ok"], out["kind"], out["first_bad_entry"]) == (False, kind, first_bad), out
    if kind == "wiped":  # with the data gone too, the catalog's checkpoints still name it
        home = copy(signed, tmp_path / "no-data")
        tamper(home)
        sql(home, "DELETE FROM collections", "DELETE FROM tenants")
        code, out = verify(home)
        assert code == 1 and (out["kind"], out["first_bad_entry"]) == ("wiped", 1), out
    # ... and when the intruder deletes the stored checkpoints (and the data) too, only the
    # checkpoint kept outside the catalog does.
    home = copy(signed, tmp_path / "thorough")
    tamper(home)
    sql(home, "DELETE FROM audit_checkpoints")
    if kind == "wiped":
        sql(home, "DELETE FROM collections", "DELETE FROM tenants")
    code, out = verify(home, signed[1])
    assert code == 1 and (out["ok"], out["kind"], out["first_bad_entry"]) == (False, kind, first_bad), out
    assert out["problem"] and out["checkpoint"]["seq"] == signed[2]["seq"]
    assert verify(home)[1]["ok"] is True  # without it, nothing shows


def test_the_newest_checkpoint_the_service_kept_is_checked_without_being_named(
    signed: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    """With FACEGATE_CHECKPOINT_DIR set (where `serve` writes them), a plain `verify` checks
    the newest file there: a thorough intruder who rewrote the log and deleted the catalog's
    checkpoints, but cannot write that directory, is named all the same."""
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "checkpoint-000000000003.json").write_text("{}")  # older: not the one checked
    shutil.copy(signed[1], kept / f"checkpoint-{signed[2]['seq']:012d}.json")

    def verify_kept(home: Path) -> tuple[int, dict]:
        result = CliRunner().invoke(main, ["audit", "verify", "--data-dir", str(home), "--json"],
                                    env={"FACEGATE_CHECKPOINT_DIR": str(kept), "FACEGATE_AUDIT_SIGNING_KEY": None})
        return result.exit_code, json.loads(result.stdout)

    code, out = verify_kept(copy(signed, tmp_path / "intact"))
    assert code == 0 and out["checkpoint"]["seq"] == signed[2]["seq"]
    assert out["checkpoint"]["file"] == str(kept / f"checkpoint-{signed[2]['seq']:012d}.json")
    home = copy(signed, tmp_path / "thorough")
    _rewrite(home)
    sql(home, "DELETE FROM audit_checkpoints")
    assert verify(home)[1]["ok"] is True  # without the directory, nothing shows
    code, out = verify_kept(home)
    assert code == 1 and (out["kind"], out["first_bad_entry"]) == ("rewritten", signed[2]["seq"]), out
    assert f"checkpoint-{signed[2]['seq']:012d}.json" in out["problem"] and str(kept) not in out["problem"]
    (kept / "checkpoint-999999999999.json").write_text("not json")  # the newest is no checkpoint
    code, out = verify_kept(copy(signed, tmp_path / "unreadable"))
    assert code == 1 and out["kind"] == "checkpoint_invalid" and "unreadable" in out["problem"], out


def test_a_verifier_that_cannot_read_the_signing_key_still_verifies(
    signed: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    """Verifying needs no private key: where FACEGATE_AUDIT_SIGNING_KEY names one this process
    cannot read, checkpoints are checked unpinned (and a broken chain is still named)."""
    home = copy(signed, tmp_path / "h")
    code, out = run(home, "audit", "verify", key=tmp_path / "no-such-key.pem")
    assert code == 0 and out["ok"] is True, out
    _rewrite(home)
    code, out = run(home, "audit", "verify", key=tmp_path / "no-such-key.pem")
    assert code == 1 and out["kind"] == "rewritten", out


def test_a_checkpoint_by_another_key_is_refused_when_the_key_is_pinned(
    signed: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    home = copy(signed, tmp_path / "h")
    pinned = signed[2]["public_key"]
    code, out = run(home, "audit", "verify", "--checkpoint", str(signed[1]), "--public-key", pinned)
    assert code == 0 and out["ok"] is True
    other_key = tmp_path / "other.pem"
    run(None, "audit", "keygen", "--out", str(other_key))
    code, impostor = run(home, "audit", "checkpoint", "--out", str(tmp_path / "impostor.json"), key=other_key)
    assert code == 0
    code, out = run(home, "audit", "verify", "--checkpoint", str(tmp_path / "impostor.json"), "--public-key", pinned)
    assert code == 1 and out["kind"] == "checkpoint_invalid" and "another key" in out["problem"]


def test_a_stored_checkpoint_replaced_under_an_intruders_key_is_named_once_the_key_is_known(
    signed: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    """The intruder rewrites the log, deletes the stored checkpoints and signs a new one with
    a key of his own: `verify` then checks the stored one against the pinned or configured key."""
    home = copy(signed, tmp_path / "h")
    key = tmp_path / "audit-key.pem"
    shutil.copy(signed[1].with_name("audit-key.pem"), key)
    _rewrite(home)
    sql(home, "DELETE FROM audit_checkpoints")
    intruder = tmp_path / "intruder.pem"
    run(None, "audit", "keygen", "--out", str(intruder))
    assert run(home, "audit", "checkpoint", key=intruder)[0] == 0
    code, out = verify(home)
    assert code == 0 and out["ok"] is True  # a self-consistent forgery: nothing to tell it by
    for how in ({"key": key}, {"pinned": signed[2]["public_key"]}):
        extra = ("--public-key", how["pinned"]) if "pinned" in how else ()
        code, out = run(home, "audit", "verify", *extra, key=how.get("key"))
        assert code == 1 and (out["ok"], out["kind"]) == (False, "checkpoint_invalid"), how
        assert out["problem"].startswith("the last checkpoint stored in the catalog is invalid: signed by another key")


def test_a_stored_checkpoint_edited_in_place_is_named(signed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    home = copy(signed, tmp_path / "h")
    with sqlite3.connect(home / CATALOG) as db:
        checkpoint_id, document = db.execute(
            "SELECT checkpoint_id, document FROM audit_checkpoints ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
        edited = {**json.loads(document), "merkle_root": "00" * 32}
        db.execute("UPDATE audit_checkpoints SET document = ? WHERE checkpoint_id = ?",
                   (json.dumps(edited), checkpoint_id))
    code, out = verify(home)
    assert code == 1 and out["kind"] == "checkpoint_invalid" and "signature does not verify" in out["problem"], out
    key = signed[1].with_name("audit-key.pem")
    assert run(copy(signed, tmp_path / "intact"), "audit", "verify", key=key)[0] == 0


def test_a_forged_checkpoint_is_refused(signed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    home = copy(signed, tmp_path / "h")
    forged = {**signed[2], "seq": 3}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    code, out = verify(home, tmp_path / "forged.json")
    assert code == 1 and out["kind"] == "checkpoint_invalid"


def test_verify_names_what_is_wrong_with_the_head(signed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    cases = {
        "missing-head": (["DELETE FROM audit_head"], "head", 8),
        "edited-head": (["UPDATE audit_head SET entry_hash = '" + "ab" * 32 + "'"], "head", 8),
        "beyond-head": (["UPDATE audit_head SET seq = 6, entry_hash = (SELECT entry_hash FROM audit_log WHERE seq = 6)"],
                        "inserted", 7),
    }
    for name, (statements, kind, seq) in cases.items():
        home = copy(signed, tmp_path / name)
        sql(home, *statements)
        entries = sqlite3.connect(home / CATALOG).execute("SELECT count(*) FROM audit_log").fetchone()[0]
        code, out = verify(home)
        assert code == 1 and (out["ok"], out["kind"], out["first_bad_entry"]) == (False, kind, seq), name
        assert out["entries"] == entries  # read before anything was recorded


def test_keys_and_checkpoints_refuse_clearly(signed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    home = copy(signed, tmp_path / "h")
    code, out = run(home, "audit", "checkpoint")
    assert code == 1 and out["error"]["code"] == "AUDIT_SIGNING_KEY_MISSING"
    (tmp_path / "bad.pem").write_text("not a key")
    code, out = run(home, "audit", "checkpoint", key=tmp_path / "bad.pem")
    assert code == 1 and out["error"]["code"] == "AUDIT_SIGNING_KEY_INVALID"
    existing = tmp_path / "bad.pem"
    code, out = run(None, "audit", "keygen", "--out", str(existing))
    assert code == 1 and existing.read_text() == "not a key"
    (tmp_path / "junk.json").write_text("{")
    code, out = verify(home, tmp_path / "junk.json")
    assert code == 1 and out["error"]["code"] == "CHECKPOINT_INVALID"


def test_prove_gives_a_proof_an_outsider_checks(signed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    home = copy(signed, tmp_path / "h")
    pinned = signed[2]["public_key"]
    for seq in (1, 3, signed[2]["seq"]):
        code, proof = run(home, "audit", "prove", str(seq), "--checkpoint", str(signed[1]))
        assert code == 0 and proof["seq"] == seq and proof["tree_size"] == signed[2]["seq"]
        assert proof_holds(proof, pinned)
        forged = {**proof, "entry": {**proof["entry"], "collection": "someone-else"}}
        assert not proof_holds(forged, pinned)
    code, latest = run(home, "audit", "prove", "2")  # against the latest checkpoint in the catalog
    assert code == 0 and latest["checkpoint"]["checkpoint_hash"] == signed[2]["checkpoint_hash"]
    code, beyond = run(home, "audit", "prove", str(signed[2]["seq"] + 1), "--checkpoint", str(signed[1]))
    assert code == 1 and beyond["error"]["code"] == "INVALID_ARGUMENT"


def test_prove_consistency_shows_the_later_checkpoint_extends_the_earlier(
    signed: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    home = copy(signed, tmp_path / "h")
    first = signed[1].with_name("first.json")
    pinned = signed[2]["public_key"]
    code, proof = run(home, "audit", "prove-consistency", "--from", str(first), "--to", str(signed[1]))
    assert code == 0 and (proof["first"]["seq"], proof["second"]["seq"]) == (json.loads(first.read_text())["seq"], 7)
    kept = json.loads(first.read_text())
    assert consistency_holds(proof, pinned, kept)
    code, latest = run(home, "audit", "prove-consistency", "--from", str(first))  # to the catalog's latest
    assert code == 0 and latest["second"]["seq"] == 7 and consistency_holds(latest, pinned, kept)
    _rewrite(home)  # a consistent rewrite from entry 2 on: no proof can be made
    code, out = run(home, "audit", "prove-consistency", "--from", str(first), "--to", str(signed[1]))
    assert code == 1 and out["error"]["code"] == "AUDIT_CHAIN_BROKEN"
