"""The one place where a refusal becomes an HTTP answer.

Every error leaves the service in one shape, `{"error": {"code", "message", "request_id",
...details}}`, with the status `STATUS` gives its stable code (datasette renders every
`Base400` in one handler; facegate keeps the code -> status map here and nowhere else).

Refusals the service makes itself, before any operation ran (no or bad key, a body too
large, unreadable or malformed, a rate limit), are `RequestRefused`: the gate never saw
them, so the handler records them with `Gatekeeper.refuse`, one audit entry each. Errors
raised by operations were recorded by the gate already and are only rendered. Bodies are
never echoed back or logged (they hold images): validation errors keep only where and why.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from facegate.errors import ErrorCode, FacegateError, client_message
from facegate.gate import Caller
from facegate.governance import PolicyDenied

log = logging.getLogger("facegate.service")

E = ErrorCode
STATUS: dict[ErrorCode, int] = {
    **dict.fromkeys((
        E.INVALID_ARGUMENT, E.NO_FACE, E.TOO_MANY_FACES, E.LOW_QUALITY, E.INVALID_MANIFEST, E.NOT_SUBJECT_FACE,
        E.FILE_NOT_FOUND, E.TEMPLATE_KEY_INVALID,
        E.CHECKPOINT_INVALID, E.VIDEO_CORRUPT, E.VIDEO_TRUNCATED, E.NO_VIDEO_STREAM, E.VIDEO_DIMENSIONS,
        # Nobody reads it (the client is gone); the code is for the audit entry.
        E.CLIENT_DISCONNECTED,
        # A policy file is the server's: `facegate serve` refuses a broken one at start and a
        # hot reload keeps the old one, so no request meets this code (docs/errors.md: 400).
        E.POLICY_INVALID,
    ), 400),
    E.UNAUTHENTICATED: 401,
    # Every denial by the policy, the missing purpose included: the body carries the decision.
    **dict.fromkeys((
        E.PURPOSE_REQUIRED, E.PURPOSE_UNKNOWN, E.PURPOSE_NOT_APPROVED, E.MORATORIUM,
        E.CASE_REFERENCE_REQUIRED, E.CONSENT_REFERENCE_REQUIRED, E.LIVE_USE_FORBIDDEN, E.TENANT_SUSPENDED,
        E.OPERATION_NOT_ALLOWED, E.COLLECTION_FORBIDDEN, E.AUDIT_REQUIRED, E.ROLE_REQUIRED,
        E.FMR_NOT_CERTIFIABLE, E.FOUR_EYES_REQUIRED, E.KEY_BOUND,
    ), 403),
    E.CSRF_INVALID: 403,  # a console form posted without its session's token
    **dict.fromkeys((
        E.COLLECTION_NOT_FOUND, E.FACE_NOT_FOUND, E.SUBJECT_NOT_FOUND, E.TENANT_NOT_FOUND,
        E.KEY_NOT_FOUND, E.REVIEW_NOT_FOUND, E.NOT_FOUND, E.CHECKPOINT_NOT_FOUND, E.VIDEO_JOB_NOT_FOUND,
    ), 404),
    E.METHOD_NOT_ALLOWED: 405,
    E.REQUEST_TIMEOUT: 408,
    **dict.fromkeys((E.COLLECTION_EXISTS, E.SUBJECT_EXISTS, E.TENANT_EXISTS, E.MODEL_MISMATCH), 409),
    **dict.fromkeys((E.IMAGE_TOO_LARGE, E.REQUEST_TOO_LARGE, E.VIDEO_TOO_LONG), 413),
    **dict.fromkeys((E.INVALID_IMAGE, E.UNSUPPORTED_MEDIA_TYPE, E.INVALID_VIDEO), 415),
    E.VALIDATION_ERROR: 422,
    E.RATE_LIMITED: 429,
    E.OVERLOADED: 503,
    E.DATABASE_UNAVAILABLE: 503,
    # The server's own state, never the caller's input: a missing model, a template key
    # that does not open the stored templates, a broken audit chain.
    **dict.fromkeys((E.UNKNOWN_MODEL, E.INVALID_SETTINGS, E.TEMPLATE_KEY_MISMATCH, E.AUDIT_CHAIN_BROKEN, E.INTERNAL,
                       E.CREDENTIALS_KEY_INVALID, E.VIDEO_JOB_INTERRUPTED, E.DATABASE_EXTENSION_MISSING,
                       E.DATABASE_NOT_EMPTY), 500),
    # An installation without (or with an unreadable) audit signing key cannot sign checkpoints.
    **dict.fromkeys((E.AUDIT_SIGNING_KEY_MISSING, E.AUDIT_SIGNING_KEY_INVALID), 503),
}

# Statuses of HTTP errors raised by the framework itself (no route, wrong method, ...).
_FRAMEWORK_CODES = {404: E.NOT_FOUND, 405: E.METHOD_NOT_ALLOWED, 413: E.REQUEST_TOO_LARGE}


class RequestRefused(FacegateError):
    """A refusal made by the service before any operation: recorded by the error handler."""


def status_of(code: ErrorCode) -> int:
    return STATUS.get(code, 500)


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request, code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        **jsonable_encoder(details or {}), "code": code.value, "message": client_message(code, message),
        "request_id": request_id(request),
    }
    headers: dict[str, str] = {}
    if code is E.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after_seconds" in body:
        headers["Retry-After"] = str(body["retry_after_seconds"])
    if code in (E.REQUEST_TIMEOUT, E.CLIENT_DISCONNECTED):
        headers["Connection"] = "close"  # the rest of that body is not worth waiting for
    return JSONResponse({"error": body}, status_code=status_of(code), headers=headers)


def record_refusal(request: Request, exc: FacegateError) -> None:
    """One audit entry for a request refused before the gate: who (if known), what, why."""
    operation = getattr(request.state, "operation", None)
    if operation is None:
        return  # not an API operation (an unknown path): nothing was asked of facegate
    tenant = getattr(request.state, "tenant", None)
    if tenant is None:  # before authentication: one entry per client address and minute
        client = request.client.host if request.client is not None else "unknown"
        request.app.state.refusals.refused(client, operation, exc, request_id(request) or "")
        return
    caller = Caller(
        tenant=tenant.name if tenant else None, key_id=tenant.key_id if tenant else None,
        request_id=request_id(request) or "", key_holder=tenant.key_holder if tenant else None,
    )
    collection = request.path_params.get("collection_id")
    request.app.state.engine.gate.refuse(caller, operation, exc, collection[:255] if collection else None)


async def _recorded(request: Request, exc: FacegateError) -> FacegateError | None:
    """Record a refusal; the error met instead if it could not be recorded (a database that
    does not answer): a refusal is answered only once it is on the record."""
    try:
        await run_in_threadpool(record_refusal, request, exc)
    except FacegateError as failed:
        return failed
    return None


async def facegate_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, FacegateError):
        raise exc
    if isinstance(exc, RequestRefused):
        exc = await _recorded(request, exc) or exc
    details = dict(exc.details)
    if isinstance(exc, PolicyDenied):
        details["decision"] = exc.decision.to_dict()
    if status_of(exc.code) >= 500:
        log.error("request %s failed: %s %s", request_id(request), exc.code.value, exc.message)
    return error_response(request, exc.code, exc.message, details)


def _where(error: Any) -> dict[str, Any]:
    loc = [str(part) for part in error.get("loc", ())]
    return {"loc": loc, "msg": str(error.get("msg", "")), "type": error.get("type")}


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422: the fields that failed and why, never the values that were sent."""
    errors = [_where(e) for e in exc.errors()] if isinstance(exc, RequestValidationError) else []
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    message = f"{'.'.join(first['loc'][1:] or first['loc']) or 'request'}: {first['msg']}"
    refused = RequestRefused(E.VALIDATION_ERROR, message)
    failed = await _recorded(request, refused)
    if failed is not None:
        return await facegate_error(request, failed)
    return error_response(request, E.VALIDATION_ERROR, message, {"errors": errors[:20]})


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    code = _FRAMEWORK_CODES.get(status, E.INVALID_ARGUMENT if status < 500 else E.INTERNAL)
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else "internal error"
    return error_response(request, code, str(detail))


def install(app: FastAPI) -> None:
    app.add_exception_handler(FacegateError, facegate_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
