"""Search: by image (SearchFacesByImage), by enrolled face (SearchFaces), by subject (SearchUsers).

Threshold and result count come from the policy's decision for the declared purpose,
tightened, never loosened, by `max_fmr`, `threshold` and `max_results`. When the purpose
requires human review, the answer says the matches are investigative leads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from facegate.gate import Gated, Limits
from facegate.governance import Operation
from facegate.operations import search as ops
from facegate.service.admission import gated
from facegate.service.bodies import ImageBody, image_body, image_request_body
from facegate.service.deps import EngineDep, TenantDep
from facegate.service.responses import SearchResults
from facegate.service.routes import api_router
from facegate.service.schemas import (
    CollectionIdPath,
    FaceIdPath,
    SearchByImageRequest,
    SearchParams,
    SearchRequest,
    SubjectPath,
)

router = api_router("/v1/collections/{collection_id}", "search")

SearchBody = Annotated[ImageBody[SearchParams], Depends(image_body(SearchParams, SearchByImageRequest))]


def limits(p: SearchParams) -> Limits:
    return Limits(max_fmr=p.max_fmr, threshold=p.threshold, max_results=p.max_results)


def answer(done: Gated[ops.SearchResult]) -> dict[str, Any]:
    return {**done.value.to_dict(), "decision": done.decision.to_dict()}


@router.post("/search", response_model=SearchResults,
             openapi_extra=gated(Operation.SEARCH_IMAGE, **image_request_body(SearchParams, SearchByImageRequest)))
def search_by_image(
    collection_id: CollectionIdPath, body: SearchBody, engine: EngineDep, tenant: TenantDep
) -> dict[str, Any]:
    """The enrolled faces most like the largest face of the image."""
    p = body.params
    caller = tenant.caller(p.purpose, p.case_reference, mode=p.mode)
    return answer(ops.search_image(engine, caller, collection_id, body.images["image"], limits(p)))


@router.post("/faces/{face_id}/search", response_model=SearchResults, openapi_extra=gated(Operation.SEARCH_FACE))
def search_by_face(collection_id: CollectionIdPath, face_id: FaceIdPath, body: SearchRequest, engine: EngineDep,
                   tenant: TenantDep) -> dict[str, Any]:
    """The faces most like an enrolled face (the face itself is not a result)."""
    caller = tenant.caller(body.purpose, body.case_reference, mode=body.mode)
    return answer(ops.search_face(engine, caller, collection_id, face_id, limits(body)))


@router.post("/subjects/{subject}/search", response_model=SearchResults, openapi_extra=gated(Operation.SEARCH_SUBJECT))
def search_by_subject(collection_id: CollectionIdPath, subject: SubjectPath, body: SearchRequest, engine: EngineDep,
                      tenant: TenantDep) -> dict[str, Any]:
    """Other subjects that a subject's faces match, ranked by votes."""
    caller = tenant.caller(body.purpose, body.case_reference, mode=body.mode)
    return answer(ops.search_subject(engine, caller, collection_id, subject, limits(body)))
