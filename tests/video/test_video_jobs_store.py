"""The job runner in process, with a clock the test moves: a job runs once and is
recorded once; a runner that died is taken over when its lease expires; an upload that
is gone fails the job with its code; results go when the purpose's retention ends."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import select, text

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.operations import collections
from facegate.operations.video_jobs import JobRunner, job_status, submit
from facegate.settings import Settings
from facegate.store import video_jobs as jobs
from tests.video.conftest import video_audit
from tests.video.scenes import Appearance, lfw_photo, render


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clocked(settings: Settings) -> tuple[Facegate, Clock]:
    clock = Clock()
    engine = Facegate(settings, clock=clock)
    collections.create_collection(engine, Caller(), "people")
    return engine, clock


@pytest.fixture(scope="module")
def short(videos: Path) -> bytes:
    scene = [Appearance(lfw_photo("Colin_Powell", 2), 0.5, 1.5, (10, 10), (20, 10))]
    return render(videos / "short.mp4", scene, 2.0, (320, 240)).read_bytes()


CALLER = Caller(purpose="photo_library")

# Jobs are state another host must see: every test here runs on both backends, like the
# whole video suite (in server mode the upload is kept in the database, and nothing is
# written under the data directory).


def drop_upload(engine: Facegate, job_id: str) -> None:
    """Lose a queued job's upload, wherever the backend keeps it."""
    if engine.settings.server_mode:
        with engine.sessions.begin() as session:
            jobs.drop_upload(session, job_id=job_id)
    else:
        (engine.settings.home / "video-jobs" / f"{job_id}.video").unlink()


def kept_uploads(engine: Facegate) -> int:
    if engine.settings.server_mode:
        with engine.sessions() as session:
            return len(session.scalars(select(jobs.VideoUploadRow.job_id)).all())
    return len(list((engine.settings.home / "video-jobs").iterdir()))


def test_a_job_runs_once_and_is_recorded_once(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    engine, _clock = clocked
    job_id = submit(engine, CALLER, "people", short)
    assert job_status(engine, Caller(), job_id)["status"] == "queued"
    runner = JobRunner(engine)
    assert runner.run_one() is True and runner.run_one() is False
    job = job_status(engine, Caller(), job_id)
    assert job["status"] == "succeeded" and job["results"]["frames_analysed"] == 8
    assert [e["seq"] for e in video_audit(engine)] == [job["audit_seq"]]
    assert kept_uploads(engine) == 0  # an ended job's upload goes
    if engine.settings.server_mode:  # nothing but the model cache under the data directory
        assert [p.name for p in engine.settings.home.iterdir()] == ["models"]
    with pytest.raises(FacegateError) as other:
        job_status(engine, Caller(tenant="someone-else"), job_id)
    assert other.value.code is ErrorCode.VIDEO_JOB_NOT_FOUND


def video_results_audit(engine: Facegate) -> list[dict[str, object]]:
    with engine.db.connect() as conn:
        return [dict(r) for r in conn.execute(
            text("SELECT * FROM audit_log WHERE operation = 'video_results' ORDER BY seq")
        ).mappings()]


def test_each_hand_over_of_results_is_decided_and_recorded(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    """The results name people: every read that returns them is a recorded `video_results`
    operation naming the search it reads; a poll before them leaves nothing."""
    engine, _clock = clocked
    job_id = submit(engine, replace(CALLER, case_reference="CASE-7"), "people", short)
    assert job_status(engine, Caller(), job_id)["results"] is None and video_results_audit(engine) == []
    JobRunner(engine).run_one()
    first, again = (job_status(engine, Caller(key_holder="ana"), job_id) for _ in range(2))
    assert first == again and first["results"]["frames_analysed"] == 8
    entries = video_results_audit(engine)
    assert len(entries) == 2 and entries[0]["seq"] < entries[1]["seq"]
    for entry in entries:
        assert (entry["decision"], entry["collection"], entry["purpose"]) == ("allow", "people", "photo_library")
        assert (entry["case_reference"], entry["key_holder"]) == ("CASE-7", "ana")
        details = json.loads(str(entry["details"]))
        assert (details["job_id"], details["search_seq"]) == (job_id, first["audit_seq"])
    # a key bound to another purpose sees no such job, and nothing is handed over
    with pytest.raises(FacegateError) as bound:
        job_status(engine, Caller(binding=("victim_identification", None)), job_id)
    assert bound.value.code is ErrorCode.VIDEO_JOB_NOT_FOUND and len(video_results_audit(engine)) == 2


def test_a_moratorium_on_handing_results_over_withholds_them_on_the_record(
    clocked: tuple[Facegate, Clock], short: bytes, tmp_path: Path
) -> None:
    engine, clock = clocked
    job_id = submit(engine, CALLER, "people", short)
    JobRunner(engine).run_one()
    policy = tmp_path / "policy.toml"
    default = resources.files("facegate.governance").joinpath("default_policy.toml").read_text()
    policy.write_text(default + '\n[[moratoria]]\nid = "hold-results"\nsectors = ["local"]\n'
                      'operations = ["video_results"]\nstart = 2020-01-01\nreason = "results held"\n')
    withheld = Facegate(engine.settings.model_copy(update={"policy": policy}), clock=clock)
    with pytest.raises(FacegateError) as refused:
        job_status(withheld, Caller(), job_id)
    assert refused.value.code is ErrorCode.MORATORIUM
    [entry] = video_results_audit(withheld)
    assert (entry["decision"], entry["collection"], entry["code"]) == ("deny", "people", "MORATORIUM"), entry
    withheld.close()


def test_a_dead_runner_is_taken_over_after_its_lease(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    engine, clock = clocked
    job_id = submit(engine, CALLER, "people", short)
    with engine.sessions.begin() as session:  # a runner claims it, then dies without a word
        assert jobs.claim_job(session, now=clock.now, lease=timedelta(seconds=60)) is not None
    runner = JobRunner(engine)
    assert runner.run_one() is False  # the lease still holds
    clock.now += timedelta(seconds=61)
    assert runner.run_one() is True
    job = job_status(engine, Caller(), job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 2


def test_a_stopping_runner_gives_its_job_back(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    """A service shutting down mid-job: the job returns to the queue, unrecorded, for the next runner."""
    engine, _clock = clocked
    job_id = submit(engine, CALLER, "people", short)
    stopping = JobRunner(engine)
    stopping.stop()
    assert stopping.run_one() is True
    assert job_status(engine, Caller(), job_id)["status"] == "queued" and video_audit(engine) == []
    JobRunner(engine).run_one()
    job = job_status(engine, Caller(), job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 2 and len(video_audit(engine)) == 1


def test_a_lost_upload_fails_the_job_with_its_code(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    engine, _clock = clocked
    job_id = submit(engine, CALLER, "people", short)
    drop_upload(engine, job_id)
    JobRunner(engine).run_one()
    job = job_status(engine, Caller(), job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "VIDEO_JOB_INTERRUPTED"


def test_pending_jobs_are_capped_per_tenant(settings: Settings, short: bytes) -> None:
    """A flood of uploads cannot fill the disk: past the cap, refused (and recorded) until jobs end."""
    engine = Facegate(settings.model_copy(update={"max_pending_video_jobs": 2}))
    collections.create_collection(engine, Caller(), "people")
    submit(engine, CALLER, "people", short)
    submit(engine, CALLER, "people", short)
    with pytest.raises(FacegateError) as refused:
        submit(engine, CALLER, "people", short)
    assert refused.value.code is ErrorCode.RATE_LIMITED
    assert kept_uploads(engine) == 2  # the refused upload was not kept
    assert video_audit(engine)[-1]["probe_sha256"] is not None
    JobRunner(engine).run_one()
    submit(engine, CALLER, "people", short)  # one ended: room again


def test_results_go_when_the_purpose_retention_ends(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    engine, clock = clocked
    job_id = submit(engine, CALLER, "people", short)  # photo_library keeps traces 30 days
    runner = JobRunner(engine)
    runner.run_one()
    clock.now += timedelta(days=29)
    runner.run_one()
    assert job_status(engine, Caller(), job_id)["status"] == "succeeded"
    clock.now += timedelta(days=2)
    runner.run_one()
    with pytest.raises(FacegateError) as gone:
        job_status(engine, Caller(), job_id)
    assert gone.value.code is ErrorCode.VIDEO_JOB_NOT_FOUND


def test_a_job_records_the_key_holder_of_its_upload(clocked: tuple[Facegate, Clock], short: bytes) -> None:
    """The job runs long after the request that queued it, in another thread (or process
    after a restart): the key holder travels with the job into its one audit entry."""
    engine, _clock = clocked
    caller = Caller(purpose="photo_library", key_id="key-1", key_holder="alice")
    job_id = submit(engine, caller, "people", short)
    with engine.sessions.begin() as session:
        assert jobs.get_job(session, job_id=job_id, tenant=None).key_holder == "alice"
    assert JobRunner(engine).run_one() is True  # a fresh runner: only the catalog knows the caller
    job = job_status(engine, Caller(), job_id)
    [entry] = video_audit(engine)
    assert job["status"] == "succeeded" and entry["seq"] == job["audit_seq"]
    assert (entry["key_id"], entry["key_holder"]) == ("key-1", "alice")
    # a refusal at upload names the holder too; a caller without one records none
    with pytest.raises(FacegateError):
        submit(engine, caller, "no-such-collection", short)
    assert video_audit(engine)[-1]["key_holder"] == "alice"
    submit(engine, CALLER, "people", short)
    assert JobRunner(engine).run_one() is True
    assert video_audit(engine)[-1]["key_holder"] is None
