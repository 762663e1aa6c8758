"""Retention through the real CLI on real photos: audit entries of a purpose are redacted
after its `retention_days`, leads purged, faces of a collection with `--retention-days`
erased from catalog and index; the chain still verifies, reports the redactions, and
still catches an edit of a redacted entry."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"


def run(settings: Settings, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(settings.home), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def rows(settings: Settings, query: str, *args: object) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.home / "catalog.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return db.execute(query, args).fetchall()


def later(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def test_retention_redacts_purges_and_erases_and_the_chain_still_verifies(settings: Settings, peers: Path) -> None:
    assert run(settings, "collection", "create", "gallery")[0] == 0
    code, short = run(settings, "collection", "create", "short-lived", "--retention-days", "10")
    assert code == 0 and short["retention_days"] == 10
    run(settings, "index", "gallery", str(peers / FR / "obama.jpg"), "--subject", "obama")
    run(settings, "index", "short-lived", str(peers / FR / "biden.jpg"), "--subject", "biden")
    code, leads = run(settings, "search", "gallery", str(peers / FR / "obama2.jpg"),
                      "--purpose", "victim_identification", "--case-reference", "case-1")
    assert code == 0 and [m["subject"] for m in leads["matches"]] == ["obama"]
    code, library = run(settings, "search", "gallery", str(peers / FR / "obama3.jpg"), "--purpose", "photo_library")
    assert code == 0 and library["matches"]
    (lead,) = rows(settings, "SELECT * FROM reviews")
    code, confirmed = run(settings, "review", "confirm", str(lead["review_id"]), "--note", "same person")
    assert code == 0 and confirmed["status"] == "confirmed"
    (verdict,) = rows(settings, "SELECT * FROM audit_log WHERE operation = 'review'")
    assert "obama" in verdict["results"] and "obama" not in verdict["details"]
    library_seqs = [r["seq"] for r in rows(
        settings, "SELECT seq FROM audit_log WHERE purpose = 'photo_library' AND probe_sha256 IS NOT NULL")]
    victim_seq = rows(settings, "SELECT seq FROM audit_log WHERE purpose = 'victim_identification'")[0]["seq"]
    assert len(library_seqs) == 3  # two enrolments and a search, under the local operator's default purpose

    # 5 days on, nothing is old enough
    code, early = run(settings, "retention", "apply", "--at", later(5), "--dry-run")
    assert (early["redacted_entries"], early["purged_reviews"], early["erased_faces"]) == (0, 0, 0)
    # a dry run counts and changes nothing (and is itself audited)
    before = [dict(r) for r in rows(settings, "SELECT * FROM audit_log")]
    code, dry = run(settings, "retention", "apply", "--at", later(100), "--dry-run")
    assert code == 0 and (dry["redacted_entries"], dry["purged_reviews"], dry["erased_faces"]) == (3, 0, 1)
    after = [dict(r) for r in rows(settings, "SELECT * FROM audit_log")]
    assert after[:-1] == before and after[-1]["operation"] == "retention"

    # 100 days on: photo_library (30 days) and the short-lived collection (10 days) age out
    code, first = run(settings, "retention", "apply", "--at", later(100))
    assert code == 0 and (first["redacted_entries"], first["purged_reviews"], first["erased_faces"]) == (3, 0, 1)
    assert first["erased_by_collection"] == {"short-lived": 1}
    for seq in library_seqs:
        (row,) = rows(settings, "SELECT * FROM audit_log WHERE seq = ?", seq)
        assert (row["probe_sha256"], row["results"], row["salt"]) == (None, "null", None)
        assert row["redacted_at"] is not None and row["redactable_digest"] is not None
    (kept,) = rows(settings, "SELECT * FROM audit_log WHERE seq = ?", victim_seq)
    assert kept["probe_sha256"] is not None and "obama" in kept["results"]
    # erased from the catalog and the vector index together
    assert rows(settings, "SELECT count(*) AS n FROM faces WHERE collection_id = 'short-lived'")[0]["n"] == 0
    code, gone = run(settings, "search", "short-lived", str(peers / FR / "biden.jpg"), "--purpose", "photo_library")
    assert code == 0 and gone["matches"] == []
    assert run(settings, "collection", "describe", "gallery")[1]["face_count"] == 1
    (record,) = rows(settings, "SELECT * FROM audit_log WHERE operation = 'retention' AND details LIKE '%\"dry_run\":false%'")
    details = json.loads(record["details"])
    assert details["redacted_entries"] == 3 and details["erased_by_collection"] == {"short-lived": 1}
    assert {s for lo, hi in details["redacted_ranges"] for s in range(lo, hi + 1)} == set(library_seqs)

    # 400 days on: the victim_identification search (365 days) and its lead age out too
    code, second = run(settings, "retention", "apply", "--at", later(400))
    # the lead, its verdict, and the search of the emptied collection (photo_library) since
    assert code == 0 and second["purged_reviews"] == 1 and second["redacted_entries"] == 3
    assert rows(settings, "SELECT count(*) AS n FROM reviews")[0]["n"] == 0
    (gone_lead,) = rows(settings, "SELECT * FROM audit_log WHERE seq = ?", victim_seq)
    assert gone_lead["probe_sha256"] is None and gone_lead["redacted_at"] is not None
    (verdict,) = rows(settings, "SELECT * FROM audit_log WHERE operation = 'review'")
    assert verdict["results"] == "null" and verdict["redacted_at"] is not None
    assert json.loads(verdict["details"])["verdict"] == "confirmed"  # who decided what stays
    # running again finds nothing more
    code, third = run(settings, "retention", "apply", "--at", later(400))
    assert (third["redacted_entries"], third["purged_reviews"], third["erased_faces"]) == (0, 0, 0)

    code, verified = run(settings, "audit", "verify")
    redacted = sorted([*library_seqs, victim_seq, *(
        r["seq"] for r in rows(settings, "SELECT seq FROM audit_log WHERE redacted_at IS NOT NULL"))])
    assert code == 0 and verified["ok"] is True
    assert verified["redactions"]["count"] == len(set(redacted))
    covered = {s for lo, hi in verified["redactions"]["ranges"] for s in range(lo, hi + 1)}
    assert covered == set(redacted)

    # an edit of a redacted entry, of its digest, or content put back, is still detected
    for column, value in (("tenant", "someone-else"), ("redactable_digest", "0" * 64),
                          ("probe_sha256", "ab" * 32), ("results", "[]")):
        with sqlite3.connect(settings.home / "catalog.sqlite3") as db:
            original = db.execute(f"SELECT {column} FROM audit_log WHERE seq = ?", (victim_seq,)).fetchone()[0]
            db.execute(f"UPDATE audit_log SET {column} = ? WHERE seq = ?", (value, victim_seq))
        code, broken = run(settings, "audit", "verify")
        assert code == 1 and (broken["ok"], broken["kind"], broken["first_bad_entry"]) == (
            False, "edited", victim_seq), column
        with sqlite3.connect(settings.home / "catalog.sqlite3") as db:
            db.execute(f"UPDATE audit_log SET {column} = ? WHERE seq = ?", (original, victim_seq))
    assert run(settings, "audit", "verify")[0] == 0


def test_collection_retention_days_must_be_positive(settings: Settings) -> None:
    refused = CliRunner().invoke(main, ["collection", "create", "c", "--retention-days", "0",
                                        "--data-dir", str(settings.home)])
    assert refused.exit_code == 2 and "--retention-days" in refused.output
    code, out = run(settings, "collection", "create", "c")
    assert code == 0 and out["retention_days"] is None
