"""Video search inside tenancy's boundaries: another tenant's collection is, to a video
search, a collection that does not exist (same code, message and audit rule) until its
owner shares `search` with it, and leads a video search opens follow the review workflow
(one lead per candidate per case and video, the searcher's key holder kept)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import text

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance.review import list_reviews
from facegate.operations.video import search_video
from facegate.operations.video_jobs import JobRunner, job_status, submit
from tests.video.conftest import COLLECTION, run_cli, video_audit
from tests.video.scenes import ENROLLED

MISSING = "no-such-people"


def _shape(error: dict[str, Any], collection_id: str) -> str:
    """An error as the caller sees it, with the collection's name taken out."""
    return repr(sorted(error.items())).replace(collection_id, "<collection>")


def test_another_tenants_collection_is_missing_to_a_video_search_until_shared(
    enrolled: Facegate, scene_video: Path
) -> None:
    settings = enrolled.settings
    code, _made = run_cli(settings, "tenant", "create", "ngo-b", "--sector", "commercial",
                          "--purposes", "photo_library")
    assert code == 0
    search = ("video", "search", "{c}", str(scene_video), "--tenant", "ngo-b", "--purpose", "photo_library",
              "--fps", "2")

    def as_b(collection_id: str) -> tuple[int, dict[str, Any]]:
        code, [answer] = run_cli(settings, *(a.replace("{c}", collection_id) for a in search))
        return code, answer

    (code, foreign), (missing_code, missing) = as_b(COLLECTION), as_b(MISSING)
    assert code == missing_code == 1 and foreign["error"]["code"] == "COLLECTION_NOT_FOUND"
    assert _shape(foreign["error"], COLLECTION) == _shape(missing["error"], MISSING)
    denied, denied_missing = video_audit(enrolled)[-2:]
    for entry in (denied, denied_missing):
        assert (entry["tenant"], entry["decision"], entry["code"], entry["rule"]) == (
            "ngo-b", "deny", "COLLECTION_NOT_FOUND", "collection:not-found")
    assert denied["collection"] == COLLECTION and denied["results"] in (None, "[]")
    # a grant of one image search opens no video search ...
    code, [granted] = run_cli(settings, "collection", "share", COLLECTION, "--with", "ngo-b",
                            "--operations", "search_image")
    assert code == 0 and [g["operation"] for g in granted["grants"]] == ["search_image"]
    assert as_b(COLLECTION)[1]["error"]["code"] == "COLLECTION_NOT_FOUND"
    # ... a grant of `search` (every search, video included) does, for its purposes only
    code, [granted] = run_cli(settings, "collection", "share", COLLECTION, "--with", "ngo-b",
                            "--operations", "search", "--purposes", "photo_library")
    assert code == 0 and "video_search" in {g["operation"] for g in granted["grants"]}
    code, found = as_b(COLLECTION)
    assert code == 0 and found["decision"]["decision"] == "allow", found
    assert {m["subject"] for m in found["matches"]} == set(ENROLLED)
    allowed = video_audit(enrolled)[-1]
    assert (allowed["tenant"], allowed["decision"], allowed["collection"]) == ("ngo-b", "allow", COLLECTION)
    # a job run under the grant, and one only queued under it; then the grant is revoked
    done_id = submit(enrolled, Caller(tenant="ngo-b", purpose="photo_library"), COLLECTION, scene_video.read_bytes())
    assert JobRunner(enrolled).run_one() is True
    job_id = submit(enrolled, Caller(tenant="ngo-b", purpose="photo_library"), COLLECTION, scene_video.read_bytes())
    assert run_cli(settings, "collection", "unshare", COLLECTION, "--with", "ngo-b")[0] == 0
    assert JobRunner(enrolled).run_one() is True
    # the queued one is refused when it runs ...
    job = job_status(enrolled, Caller(tenant="ngo-b"), job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "COLLECTION_NOT_FOUND" and job["results"] is None
    assert (video_audit(enrolled)[-1]["tenant"], video_audit(enrolled)[-1]["rule"]) == ("ngo-b", "collection:not-found")
    # ... the one that ran keeps its results for the tenant that searched (handed over on the record)
    done = job_status(enrolled, Caller(tenant="ngo-b"), done_id)
    assert done["status"] == "succeeded" and {m["subject"] for m in done["results"]["matches"]} == set(ENROLLED)
    with enrolled.db.connect() as conn:
        handed = conn.execute(text("SELECT tenant, decision, collection FROM audit_log "
                                   "WHERE operation = 'video_results' ORDER BY seq DESC LIMIT 1")).one()
    assert tuple(handed) == ("ngo-b", "allow", COLLECTION)
    assert as_b(COLLECTION)[1]["error"]["code"] == "COLLECTION_NOT_FOUND"


def test_a_repeated_video_search_opens_no_second_lead(enrolled: Facegate, scene_video: Path) -> None:
    """victim_identification requires human review: each candidate of a video search is a
    lead, opened by the gate's review workflow, so a second search of the same video in
    the same case adds none; another case opens its own."""
    alice = Caller(purpose="victim_identification", case_reference="CASE-V", key_id="key-a", key_holder="alice")

    def leads() -> list[Any]:
        with enrolled.sessions.begin() as session:
            return list_reviews(session, tenant="local", status=None)

    first = search_video(enrolled, alice, COLLECTION, scene_video, fps=2.0)
    assert first.value.review_required and len(first.value.matches) == 4
    opened = leads()
    assert sorted(r.face_id for r in opened) == sorted(m["face_id"] for m in first.value.matches)
    assert {(r.audit_seq, r.searcher_holder, r.case_reference) for r in opened} == {(first.audit_seq, "alice", "CASE-V")}
    again = search_video(enrolled, alice, COLLECTION, scene_video, fps=2.0)
    assert again.audit_seq > first.audit_seq and len(again.value.matches) == 4
    assert [r.review_id for r in leads()] == [r.review_id for r in opened]
    other_case = search_video(enrolled, replace(alice, case_reference="CASE-W"), COLLECTION, scene_video, fps=2.0)
    assert len(leads()) == 8 and {r.audit_seq for r in leads()} == {first.audit_seq, other_case.audit_seq}
