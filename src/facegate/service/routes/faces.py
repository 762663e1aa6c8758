"""Faces: index (IndexFaces, JSON or multipart), list (paginated), delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import Operation
from facegate.operations import faces as ops
from facegate.service.admission import gated
from facegate.service.bodies import ImageBody, image_body, image_request_body
from facegate.service.deps import CallerDep, EngineDep, TenantDep
from facegate.service.responses import FaceDeleted, FaceList, FacesIndexed
from facegate.service.routes import api_router
from facegate.service.schemas import SUBJECT_ID, CollectionIdPath, FaceIdPath, IndexFacesParams, IndexFacesRequest
from facegate.vision.types import Box

router = api_router("/v1/collections/{collection_id}/faces", "faces")

IndexBody = Annotated[ImageBody[IndexFacesParams], Depends(image_body(IndexFacesParams, IndexFacesRequest))]


@router.post("", response_model=FacesIndexed,
             openapi_extra=gated(Operation.INDEX, **image_request_body(IndexFacesParams, IndexFacesRequest)))
def index_faces(
    collection_id: CollectionIdPath, body: IndexBody, engine: EngineDep, tenant: TenantDep
) -> dict[str, Any]:
    """Detect the faces of an image and enrol the largest `max_faces` that pass `quality_filter`.

    With a `subject`, only the subject's face is labelled and enrolled (the one at
    `subject_box`, else the central one); the others are not indexed unless
    `index_unlabelled`.

    Faces left out are listed in `unindexed` with a reason. Sending the same image with the
    same `external_image_id` again enrols nothing new (`already_indexed`).
    """
    p = body.params
    caller = tenant.caller(p.purpose, p.case_reference, p.consent_reference)
    done = ops.index_faces(
        engine, caller, collection_id, body.images["image"], subject=p.subject,
        external_image_id=p.external_image_id, max_faces=p.max_faces, quality_filter=p.quality_filter,
        subject_box=Box(**p.subject_box.model_dump()) if p.subject_box is not None else None,
        index_unlabelled=p.index_unlabelled,
    )
    result = done.value
    return {
        "indexed": [f.to_dict() for f in result.indexed],
        "unindexed": [u.to_dict() for u in result.unindexed],
        "already_indexed": result.already_indexed,
        "image_sha256": result.image_sha256,
        "decision": done.decision.to_dict(),
    }


@router.get("", response_model=FaceList, openapi_extra=gated(Operation.LIST))
def list_faces(
    collection_id: CollectionIdPath, engine: EngineDep, caller: CallerDep,
    subject: Annotated[str | None, Query(pattern=SUBJECT_ID, max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_token: Annotated[str | None, Query(max_length=64, description="From the previous page.")] = None,
) -> dict[str, Any]:
    """The faces of a collection, oldest first, a page at a time."""
    done = ops.list_faces(engine, caller, collection_id, subject=subject, limit=limit, next_token=next_token)
    page = done.value
    return {"faces": [f.to_dict() for f in page.items], "next_token": page.next_token,
            "decision": done.decision.to_dict()}


@router.delete("/{face_id}", response_model=FaceDeleted, openapi_extra=gated(Operation.DELETE))
def delete_face(
    collection_id: CollectionIdPath, face_id: FaceIdPath, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    """Delete one face from catalog and index (404 FACE_NOT_FOUND if it is not there)."""
    done = ops.delete_faces(engine, caller, collection_id, [face_id])
    if not done.value.deleted:
        raise FacegateError(ErrorCode.FACE_NOT_FOUND, f"no face {face_id} in {collection_id!r}", face_id=face_id)
    return {"deleted": done.value.deleted, "decision": done.decision.to_dict()}
