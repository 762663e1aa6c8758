"""Request and response models of the video-search endpoints (StartFaceSearch /
GetFaceSearch in Rekognition's terms), kept apart from the image API's models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from facegate.service.schemas import Purposeful, Strict

JOB_ID = r"^[0-9a-f]{32}$"


class VideoSearchParams(Purposeful):
    """The form fields sent with the video file part `video`."""

    fps: float | None = Field(
        default=None, gt=0, le=60, description="Frames analysed per second of video (default: the server's, 4)."
    )
    max_fmr: float | None = Field(
        default=None, gt=0, lt=1, description="Highest estimated false-match rate accepted.", examples=[1e-5]
    )


class VideoIn(Strict):
    bytes: str = Field(description="The video file, base64-encoded.", json_schema_extra={"format": "byte"})


class VideoSearchRequest(VideoSearchParams):
    """The JSON form of the same request (the video base64 in `video.bytes`)."""

    video: VideoIn


class VideoJobAccepted(BaseModel):
    job_id: str = Field(pattern=JOB_ID, description="Poll GET /v1/video-searches/{job_id}.")


class VideoJobOut(BaseModel):
    """A job's state; `results` once it succeeded, `error` ({code, message}) if it failed."""

    job_id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: float = Field(ge=0, le=1, description="Share of the video analysed.")
    collection_id: str
    purpose: str | None
    video_sha256: str
    created_at: str
    updated_at: str
    attempts: int = Field(description="Runs started; above 1 when a restart resumed the job.")
    audit_seq: int | None = Field(description="The job's audit entry, once it ended.")
    results: dict[str, Any] | None = Field(
        description="matches (per enrolled face: appearances, best frame, similarity, estimated_fmr), subjects, "
        "persons (GetFaceSearch's Persons: timestamp, person, face_matches), frames_analysed, duration, decision."
    )
    error: dict[str, Any] | None
