"""Video-search jobs: the catalog's record of each asynchronous video search.

Why in the catalog: a job must survive the process that accepted it. A job is claimed
with a lease (`heartbeat_at`), renewed while it runs; a job whose runner died (a crash,
a restart) has a stale lease and is claimed again by the next runner, in this process or
another. A job belongs to its tenant: every read names the tenant, and another tenant's
job does not exist (VIDEO_JOB_NOT_FOUND), as another tenant's collection does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, LargeBinary, String, Text, delete, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from facegate.errors import ErrorCode, FacegateError
from facegate.store.db import Base
from facegate.store.governance_tables import UTCDateTime

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


class VideoJobRow(Base):
    __tablename__ = "video_jobs"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(64), index=True)
    key_id: Mapped[str | None] = mapped_column(String(64))
    key_holder: Mapped[str | None] = mapped_column(String(255))  # recorded in the job's audit entry
    request_id: Mapped[str] = mapped_column(String(64))
    collection_id: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str | None] = mapped_column(String(64))
    case_reference: Mapped[str | None] = mapped_column(Text)
    fps: Mapped[float] = mapped_column(Float)
    max_fmr: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    video_path: Mapped[str] = mapped_column(Text)
    video_sha256: Mapped[str] = mapped_column(String(64))
    video_bytes: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VideoUploadRow(Base):
    """A queued job's video, in server mode: any host's runner may claim the job, so its
    upload lives in the database, not on the disk of the host that accepted it. Deleted
    when the job ends (and with it)."""

    __tablename__ = "video_uploads"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("video_jobs.job_id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)


IN_DATABASE = "database:"  # a job's video_path when its upload is a VideoUploadRow


def add_job(session: Session, *, row: VideoJobRow, upload: bytes | None = None) -> None:
    """Queue a job; `upload`: its video kept in the database (server mode), else on disk."""
    session.add(row)
    if upload is not None:
        session.flush()  # the job row first: the upload refers to it
        session.add(VideoUploadRow(job_id=row.job_id, content=upload))


def upload_of(session: Session, *, job_id: str) -> bytes | None:
    """A job's video kept in the database, or None when it is gone."""
    return session.scalar(select(VideoUploadRow.content).where(VideoUploadRow.job_id == job_id))


def drop_upload(session: Session, *, job_id: str) -> None:
    session.execute(delete(VideoUploadRow).where(VideoUploadRow.job_id == job_id))


def pending_jobs(session: Session, *, tenant: str | None) -> int:
    """Jobs of `tenant` not yet ended: each holds an upload (on disk, or in the database)."""
    return session.scalar(
        select(func.count()).select_from(VideoJobRow)
        .where(VideoJobRow.tenant == tenant, VideoJobRow.status.in_((QUEUED, RUNNING)))  # None: IS NULL
    ) or 0


def get_job(session: Session, *, job_id: str, tenant: str | None) -> VideoJobRow:
    """The tenant's job, or VIDEO_JOB_NOT_FOUND (also for another tenant's job)."""
    row = session.get(VideoJobRow, job_id)
    if row is None or row.tenant != tenant:
        raise FacegateError(ErrorCode.VIDEO_JOB_NOT_FOUND, f"no video-search job {job_id!r}", job_id=job_id)
    return row


def claim_job(session: Session, *, now: datetime, lease: timedelta) -> VideoJobRow | None:
    """Take the oldest job that is queued, or running under an expired lease (its runner
    is gone); the claim and its lease commit with the caller's transaction."""
    stale = now - lease
    row = session.scalars(
        select(VideoJobRow)
        .where(or_(VideoJobRow.status == QUEUED,
                   (VideoJobRow.status == RUNNING) & (VideoJobRow.heartbeat_at < stale)))
        .order_by(VideoJobRow.created_at)
        .limit(1)
    ).first()
    if row is None:
        return None
    row.status, row.heartbeat_at, row.updated_at = RUNNING, now, now
    row.attempts += 1
    row.progress = 0.0
    return row


def renew(session: Session, *, job_id: str, progress: float, now: datetime) -> None:
    session.execute(
        update(VideoJobRow).where(VideoJobRow.job_id == job_id, VideoJobRow.status == RUNNING)
        .values(progress=progress, heartbeat_at=now, updated_at=now)
    )


def release(session: Session, *, job_id: str, now: datetime) -> None:
    """Give a job back to the queue (its runner is stopping): the next runner resumes it."""
    session.execute(
        update(VideoJobRow).where(VideoJobRow.job_id == job_id, VideoJobRow.status == RUNNING)
        .values(status=QUEUED, heartbeat_at=None, updated_at=now)
    )


def finish(
    session: Session, *, job_id: str, now: datetime, result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None, audit_seq: int | None = None,
) -> None:
    """Record a job's end: its result (succeeded) or its error (failed)."""
    row = session.get(VideoJobRow, job_id)
    if row is None:
        return
    row.status = FAILED if error is not None else SUCCEEDED
    row.result, row.error, row.audit_seq = result, error, audit_seq
    row.progress = 1.0 if error is None else row.progress
    row.updated_at, row.heartbeat_at = now, None


def delete_expired(session: Session, *, now: datetime, retention: dict[str, int]) -> int:
    """Delete ended jobs older than their purpose's retention (days); how many went.

    A job's results name the people it found, as a search's audit entry does, and go
    when the purpose says such traces go. Jobs of a purpose the policy no longer knows
    are kept (nothing says how long).
    """
    gone = 0
    for purpose, days in retention.items():
        gone += session.execute(
            delete(VideoJobRow).where(
                VideoJobRow.purpose == purpose, VideoJobRow.status.in_((SUCCEEDED, FAILED)),
                VideoJobRow.updated_at < now - timedelta(days=days),
            )
        ).rowcount
    return gone
