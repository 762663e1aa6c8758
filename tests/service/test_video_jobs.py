"""Video search over HTTP as an asynchronous job, on a real `facegate serve`: upload,
202 with a job id, poll until done; refusals answered at upload; another tenant's job
does not exist for it; and a server killed mid-job resumes the job after a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facegate.client import FacegateClient, FacegateHTTPError
from tests.service.server import Server, running_server
from tests.video.scenes import (
    ENROLLED,
    SCENE,
    SCENE_SECONDS,
    SCENE_SIZE,
    TRUTH,
    Appearance,
    audio_only,
    lfw_photo,
    render,
)

TENANTS = (
    ("studio", "commercial", "photo_library", "operator"),
    ("rival", "commercial", "photo_library", "operator"),
)
SETTINGS = {
    "FACEGATE_RATE_LIMIT_PER_MINUTE": "0",
    "FACEGATE_VIDEO_JOB_LEASE_SECONDS": "3",  # a killed runner's job is taken over after 3 s
    "FACEGATE_MAX_REQUEST_BYTES": str(8 * 1024 * 1024),
}
COLLECTION = "footage"


def wait_for(fg: FacegateClient, job_id: str, done: Any = ("succeeded", "failed"), timeout: float = 240.0
             ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = fg.get_video_search(job_id)
        if job["status"] in done if isinstance(done, tuple) else done(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
        time.sleep(0.2)


def within(found: list[dict[str, float]], truth: list[tuple[float, float]]) -> bool:
    return len(found) == len(truth) and all(
        abs(f["start"] - s) <= 0.5 and abs(f["end"] - e) <= 0.5 for f, (s, e) in zip(found, truth, strict=True)
    )


def enrol(running: Server) -> None:
    with running.client(running.keys["studio"]) as fg:
        fg.create_collection(COLLECTION)
        for person, numbers in ENROLLED.items():
            for n in numbers:
                fg.index_faces(COLLECTION, lfw_photo(person, n), subject=person, purpose="photo_library", max_faces=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("video-service"), model_cache, settings=SETTINGS,
                        tenants=TENANTS) as running:
        enrol(running)
        yield running


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("v") / "scene.mp4", SCENE, SCENE_SECONDS, SCENE_SIZE)


def test_job_flow_and_tenant_boundary(server: Server, scene: Path) -> None:
    with server.client(server.keys["studio"]) as fg, server.client(server.keys["rival"]) as rival:
        accepted = fg.start_video_search(COLLECTION, scene, purpose="photo_library")
        assert set(accepted) == {"job_id"}
        request_id = fg.last_request_id
        job = wait_for(fg, accepted["job_id"])
        delivered_by = fg.last_request_id  # the poll that handed over the results
        assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["attempts"] == 1, job
        results = job["results"]
        assert {s["subject"] for s in results["subjects"]} == set(ENROLLED)
        for match in results["matches"]:
            assert within(match["appearances"], TRUTH[match["subject"]]), match
        assert results["persons"] and results["frames_analysed"] >= 40 and results["decision"]["decision"] == "allow"
        # another tenant: the job does not exist for it
        with pytest.raises(FacegateHTTPError) as other:
            rival.get_video_search(accepted["job_id"])
        assert other.value.status == 404 and other.value.code == "VIDEO_JOB_NOT_FOUND"
        with pytest.raises(FacegateHTTPError) as unknown:
            fg.get_video_search("0" * 32)
        assert unknown.value.status == 404
    entries = server.entries("request_id = :rid AND operation = 'video_search'", rid=request_id)
    assert len(entries) == 1 and entries[0]["seq"] == job["audit_seq"]
    assert entries[0]["probe_sha256"] == job["video_sha256"]
    # handing the results over is recorded once, by the poll that carried them (earlier polls
    # carried none and left nothing; the rival's refusal is no delivery)
    [delivery] = server.entries("operation = 'video_results' AND details LIKE :job", job=f"%{accepted['job_id']}%")
    assert (delivery["request_id"], delivery["tenant"], delivery["decision"]) == (delivered_by, "studio", "allow")
    assert (delivery["collection"], delivery["purpose"]) == (COLLECTION, "photo_library")
    details = json.loads(str(delivery["details"]))
    assert (details["search_seq"], details["matches"]) == (job["audit_seq"], len(results["matches"]))
    assert not list((server.home / "video-jobs").glob(f"{accepted['job_id']}*"))  # the upload is gone when done


def test_refusals_answer_the_upload(server: Server, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    audio = audio_only(tmp_path / "voice.wav")
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (9 * 1024 * 1024))
    cases = [
        (dict(video=text, purpose="photo_library"), 415, "INVALID_VIDEO"),
        (dict(video=audio, purpose="photo_library"), 400, "NO_VIDEO_STREAM"),
        (dict(video=big, purpose="photo_library"), 413, "REQUEST_TOO_LARGE"),
        (dict(video=audio), 403, "PURPOSE_REQUIRED"),
        (dict(video=audio, purpose="victim_identification", case_reference="C-1"), 403, "PURPOSE_NOT_APPROVED"),
    ]
    with server.client(server.keys["studio"]) as fg:
        for kwargs, status, code in cases:
            with pytest.raises(FacegateHTTPError) as refused:
                fg.start_video_search(COLLECTION, **kwargs)
            assert (refused.value.status, refused.value.code) == (status, code), kwargs
            entries = server.entry_for(str(refused.value.request_id))
            assert len(entries) == 1 and entries[0]["operation"] == "video_search"
        with pytest.raises(FacegateHTTPError) as missing:
            fg.start_video_search("no-such-collection", audio, purpose="photo_library")
        assert missing.value.status == 404


def test_a_job_survives_a_killed_server(model_cache: Path, tmp_path: Path) -> None:
    """Kill -9 the server while a job runs; the next server resumes it from the catalog."""
    long_scene = [Appearance(a.photo, a.start + k * SCENE_SECONDS, a.end + k * SCENE_SECONDS, a.origin, a.target,
                             a.scale) for k in range(3) for a in SCENE]
    video = render(tmp_path / "long.mp4", long_scene, 3 * SCENE_SECONDS, SCENE_SIZE)
    home = tmp_path / "home"
    with running_server(home, model_cache, settings=SETTINGS, tenants=TENANTS) as first:
        enrol(first)
        keys = dict(first.keys)
        with first.client(keys["studio"]) as fg:
            job_id = fg.start_video_search(COLLECTION, video, purpose="photo_library", fps=10)["job_id"]
            running = wait_for(fg, job_id, done=lambda j: j["status"] != "queued" and j["progress"] > 0)
            assert running["status"] == "running", running
        first.process.kill()
        first.process.wait(timeout=30)
    assert first.value("SELECT status FROM video_jobs WHERE job_id = :j", j=job_id) == "running"
    assert (home / "video-jobs" / f"{job_id}.video").is_file()
    with running_server(home, model_cache, settings=SETTINGS) as again, again.client(keys["studio"]) as fg:
        job = wait_for(fg, job_id)
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        subjects = {s["subject"]: s["appearances"] for s in job["results"]["subjects"]}
        assert set(subjects) == set(ENROLLED)
        for subject, ranges in TRUTH.items():
            shifted = [(s + k * SCENE_SECONDS, e + k * SCENE_SECONDS) for k in range(3) for s, e in ranges]
            assert within(subjects[subject], shifted), (subject, subjects[subject])
        entries = again.entries("operation = 'video_search' AND probe_sha256 = :v", v=job["video_sha256"])
        assert len(entries) == 1  # the interrupted run left no entry; the resumed one left one


def _shape(error: dict[str, Any], collection_id: str) -> str:
    """An error body as the caller sees it, without its request id and the collection's name."""
    return repr(sorted((k, v) for k, v in error.items() if k != "request_id")).replace(collection_id, "<c>")


def test_another_tenants_footage_is_a_missing_collection_until_shared(server: Server, scene: Path) -> None:
    """An upload against another tenant's collection is answered and audited as one against
    a missing collection (no job, nothing stored); once the owner shares `search`, the
    grantee's job runs and its audit entry names the grantee's key holder."""
    made = server.cli("key", "create", "rival", "--holder", "rita")
    with server.client(server.keys["studio"]) as owner, server.client(str(made["key"])) as rival:
        refused: dict[str, FacegateHTTPError] = {}
        for collection_id in (COLLECTION, "no-such-footage"):
            with pytest.raises(FacegateHTTPError) as raised:
                rival.start_video_search(collection_id, scene, purpose="photo_library", fps=2)
            refused[collection_id] = raised.value
        foreign, missing = refused[COLLECTION], refused["no-such-footage"]
        assert (foreign.status, foreign.code) == (missing.status, missing.code) == (404, "COLLECTION_NOT_FOUND")
        assert _shape(foreign.error, COLLECTION) == _shape(missing.error, "no-such-footage")
        [entry] = server.entry_for(str(foreign.request_id))
        assert (entry["operation"], entry["tenant"], entry["decision"], entry["code"], entry["rule"],
                entry["key_holder"]) == ("video_search", "rival", "deny", "COLLECTION_NOT_FOUND",
                                         "collection:not-found", "rita")
        assert server.value("SELECT count(*) FROM video_jobs WHERE tenant = 'rival'") == 0
        owner.share_collection(COLLECTION, "rival", ["search"], ["photo_library"])
        try:
            job_id = rival.start_video_search(COLLECTION, scene, purpose="photo_library", fps=2)["job_id"]
            request_id = rival.last_request_id
            job = wait_for(rival, job_id)
        finally:
            owner.unshare_collection(COLLECTION, "rival")
        assert job["status"] == "succeeded", job
        assert {s["subject"] for s in job["results"]["subjects"]} == set(ENROLLED)
    [entry] = server.entry_for(str(request_id))
    assert (entry["seq"], entry["tenant"], entry["decision"], entry["key_holder"]) == (
        job["audit_seq"], "rival", "allow", "rita")
