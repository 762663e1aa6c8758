"""Video search as an asynchronous job: upload, 202 with a job id, then poll.

The upload is checked before it is queued (policy, collection, container): a refusal
answers the POST itself, with its code, and is recorded. The job then runs in the
service's job runner (`operations.video_jobs`), survives a restart, and is visible only
to the tenant that started it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request

from facegate.governance import Operation
from facegate.operations import video_jobs
from facegate.service.admission import gated
from facegate.service.bodies import ImageBody, image_body, image_request_body
from facegate.service.deps import EngineDep, TenantDep
from facegate.service.routes import api_router
from facegate.service.schemas import CollectionIdPath
from facegate.service.video_schemas import JOB_ID, VideoJobAccepted, VideoJobOut, VideoSearchParams, VideoSearchRequest

router = api_router("/v1", "video")


def _video_request_body() -> dict[str, Any]:
    """The image routes' two body forms (multipart, JSON), with the file part described as a video."""
    spec = image_request_body(VideoSearchParams, VideoSearchRequest, ("video",))
    form = spec["requestBody"]["content"]["multipart/form-data"]["schema"]
    form["properties"]["video"]["description"] = "The video file (MP4, Matroska/WebM, AVI, MPEG-TS, ...)."
    return spec


VideoBody = Annotated[
    ImageBody[VideoSearchParams], Depends(image_body(VideoSearchParams, VideoSearchRequest, ("video",)))
]
JobIdPath = Annotated[str, Path(pattern=JOB_ID, description="Job id from the POST.")]


@router.post(
    "/collections/{collection_id}/video-searches", status_code=202, response_model=VideoJobAccepted,
    openapi_extra=gated(Operation.VIDEO_SEARCH, **_video_request_body()),
)
def start_video_search(
    collection_id: CollectionIdPath, body: VideoBody, engine: EngineDep, tenant: TenantDep, request: Request
) -> dict[str, Any]:
    """Queue a search of the faces of a stored video (multipart part `video`); poll its job."""
    p = body.params
    caller = tenant.caller(p.purpose, p.case_reference)
    job_id = video_jobs.submit(engine, caller, collection_id, body.images["video"], fps=p.fps, max_fmr=p.max_fmr)
    request.app.state.video_jobs.wake()
    return {"job_id": job_id}


@router.get("/video-searches/{job_id}", response_model=VideoJobOut, openapi_extra=gated(Operation.VIDEO_RESULTS))
def get_video_search(job_id: JobIdPath, engine: EngineDep, tenant: TenantDep) -> dict[str, Any]:
    """A video search's status and progress, and its results once it succeeded (each answer
    that carries results is decided and recorded as `video_results`)."""
    return video_jobs.job_status(engine, tenant.caller(), job_id)
