"""Collections, enrolment and search through the real CLI, with the JSON contracts."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"


def run(settings: Settings, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(settings.home), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_enrol_and_search_contract(settings: Settings, peers: Path) -> None:
    assert run(settings, "collection", "create", "people")[0] == 0
    code, out = run(settings, "index", "people", str(peers / FR / "obama.jpg"), "--subject", "obama",
                    "--external-id", "o1")
    assert code == 0 and len(out["indexed"]) == 1 and out["unindexed"] == []
    run(settings, "index", "people", str(peers / FR / "biden.jpg"), "--subject", "biden")
    code, out = run(settings, "search", "people", str(peers / FR / "obama2.jpg"))
    assert code == 0
    assert [m["subject"] for m in out["matches"]] == ["obama"]
    assert set(out["matches"][0]) >= {"face_id", "subject", "external_image_id", "similarity", "estimated_fmr"}
    assert out["matches"][0]["external_image_id"] == "o1"
    code, out = run(settings, "search", "people", str(peers / FR / "obama2.jpg"), "--threshold", "99.99")
    assert code == 0 and out["matches"] == []
    code, out = run(settings, "collection", "describe", "people")
    assert out["face_count"] == 2 and out["subject_count"] == 2


def test_error_codes(settings: Settings, peers: Path) -> None:
    run(settings, "collection", "create", "people")
    assert run(settings, "collection", "create", "people")[1]["error"]["code"] == "COLLECTION_EXISTS"
    code, out = run(settings, "search", "nobody", str(peers / FR / "obama2.jpg"))
    assert code == 1 and out["error"]["code"] == "COLLECTION_NOT_FOUND"
    no_face = peers / "insightface" / "inspireface" / "crop" / "no_face.png"
    code, out = run(settings, "search", "people", str(no_face))
    assert code == 1 and out["error"]["code"] == "NO_FACE"


def test_manifest_reports_bad_rows_and_resumes(settings: Settings, peers: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    root = peers / FR
    with manifest.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["path", "subject", "external_id"])
        w.writerow([str(root / "obama.jpg"), "obama", "a"])
        w.writerow([str(root / "biden.jpg"), "biden", "b"])
        w.writerow([str(tmp_path / "missing.jpg"), "x", "c"])
        w.writerow(["", "y", "d"])  # broken row: no path
        w.writerow([str(peers / "insightface" / "inspireface" / "crop" / "no_face.png"), "z", "e"])
    run(settings, "collection", "create", "people")
    code, out = run(settings, "index", "people", "--manifest", str(manifest), "--workers", "1")
    assert code == 0
    assert len(out["indexed"]) == 2
    reasons = sorted(u["reason"] for u in out["unindexed"])
    assert reasons == ["FILE_NOT_FOUND", "INVALID_MANIFEST", "NO_FACE"]
    assert all("path" in u for u in out["unindexed"])
    code, again = run(settings, "index", "people", "--manifest", str(manifest), "--workers", "1")
    assert code == 0 and again["indexed"] == [] and again["skipped"] == 2
    assert run(settings, "collection", "describe", "people")[1]["face_count"] == 2


def test_faces_and_subjects(settings: Settings, peers: Path) -> None:
    run(settings, "collection", "create", "people")
    run(settings, "index", "people", str(peers / FR / "obama.jpg"), "--subject", "obama")
    run(settings, "index", "people", str(peers / FR / "obama3.jpg"), "--subject", "obama")
    code, listed = run(settings, "faces", "list", "people", "--limit", "1")
    assert code == 0 and len(listed["faces"]) == 1 and listed["next_token"]
    code, rest = run(settings, "faces", "list", "people", "--next-token", listed["next_token"])
    assert len(rest["faces"]) == 1 and rest["next_token"] is None
    face_id = rest["faces"][0]["face_id"]
    code, by_face = run(settings, "search", "people", "--face-id", listed["faces"][0]["face_id"])
    assert [m["face_id"] for m in by_face["matches"]] == [face_id]
    code, erased = run(settings, "subject", "erase", "people", "obama")
    assert code == 0 and len(erased["face_ids"]) == 2
    code, after = run(settings, "search", "people", str(peers / FR / "obama2.jpg"))
    assert after["matches"] == []


def test_keep_thumbnails_is_an_opt_in_of_collection_create(settings: Settings, peers: Path) -> None:
    code, made = run(settings, "collection", "create", "reviewed", "--keep-thumbnails")
    assert code == 0 and made["keep_thumbnails"] is True
    assert run(settings, "collection", "create", "bare")[1]["keep_thumbnails"] is False
    for name in ("reviewed", "bare"):
        assert run(settings, "index", name, str(peers / FR / "obama.jpg"), "--subject", "obama")[0] == 0
    assert run(settings, "collection", "describe", "reviewed")[1]["keep_thumbnails"] is True
    with sqlite3.connect(settings.home / "catalog.sqlite3") as db:
        kept = dict(db.execute("SELECT collection_id, thumbnail IS NOT NULL FROM faces").fetchall())
    assert kept == {"reviewed": 1, "bare": 0}
