"""Human review over HTTP: the leads of the caller's tenant, and a reviewer's verdict.

Leads are visible and decidable only inside the tenant that searched (another tenant's
review id is REVIEW_NOT_FOUND); listing and deciding need the reviewer role and are
audited. A purpose with `four_eyes = true` refuses a verdict from the key holder who
searched (403 FOUR_EYES_REQUIRED).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query

from facegate.governance import Operation
from facegate.operations import admin as ops
from facegate.service.admission import gated
from facegate.service.deps import EngineDep, TenantDep
from facegate.service.responses import ReviewDecided, ReviewList
from facegate.service.routes import api_router
from facegate.service.schemas import PurposeQuery, ReviewVerdictRequest

router = api_router("/v1/reviews", "reviews")


@router.get("", response_model=ReviewList, openapi_extra=gated(Operation.REVIEW))
def list_reviews(
    engine: EngineDep, tenant: TenantDep,
    status: Annotated[Literal["pending", "confirmed", "rejected", "all"], Query()] = "pending",
    case_reference: Annotated[
        str | None, Query(max_length=255, description="Only the leads of this case (also the case the listing serves).")
    ] = None,
    purpose: PurposeQuery = None,
    after_id: Annotated[int, Query(ge=0, le=2**62, description="Leads after this review id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The tenant's leads, oldest first, with who searched and, once decided, who decided, when and why."""
    caller = tenant.caller(purpose, case_reference)
    found = ops.pending_reviews(
        engine, caller, status=None if status == "all" else status, case_reference=case_reference,
        after_id=after_id, limit=limit,
    )
    return {"reviews": [ops.lead_dict(engine, r) for r in found],
            "next_after_id": found[-1].review_id if len(found) == limit else None}


@router.post("/{review_id}", response_model=ReviewDecided, openapi_extra=gated(Operation.REVIEW))
def decide_review(
    review_id: Annotated[int, Path(ge=1, le=2**62)], body: ReviewVerdictRequest, engine: EngineDep,
    tenant: TenantDep,
) -> dict[str, Any]:
    """Confirm or reject a pending lead (audited)."""
    caller = tenant.caller(body.purpose, body.case_reference)
    return ops.lead_dict(engine, ops.review(engine, caller, review_id, body.verdict, body.note))
