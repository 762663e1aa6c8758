"""Compare (CompareFaces) and detect (DetectFaces): face operations outside any collection."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from facegate.gate import Limits
from facegate.governance import Operation
from facegate.operations import vision as ops
from facegate.service.admission import gated
from facegate.service.bodies import ImageBody, image_body, image_request_body
from facegate.service.deps import EngineDep, TenantDep
from facegate.service.responses import Comparison, Detection
from facegate.service.routes import api_router
from facegate.service.schemas import CompareParams, CompareRequest, DetectParams, DetectRequest

router = api_router("/v1", "compare")

PAIR = ("source_image", "target_image")
CompareBody = Annotated[ImageBody[CompareParams], Depends(image_body(CompareParams, CompareRequest, PAIR))]
DetectBody = Annotated[ImageBody[DetectParams], Depends(image_body(DetectParams, DetectRequest))]


@router.post("/compare", response_model=Comparison,
             openapi_extra=gated(Operation.COMPARE, **image_request_body(CompareParams, CompareRequest, PAIR)))
def compare(body: CompareBody, engine: EngineDep, tenant: TenantDep) -> dict[str, Any]:
    """The largest face of `source_image` against every face of `target_image`.

    As CompareFaces: `target_faces` (all, each with its similarity), `matches` (at or above
    the threshold, best first), `unmatched`, and a headline (`similarity`, `match`,
    `best_target_index`) that is the best match."""
    p = body.params
    caller = tenant.caller(p.purpose, p.case_reference, mode=p.mode)
    done = ops.compare(engine, caller, body.images["source_image"], body.images["target_image"],
                       Limits(max_fmr=p.max_fmr, threshold=p.threshold))
    return {**done.value.to_dict(), "decision": done.decision.to_dict()}


@router.post("/detect", response_model=Detection,
             openapi_extra=gated(Operation.DETECT, **image_request_body(DetectParams, DetectRequest)))
def detect(body: DetectBody, engine: EngineDep, tenant: TenantDep) -> dict[str, Any]:
    """Faces in an image, largest first, with landmarks and quality (an empty list if none)."""
    p = body.params
    done = ops.detect(engine, tenant.caller(p.purpose, p.case_reference), body.images["image"])
    return {"faces": [f.to_dict() for f in done.value], "decision": done.decision.to_dict()}
