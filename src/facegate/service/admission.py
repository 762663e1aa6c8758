"""Admission: what every /v1 request passes before FastAPI reads its body.

`GatedRoute` is the route class of every API router. Before the body is parsed (FastAPI
parses bodies before it runs dependencies, so a dependency would come too late) it:

1. notes which gated operation the route performs (`x-facegate-operation` in its
   OpenAPI entry), so that a refusal is recorded under the right operation;
2. authenticates `Authorization: Bearer <key>` (401 UNAUTHENTICATED);
3. takes a token from the key's bucket (429 RATE_LIMITED);
4. reads the body with a cap: a declared Content-Length over the limit is refused at
   once, a body that streams past it is refused as soon as it does (413
   REQUEST_TOO_LARGE), so an oversized upload is never held in memory whole.

Each refusal is a `RequestRefused`, recorded in the audit log by the error handler. What
passes is decided by the policy inside the operation the endpoint calls: admission knows
who asks, the gate decides what they may do.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import Message, Receive

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Operation, authenticate
from facegate.governance.keys import apply_binding, key_binding, key_holder
from facegate.service.errors import RequestRefused

OPERATION_KEY = "x-facegate-operation"


@dataclass(frozen=True, slots=True)
class Tenant:
    """The authenticated caller of one request."""

    name: str
    key_id: str
    request_id: str
    key_holder: str | None = None  # the person or system the key names
    binding: tuple[str | None, str | None] = (None, None)  # the key's (purpose, case reference)

    def caller(
        self, purpose: str | None = None, case_reference: str | None = None,
        consent_reference: str | None = None, mode: str = "post_event",
    ) -> Caller:
        """The request's caller; a key bound to a purpose (and case) declares them itself."""
        try:
            purpose, case_reference = apply_binding(*self.binding, purpose, case_reference)
        except FacegateError as exc:
            raise RequestRefused(exc.code, exc.message, **exc.details) from None
        return Caller(
            tenant=self.name, key_id=self.key_id, purpose=purpose, case_reference=case_reference,
            consent_reference=consent_reference, mode=mode, request_id=self.request_id,
            key_holder=self.key_holder,
        )


def gated(operation: Operation, **extra: Any) -> dict[str, Any]:
    """`openapi_extra` of a route: the operation the policy decides (published in the spec)."""
    return {OPERATION_KEY: operation.value, **extra}


def authenticate_header(engine: Facegate, header: str | None) -> tuple[str, str, str | None]:
    """(tenant, key id, key holder) of a bearer key, in a short transaction of its own."""
    if not header:
        raise RequestRefused(ErrorCode.UNAUTHENTICATED, "missing Authorization: Bearer <key>")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise RequestRefused(ErrorCode.UNAUTHENTICATED, "Authorization must be 'Bearer <key>'")
    try:
        with engine.sessions.begin() as session:
            view, key_id = authenticate(session, key.strip(), engine.now())
            holder = key_holder(session, key_id)
    except FacegateError as exc:
        raise RequestRefused(exc.code, exc.message) from None
    return view.name, key_id, holder


def binding_of(engine: Facegate, key_id: str) -> tuple[str | None, str | None]:
    with engine.sessions.begin() as session:
        return key_binding(session, key_id)


async def read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestRefused(ErrorCode.INVALID_ARGUMENT, "Content-Length is not a number")
        if int(declared) > limit:
            raise RequestRefused(
                ErrorCode.REQUEST_TOO_LARGE, f"a body of {declared} bytes is over the limit of {limit}", limit=limit
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRefused(
                ErrorCode.REQUEST_TOO_LARGE, f"the body is over the limit of {limit} bytes", limit=limit
            )
        chunks.append(chunk)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives the body already read, then waits on the real one."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class GatedRoute(APIRoute):
    """Authenticate, rate-limit and cap the body before FastAPI runs the endpoint."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        operation = Operation((self.openapi_extra or {})[OPERATION_KEY])

        async def admitted(request: Request) -> Response:
            request.state.operation = operation
            state = request.app.state
            name, key_id, holder = await run_in_threadpool(
                authenticate_header, state.engine, request.headers.get("authorization")
            )
            binding = await run_in_threadpool(binding_of, state.engine, key_id)
            request.state.tenant = Tenant(name, key_id, request.state.request_id, holder, binding)
            wait = state.limiter.take(key_id)
            if wait:
                raise RequestRefused(
                    ErrorCode.RATE_LIMITED, f"key {key_id} is over {state.limiter.per_minute} requests a minute",
                    retry_after_seconds=wait,
                )
            body = await read_capped(request, state.settings.max_request_bytes)
            return await handler(Request(request.scope, replay(body, request.receive)))

        return admitted
