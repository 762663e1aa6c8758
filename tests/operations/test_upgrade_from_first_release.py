"""A data directory made by the code before tenant boundaries (commit 87ff696) opens with
this code, migrates in place, and keeps every face, tenant, key, lead and audit entry,
with the audit chain still verifying.

The old code is the project's own history: `git archive 87ff696 src` unpacked into a
temporary directory and run in a subprocess with the same interpreter and PYTHONPATH
pointing there. Without the git history this test fails (it never skips): an upgrade
path that is not tested is not known to work.
"""

from __future__ import annotations

import json
import os
import sqlite3
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import authenticate
from facegate.operations import admin, audit, collections, search
from facegate.settings import Settings
from facegate.store.migrations import head
from tests.conftest import LFW, REPO

BEFORE = "87ff696"

OLD_SCRIPT = """
import json, sys
from pathlib import Path
# facegate is a namespace package: drop this checkout's src (put on sys.path by the editable
# install) so that every module comes from the old tree, none from the new one.
sys.path = [p for p in sys.path if Path(p).resolve() != Path(sys.argv[4]).resolve()]
import facegate
from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import PolicyDenied
from facegate.operations import admin, collections, faces, search
from facegate.settings import Settings
from facegate.store.migrations import MIGRATIONS

home, photos = Path(sys.argv[1]), json.loads(sys.argv[2])
assert [str(Path(p).resolve()) for p in facegate.__path__] == [sys.argv[3]], list(facegate.__path__)
engine = Facegate(Settings(home=home))
local = Caller()
admin.new_tenant(engine, local, "ngo-old", "commercial", ["photo_library"], ["operator", "reviewer"])
key = admin.new_key(engine, local, "ngo-old")
collections.create_collection(engine, local, "old-gallery", "made before owners")
ids = []
for path, subject in photos:
    ids += [f.face_id for f in faces.index_faces(engine, local, "old-gallery", Path(path).read_bytes(),
                                                  subject=subject).value.indexed]
leads = search.search_image(engine, Caller(purpose="account_deduplication"), "old-gallery",
                            Path(photos[0][0]).read_bytes()).value
try:
    search.search_image(engine, Caller(tenant="ngo-old", purpose="research"), "old-gallery",
                        Path(photos[0][0]).read_bytes())
except PolicyDenied as exc:
    denied = exc.code.value
engine.close()
print(json.dumps({"key": key.key, "face_ids": ids, "leads": len(leads.matches), "denied": denied}))
"""


def _old_source(tmp_path: Path) -> Path:
    """`src/` as it was at BEFORE, unpacked under tmp_path; fails clearly without history."""
    found = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{BEFORE}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if found.returncode != 0:
        pytest.fail(f"the upgrade test needs the git history of {REPO} (commit {BEFORE}, the release before "
                    f"tenant boundaries) and cannot find it: {found.stderr.strip() or 'not a git repository'}")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "src"], capture_output=True, check=True)
    target = tmp_path / "old"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def _rows(home: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "catalog.sqlite3") as db:
        return db.execute(query).fetchall()


def test_a_data_directory_of_the_previous_release_upgrades_in_place(tmp_path: Path, model_cache: Path) -> None:
    old_src = _old_source(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    photos = [[str(LFW / "Tony_Blair" / "Tony_Blair_0001.jpg"), "tony"],
              [str(LFW / "Tony_Blair" / "Tony_Blair_0002.jpg"), "tony"],
              [str(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg"), "colin"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env["PYTHONPATH"] = str(old_src)
    made = subprocess.run([sys.executable, "-c", OLD_SCRIPT, str(home), json.dumps(photos),
                           str((old_src / "facegate").resolve()), str(REPO / "src")],
                          env=env, capture_output=True, text=True, check=False, timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    old = json.loads(made.stdout)
    assert len(old["face_ids"]) == 3 and old["leads"] >= 1 and old["denied"] == "PURPOSE_NOT_APPROVED"
    assert _rows(home, "SELECT max(version) FROM schema_version") == [(1,)]
    entries_before = _rows(home, "SELECT seq, entry_hash FROM audit_log ORDER BY seq")
    faces_before = _rows(home, "SELECT face_id, collection_id, template FROM faces ORDER BY face_id")
    tenants_before = _rows(home, "SELECT name, sector, roles FROM tenants")
    leads_before = _rows(home, "SELECT review_id, face_id, status FROM reviews ORDER BY review_id")
    assert len(entries_before) >= 7 and leads_before

    engine = Facegate(Settings(home=home))
    try:
        verified = audit.verify_chain(engine, Caller())  # opening the catalog migrates it
        assert verified.ok and verified.entries == len(entries_before)
        # every revision of this release ran (0002 tenant boundaries, 0008 video jobs, ...): the old
        # runner's schema_version (step 1) was handed over to Alembic, which took it from 0001 to head
        assert _rows(home, "SELECT version_num FROM alembic_version") == [(head(),)]
        assert _rows(home, "SELECT name FROM sqlite_master WHERE name = 'schema_version'") == []
        assert _rows(home, "SELECT count(*) FROM video_jobs") == [(0,)]
        assert _rows(home, f"SELECT seq, entry_hash FROM audit_log WHERE seq <= {len(entries_before)} ORDER BY seq") \
            == entries_before
        assert _rows(home, "SELECT face_id, collection_id, template FROM faces ORDER BY face_id") == faces_before
        # step 6: the old faces have no stored score offset (search computes theirs)
        assert _rows(home, "SELECT score_offset FROM faces") == [(None,)] * len(faces_before)
        assert _rows(home, "SELECT name, sector, roles FROM tenants") == tenants_before
        assert _rows(home, "SELECT review_id, face_id, status FROM reviews ORDER BY review_id") == leads_before
        assert _rows(home, "SELECT collection_id, owner FROM collections") == [("old-gallery", "local")]
        assert _rows(home, "SELECT key_holder FROM audit_log WHERE key_holder IS NOT NULL") == []
        assert _rows(home, "SELECT holder, purpose, aws_access_key_id FROM api_keys") == [(None, None, None)]
        # the old key still opens; existing collections are the local operator's
        with engine.sessions() as session:
            view, _ = authenticate(session, old["key"], engine.now())
        assert view.name == "ngo-old"
        assert [c.collection_id for c in collections.list_collections(engine, Caller()).value] == ["old-gallery"]
        assert collections.list_collections(engine, Caller(tenant="ngo-old")).value == []
        found = search.search_face(engine, Caller(), "old-gallery", old["face_ids"][0]).value
        assert old["face_ids"][1] in {m.face_id for m in found.matches}
        assert len(admin.pending_reviews(engine, Caller(), status=None)) == len(leads_before)
        # new entries (with a key holder) chain onto the old ones, and the whole still verifies
        new = admin.new_key(engine, Caller(), "ngo-old", holder="Olga")
        assert new.holder == "Olga" and new.aws_access_key_id is not None  # a new key gets AWS credentials
        collections.share(engine, Caller(key_holder="the operator"), "old-gallery", "ngo-old", ["list"])
        assert collections.list_collections(engine, Caller(tenant="ngo-old", key_id=new.key_id,
                                                            key_holder="Olga")).value
        after = audit.verify_chain(engine, Caller())
        assert after.ok and after.entries > len(entries_before) + 3
        assert ("Olga",) in _rows(home, "SELECT key_holder FROM audit_log WHERE key_holder IS NOT NULL")
    finally:
        engine.close()
    reopened = Facegate(Settings(home=home))  # migrating again is a no-op
    try:
        assert audit.verify_chain(reopened, Caller()).ok
    finally:
        reopened.close()
