"""Tenant boundaries through the CLI (`--tenant`): every collection command run by tenant B
on tenant A's collection fails exactly as on a collection that does not exist, is audited
as a denial, and leaves A's data as it was; sharing and roles are commands too."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings
from tests.conftest import LFW

A_GALLERY = "a-gallery"
MISSING = "zz-no-such-gallery"
PURPOSE = ("--purpose", "photo_library")


def photo(person: str, n: int) -> str:
    return str(LFW / person / f"{person}_{n:04d}.jpg")


def run(home: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(home), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


@dataclass
class World:
    home: Path
    face_ids: list[str]
    manifest: Path

    def a_view(self) -> dict[str, object]:
        """A's own view: counts, faces and the result of a search."""
        code, described = run(self.home, "collection", "describe", A_GALLERY, "--tenant", "ngo-a")
        assert code == 0
        code, found = run(self.home, "search", A_GALLERY, "--face-id", self.face_ids[0], "--tenant", "ngo-a", *PURPOSE)
        assert code == 0
        code, faces = run(self.home, "faces", "list", A_GALLERY, "--tenant", "ngo-a")
        return {
            "counts": (described["face_count"], described["subject_count"]),
            "faces": sorted(f["face_id"] for f in faces["faces"]),
            "search": [(m["face_id"], m["similarity"]) for m in found["matches"]],
        }

    def last_entry(self) -> dict[str, object]:
        with sqlite3.connect(self.home / "catalog.sqlite3") as db:
            db.row_factory = sqlite3.Row
            return dict(db.execute("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> World:
    home = tmp_path_factory.mktemp("cli-tenancy")
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    for name in ("ngo-a", "ngo-b", "ngo-c"):
        assert run(home, "tenant", "create", name, "--sector", "commercial", "--purposes", "photo_library")[0] == 0
    assert run(home, "collection", "create", A_GALLERY, "--tenant", "ngo-a")[1]["owner"] == "ngo-a"
    code, tony = run(home, "index", A_GALLERY, photo("Tony_Blair", 1), photo("Tony_Blair", 2),
                     "--subject", "tony_blair", "--tenant", "ngo-a", *PURPOSE)
    assert code == 0
    code, colin = run(home, "index", A_GALLERY, photo("Colin_Powell", 1), "--subject", "colin",
                      "--tenant", "ngo-a", *PURPOSE)
    manifest = home / "manifest.csv"
    manifest.write_text(f"path,subject\n{photo('Tony_Blair', 3)},tony_blair\n")
    return World(home, [f["face_id"] for f in tony["indexed"] + colin["indexed"]], manifest)


ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("collection describe", ("collection", "describe", "{c}")),
    ("faces list", ("faces", "list", "{c}")),
    ("subject list", ("subject", "list", "{c}")),
    ("search by image", ("search", "{c}", photo("Tony_Blair", 3), *PURPOSE)),
    ("search by face", ("search", "{c}", "--face-id", "{face0}", *PURPOSE)),
    ("search by subject", ("search", "{c}", "--subject", "tony_blair", *PURPOSE)),
    ("index", ("index", "{c}", photo("Tony_Blair", 3), *PURPOSE)),
    ("index a manifest", ("index", "{c}", "--manifest", "{manifest}", *PURPOSE)),
    ("subject create", ("subject", "create", "{c}", "intruder")),
    ("subject associate", ("subject", "associate", "{c}", "tony_blair", "{face2}")),
    ("faces delete", ("faces", "delete", "{c}", "{face0}")),
    ("subject erase", ("subject", "erase", "{c}", "tony_blair")),
    ("collection delete", ("collection", "delete", "{c}")),
    ("collection share", ("collection", "share", "{c}", "--with", "ngo-b", "--operations", "search")),
    ("collection unshare", ("collection", "unshare", "{c}", "--with", "ngo-c")),
]


def _args(world: World, template: tuple[str, ...], collection_id: str) -> list[str]:
    values = {"c": collection_id, "face0": world.face_ids[0], "face2": world.face_ids[2],
              "manifest": str(world.manifest)}
    return [part.format(**values) if "{" in part else part for part in template]


@pytest.mark.parametrize("template", [t for _, t in ROWS], ids=[label for label, _ in ROWS])
def test_another_tenants_collection_is_a_missing_collection(world: World, template: tuple[str, ...]) -> None:
    before = world.a_view()
    answers = {}
    for collection_id in (A_GALLERY, MISSING):
        code, out = run(world.home, *_args(world, template, collection_id), "--tenant", "ngo-b")
        entry = world.last_entry()
        assert code == 1 and out["error"] == {
            "code": "COLLECTION_NOT_FOUND", "message": f"no collection {collection_id!r}", "collection_id": collection_id}
        assert (entry["decision"], entry["code"], entry["rule"], entry["tenant"], entry["collection"]) == (
            "deny", "COLLECTION_NOT_FOUND", "collection:not-found", "ngo-b", collection_id)
        answers[collection_id] = set(out["error"])
    assert answers[A_GALLERY] == answers[MISSING]
    assert world.a_view() == before


def test_listings_show_only_owned_or_granted_collections(world: World) -> None:
    def listed(*who: str) -> set[str]:
        code, out = run(world.home, "collection", "list", *who)
        assert code == 0
        return {c["collection_id"] for c in out["collections"]}

    assert A_GALLERY in listed("--tenant", "ngo-a")
    assert A_GALLERY not in listed("--tenant", "ngo-c")
    assert A_GALLERY not in listed()  # the local operator too sees only its own


def test_share_and_unshare_through_the_cli(world: World) -> None:
    code, shared = run(world.home, "collection", "share", A_GALLERY, "--with", "ngo-c", "--operations", "list",
                       "--tenant", "ngo-a")
    assert code == 0 and [g["operation"] for g in shared["grants"]] == ["list"]
    assert run(world.home, "faces", "list", A_GALLERY, "--tenant", "ngo-c")[0] == 0
    code, out = run(world.home, "search", A_GALLERY, "--face-id", world.face_ids[0], "--tenant", "ngo-c", *PURPOSE)
    assert code == 1 and out["error"]["code"] == "COLLECTION_NOT_FOUND"  # search was not shared
    code, revoked = run(world.home, "collection", "unshare", A_GALLERY, "--with", "ngo-c", "--tenant", "ngo-a")
    assert code == 0 and revoked["revoked"] == ["list"]
    code, out = run(world.home, "faces", "list", A_GALLERY, "--tenant", "ngo-c")
    assert code == 1 and out["error"]["code"] == "COLLECTION_NOT_FOUND"
    code, out = run(world.home, "collection", "share", A_GALLERY, "--with", "ngo-c", "--operations", "delete_collection",
                    "--tenant", "ngo-a")
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT"


def test_roles_are_managed_and_oversight_is_the_local_operators_to_give(world: World) -> None:
    assert run(world.home, "tenant", "create", "ngo-d", "--sector", "commercial")[0] == 0
    code, info = run(world.home, "tenant", "roles", "ngo-d", "--add", "reviewer,auditor", "--remove", "operator")
    assert code == 0 and info["roles"] == ["auditor", "reviewer"]
    code, out = run(world.home, "tenant", "roles", "ngo-d", "--add", "admin")
    assert code == 0
    code, out = run(world.home, "tenant", "roles", "ngo-b", "--add", "oversight", "--as-tenant", "ngo-d")
    assert code == 1 and out["error"]["code"] == "ROLE_REQUIRED"  # an admin tenant may not grant oversight
    code, out = run(world.home, "tenant", "roles", "ngo-d", "--add", "oversight")
    assert code == 0 and "oversight" in out["roles"]
    code, out = run(world.home, "tenant", "roles", "ngo-d", "--add", "superuser")
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT"
    with sqlite3.connect(world.home / "catalog.sqlite3") as db:
        changes = db.execute("SELECT count(*) FROM audit_log WHERE json_extract(details, '$.action') = 'tenant_roles'"
                             " AND json_extract(details, '$.target_tenant') = 'ngo-d'").fetchone()[0]
    assert changes == 3
    code, key = run(world.home, "key", "create", "ngo-d", "--holder", "Carol Reviewer")
    assert code == 0 and key["holder"] == "Carol Reviewer" and {"key_id", "key"} <= set(key)
