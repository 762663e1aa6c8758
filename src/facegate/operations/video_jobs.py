"""Asynchronous video searches (StartFaceSearch, then GetFaceSearch) that survive restarts.

`submit` checks what can be checked at once, so that a caller learns it from the upload
itself: the policy's decision (a denial is recorded and answered), the collection, and
the video's container (not a video, audio only, absurd dimensions, too long: each
recorded with its code). It then keeps the upload (under the data directory; in server
mode in the database, so that a runner on any host can take the job) and queues a job in
the catalog. A `JobRunner` thread per service process claims queued jobs and runs
each as one gated `search_video` (one audit entry, with the results). A runner that stops
gives its job back; one that dies leaves a lease that expires, and the next runner
resumes the job from the start. A job whose upload is gone is marked failed
(VIDEO_JOB_INTERRUPTED), never silently dropped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Limits, Outcome
from facegate.governance import AuditEntry, Operation, append_entry
from facegate.governance.review import within_binding
from facegate.operations.search import bound_model
from facegate.operations.video import search_video
from facegate.store import video_jobs as jobs
from facegate.vision.video import probe

log = logging.getLogger("facegate.video")
MAX_ATTEMPTS = 5  # runs started (restarts included) before a job is given up
_RENEW_EVERY = 1.0  # seconds between lease renewals (and progress updates)


class Interrupted(Exception):
    """The runner is stopping: the job goes back to the queue (no audit entry, no result)."""


def job_dir(engine: Facegate) -> Path:
    path = engine.settings.home / "video-jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _scratch_file(data: bytes) -> Path:
    """A private temporary file holding `data` (server mode decodes uploads from one; the
    data directory is not theirs to write). The caller deletes it."""
    fd, name = tempfile.mkstemp(prefix="facegate-video-", suffix=".video")  # mode 0600
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return Path(name)


@contextmanager
def _job_video(engine: Facegate, job: dict[str, Any]) -> Iterator[Path | None]:
    """The job's video as a file while it runs, or None when its upload is gone."""
    if not str(job["video_path"]).startswith(jobs.IN_DATABASE):
        path = Path(job["video_path"])
        yield path if path.is_file() else None
        return
    with engine.sessions() as session:
        upload = jobs.upload_of(session, job_id=job["job_id"])
    if upload is None:
        yield None
        return
    path = _scratch_file(upload)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _recorded(engine: Facegate, caller: Caller, collection_id: str, digest: str, exc: FacegateError) -> FacegateError:
    """Record a refusal found before queueing as the gate records any (one entry, with its
    code); the error to answer with (a denial, should the policy have changed meanwhile)."""

    def refuse(_decision: Any) -> None:
        raise exc

    try:
        engine.gate.run(caller, Operation.VIDEO_SEARCH, collection_id=collection_id, probe_sha256=digest,
                        prepare=refuse, commit=lambda _s, _d, _p: Outcome(None))
    except FacegateError as recorded:
        return recorded
    return exc


def submit(engine: Facegate, caller: Caller, collection_id: str, upload: bytes, *,
           fps: float | None = None, max_fmr: float | None = None) -> str:
    """Check and queue a video search; its job id.

    A tenant has at most `max_pending_video_jobs` jobs queued or running (RATE_LIMITED):
    each holds its upload (on disk, or in the database), and a flood of uploads must not fill either.
    """
    digest = hashlib.sha256(upload).hexdigest()
    engine.gate.admit(caller, Operation.VIDEO_SEARCH, collection_id)
    job_id = uuid.uuid4().hex
    in_database = engine.settings.server_mode
    path: Path | None = None
    try:
        with engine.sessions.begin() as session:
            pending, cap = jobs.pending_jobs(session, tenant=caller.tenant), engine.settings.max_pending_video_jobs
        if pending >= cap:
            raise FacegateError(ErrorCode.RATE_LIMITED, f"{pending} video searches are still pending (at most {cap})",
                                limit=cap)
        if in_database:
            path = _scratch_file(upload)
        else:
            path = job_dir(engine) / f"{job_id}.video"
            path.write_bytes(upload)
        bound_model(engine, collection_id)
        probe(path, engine.video_limits)
    except FacegateError as exc:
        if path is not None:
            path.unlink(missing_ok=True)
        raise _recorded(engine, caller, collection_id, digest, exc) from None
    if in_database:
        path.unlink(missing_ok=True)  # checked: from now on the database holds it
    now = engine.now()
    with engine.sessions.begin() as session:
        jobs.add_job(session, upload=upload if in_database else None, row=jobs.VideoJobRow(
            job_id=job_id, tenant=caller.tenant, key_id=caller.key_id, key_holder=caller.key_holder,
            request_id=caller.request_id,
            collection_id=collection_id, purpose=caller.purpose, case_reference=caller.case_reference,
            fps=fps or engine.settings.video_fps, max_fmr=max_fmr, status=jobs.QUEUED, progress=0.0, attempts=0,
            video_path=jobs.IN_DATABASE + job_id if in_database else str(path), video_sha256=digest, video_bytes=len(upload),
            created_at=now, updated_at=now,
        ))
    return job_id


def job_status(engine: Facegate, caller: Caller, job_id: str) -> dict[str, Any]:
    """What GetFaceSearch answers: status, progress, and the results once done.

    The results name people, so handing them over is an operation of its own
    (`video_results`): the gate decides it (the reader's role, moratoria naming it) and the
    audit log records each delivery with the search it reads, in the transaction that reads
    them (results that retention removed meanwhile are not handed over). Polls that return no
    results are neither gated nor recorded. A key bound to a purpose (and case) sees only its
    jobs."""
    with engine.sessions.begin() as session:
        status, row = _job(session, caller, job_id)
        purpose, case_reference = row.purpose, row.case_reference
    if status["results"] is None:
        return status

    def deliver(session: Session, record: AuditEntry) -> dict[str, Any]:
        handed, _row = _job(session, caller, job_id)
        found = handed["results"] if isinstance(handed["results"], dict) else {}
        append_entry(session, record.with_details(
            job_id=job_id, search_seq=handed["audit_seq"], matches=len(found.get("matches", [])),
        ))
        return handed

    reader = replace(caller, purpose=purpose, case_reference=case_reference)
    return engine.gate.run_recorded(reader, Operation.VIDEO_RESULTS, deliver, collection_id=status["collection_id"])


def _job(session: Session, caller: Caller, job_id: str) -> tuple[dict[str, Any], jobs.VideoJobRow]:
    """The caller's job as GetFaceSearch shows it, and its row; VIDEO_JOB_NOT_FOUND for any
    other (another tenant's, or one outside the key's binding)."""
    row = jobs.get_job(session, job_id=job_id, tenant=caller.tenant)
    if not within_binding(row.purpose, row.case_reference, caller.binding):
        raise FacegateError(ErrorCode.VIDEO_JOB_NOT_FOUND, f"no video-search job {job_id!r}", job_id=job_id)
    return {
        "job_id": row.job_id, "status": row.status, "progress": round(row.progress, 4),
        "collection_id": row.collection_id, "purpose": row.purpose, "video_sha256": row.video_sha256,
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
        "attempts": row.attempts, "audit_seq": row.audit_seq, "results": row.result, "error": row.error,
    }, row


def expire_jobs(engine: Facegate, session: Session) -> int:
    """Delete ended jobs past their purpose's `retention_days` (results name people)."""
    retention = {name: p.retention_days for name, p in engine.policy.rules.purposes.items()}
    return jobs.delete_expired(session, now=engine.now(), retention=retention)


class JobRunner:
    """Claims and runs queued jobs in one background thread until `stop`."""

    def __init__(self, engine: Facegate, poll_seconds: float = 1.0) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=engine.settings.video_job_lease_seconds)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="facegate-video-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.run_one()
            except FacegateError as exc:  # e.g. DATABASE_UNAVAILABLE: one line a poll, retried
                log.error("video job runner: %s %s", exc.code.value, exc.message)
                ran = False
            except Exception:  # noqa: BLE001 - the runner must outlive one bad job; logged
                log.exception("video job runner failed")
                ran = False
            if not ran:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def run_one(self) -> bool:
        """Claim and run one job; False when none is waiting (then expired jobs are deleted)."""
        engine = self.engine
        with engine.sessions.begin() as session:
            row = jobs.claim_job(session, now=engine.now(), lease=self.lease)
            if row is None:
                expire_jobs(engine, session)
                return False
            job = {c: getattr(row, c) for c in ("job_id", "tenant", "key_id", "key_holder", "request_id", "collection_id",
                                                "purpose", "case_reference", "fps", "max_fmr", "video_path",
                                                "video_sha256", "attempts")}
        self._run(job)
        return True

    def _run(self, job: dict[str, Any]) -> None:
        with _job_video(self.engine, job) as path:
            if path is None or job["attempts"] > MAX_ATTEMPTS:
                why = "its upload is gone" if path is None else f"it was tried {MAX_ATTEMPTS} times"
                self._end(job, error=FacegateError(
                    ErrorCode.VIDEO_JOB_INTERRUPTED, f"the job could not be resumed: {why}").to_dict())
                return
            self._search(job, path)

    def _search(self, job: dict[str, Any], path: Path) -> None:
        engine, job_id = self.engine, job["job_id"]
        caller = Caller(tenant=job["tenant"], key_id=job["key_id"], purpose=job["purpose"],
                        case_reference=job["case_reference"], request_id=job["request_id"],
                        key_holder=job["key_holder"])
        last = [0.0]

        def progress(done: float, total: float) -> None:
            if self._stop.is_set():
                raise Interrupted
            now = engine.now()
            if (now.timestamp() - last[0]) >= _RENEW_EVERY:
                last[0] = now.timestamp()
                with engine.sessions.begin() as session:
                    jobs.renew(session, job_id=job_id, progress=min(done / total, 0.99) if total else 0.0, now=now)

        try:
            gated = search_video(engine, caller, job["collection_id"], path, fps=job["fps"],
                                 limits=Limits(max_fmr=job["max_fmr"]), progress=progress,
                                 digest=job["video_sha256"])
        except Interrupted:
            with engine.sessions.begin() as session:
                jobs.release(session, job_id=job_id, now=engine.now())
            return
        except FacegateError as exc:  # recorded by the gate
            self._end(job, error=exc.to_dict())
            return
        result = {**gated.value.to_dict(), "decision": gated.decision.to_dict()}
        self._end(job, result=result, audit_seq=gated.audit_seq)

    def _end(self, job: dict[str, Any], **outcome: Any) -> None:
        """Record the job's end and let its upload go (with it, when in the database)."""
        with self.engine.sessions.begin() as session:
            jobs.finish(session, job_id=job["job_id"], now=self.engine.now(), **outcome)
            jobs.drop_upload(session, job_id=job["job_id"])
        if not str(job["video_path"]).startswith(jobs.IN_DATABASE):
            Path(job["video_path"]).unlink(missing_ok=True)
