"""One router per resource, each prefixed and tagged, all admitted by `GatedRoute`.

Every route calls exactly one operation of `facegate.operations` (which the gate decides
and records) and returns its result as the route's `response_model`. Routes are plain
`def`: FastAPI runs them in its thread pool, so face analysis never blocks the event loop.
"""

from __future__ import annotations

from fastapi import APIRouter

from facegate.service.admission import GatedRoute
from facegate.service.responses import ErrorBody

_ERRORS = {
    400: "Bad input (INVALID_ARGUMENT, NO_FACE, ...)",
    401: "No key, or a key that is unknown, revoked or expired (UNAUTHENTICATED)",
    403: "Denied by the policy (MORATORIUM, PURPOSE_REQUIRED, ROLE_REQUIRED, ...), with the decision",
    404: "Unknown collection, face or subject",
    409: "Already exists",
    413: "Body or image too large (REQUEST_TOO_LARGE, IMAGE_TOO_LARGE)",
    415: "Not an image, or a body that is neither JSON nor multipart (INVALID_IMAGE, UNSUPPORTED_MEDIA_TYPE)",
    422: "A field failed validation (VALIDATION_ERROR)",
    429: "Over the key's rate limit (RATE_LIMITED), with Retry-After",
}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()
}


def api_router(prefix: str, tag: str) -> APIRouter:
    """A router for gated endpoints: bearer key, rate limit, body cap, documented errors."""
    return APIRouter(prefix=prefix, tags=[tag], route_class=GatedRoute, responses=ERROR_RESPONSES)
