"""Admission: what every /v1 request passes before FastAPI reads its body.

`GatedRoute` is the route class of every API router. Before the body is parsed (FastAPI
parses bodies before it runs dependencies, so a dependency would come too late) it:

1. notes which gated operation the route performs (`x-facegate-operation` in its
   OpenAPI entry), so that a refusal is recorded under the right operation;
2. refuses at once a client address that sent too many unauthenticated or failed-auth
   requests (429 RATE_LIMITED, before any key is looked up);
3. authenticates `Authorization: Bearer <key>` (401 UNAUTHENTICATED; counts against the
   client address);
4. takes a token from the key's bucket (429 RATE_LIMITED);
5. reads the body with a cap, a deadline and a budget: a declared Content-Length over
   the limit is refused at once, a body that streams past it is refused as soon as it
   does (413 REQUEST_TOO_LARGE); a body that has not arrived in `body_timeout_seconds`
   is refused (408 REQUEST_TIMEOUT), a client that goes away mid-body is recorded
   (CLIENT_DISCONNECTED); and the bytes of all bodies this worker holds may not pass
   `max_body_bytes_in_flight` (503 OVERLOADED with Retry-After). A slow client holds
   only the few bytes it sent, so slow bodies cannot starve anyone of memory or slots;
6. a JSON route refuses any other media type (415 UNSUPPORTED_MEDIA_TYPE);
7. for routes that take an image, takes one of the worker's analysis slots once the body
   is in (503 OVERLOADED with Retry-After when all are busy): decoding is bounded by
   `max_concurrent_analyses` images per worker, whatever the number of connections.

Each refusal is a `RequestRefused`, recorded in the audit log by the error handler. What
passes is decided by the policy inside the operation the endpoint calls: admission knows
who asks, the gate decides what they may do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response, params
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
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
            key_holder=self.key_holder, binding=self.binding,
        )


def gated(operation: Operation, **extra: Any) -> dict[str, Any]:
    """`openapi_extra` of a route: the operation the policy decides (published in the spec)."""
    return {OPERATION_KEY: operation.value, **extra}


def authenticate_header(engine: Facegate, header: str | None) -> tuple[str, str, str | None]:
    """(tenant, key id, key holder) of a bearer key, in a short read-only transaction of its
    own: looking a key up never waits for (nor holds up) a writer, on this host or another,
    so a flood of bad keys cannot queue on the installation's write lock."""
    if not header:
        raise RequestRefused(ErrorCode.UNAUTHENTICATED, "missing Authorization: Bearer <key>")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise RequestRefused(ErrorCode.UNAUTHENTICATED, "Authorization must be 'Bearer <key>'")
    try:
        with engine.read_sessions.begin() as session:
            view, key_id = authenticate(session, key.strip(), engine.now())
            holder = key_holder(session, key_id)
    except FacegateError as exc:
        if exc.code is ErrorCode.DATABASE_UNAVAILABLE:  # the server's fault, not the key's: not a refusal
            raise
        raise RequestRefused(exc.code, exc.message) from None
    return view.name, key_id, holder


def binding_of(engine: Facegate, key_id: str) -> tuple[str | None, str | None]:
    with engine.read_sessions.begin() as session:
        return key_binding(session, key_id)


async def read_capped(request: Request, limit: int, timeout: float, budget: BodyBudget) -> bytes:
    """The whole body, or a refusal: too large, too slow (slowloris), abandoned, or over the
    worker's budget. The bytes read stay charged to `budget` until the caller releases them."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestRefused(ErrorCode.INVALID_ARGUMENT, "Content-Length is not a number")
        if int(declared) > limit:
            raise RequestRefused(
                ErrorCode.REQUEST_TOO_LARGE, f"a body of {declared} bytes is over the limit of {limit}", limit=limit
            )
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestRefused(
                        ErrorCode.REQUEST_TOO_LARGE, f"the body is over the limit of {limit} bytes", limit=limit
                    )
                if not budget.charge(request, len(chunk)):
                    raise RequestRefused(
                        ErrorCode.OVERLOADED, f"this worker holds {budget.limit} bytes of bodies already",
                        retry_after_seconds=1,
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise RequestRefused(
            ErrorCode.REQUEST_TIMEOUT, f"the body did not arrive within {timeout:g} seconds",
            timeout_seconds=timeout, received_bytes=size,
        ) from None
    except ClientDisconnect:
        raise RequestRefused(
            ErrorCode.CLIENT_DISCONNECTED, "the client went away before its body arrived", received_bytes=size
        ) from None
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


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


class AnalysisSlots:
    """At most `limit` image analyses in flight in this worker (event-loop only, no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use -= 1


class BodyBudget:
    """Bytes of request bodies this worker holds, charged as they arrive (event-loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def charge(self, request: Request, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        request.state.body_bytes = getattr(request.state, "body_bytes", 0) + size
        return True

    def release(self, request: Request) -> None:
        self.held -= getattr(request.state, "body_bytes", 0)
        request.state.body_bytes = 0


class GatedRoute(APIRoute):
    """Refuse floods, authenticate, rate-limit, cap and time the body before FastAPI runs the endpoint."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        extra = self.openapi_extra or {}
        operation = Operation(extra[OPERATION_KEY])
        takes_image = "requestBody" in extra  # image routes publish their own (bodies.image_request_body)
        # A route with a JSON body model (not form fields: fastapi.params.File is a Form too)
        takes_json = self.body_field is not None and not isinstance(self.body_field.field_info, params.Form)

        async def admitted(request: Request) -> Response:
            request.state.operation = operation
            state = request.app.state
            if state.engine_problem is not None:  # e.g. the wrong template key: nothing may be written
                raise FacegateError(state.engine_problem.code, state.engine_problem.message)
            address = client_address(request)
            wait = state.address_limiter.wait(address)
            if wait:
                raise RequestRefused(
                    ErrorCode.RATE_LIMITED,
                    f"too many unauthenticated requests from {address}: over "
                    f"{state.address_limiter.per_minute} a minute",
                    retry_after_seconds=wait,
                )
            try:
                name, key_id, holder = await run_in_threadpool(
                    authenticate_header, state.engine, request.headers.get("authorization")
                )
            except RequestRefused:
                state.address_limiter.take(address)
                raise
            binding = await run_in_threadpool(binding_of, state.engine, key_id)
            request.state.tenant = Tenant(name, key_id, request.state.request_id, holder, binding)
            wait = state.limiter.take(key_id)
            if wait:
                raise RequestRefused(
                    ErrorCode.RATE_LIMITED, f"key {key_id} is over {state.limiter.per_minute} requests a minute",
                    retry_after_seconds=wait,
                )
            slot = False
            try:
                settings = state.settings
                body = await read_capped(
                    request, settings.max_request_bytes, settings.body_timeout_seconds, state.body_budget
                )
                media = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if takes_json and body and not is_json(media):
                    raise RequestRefused(
                        ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"send application/json, not {media or 'no Content-Type'}"
                    )
                if takes_image:
                    slot = state.slots.take()
                    if not slot:
                        raise RequestRefused(
                            ErrorCode.OVERLOADED, f"all {state.slots.limit} image analyses of this worker are busy",
                            retry_after_seconds=1,
                        )
                return await handler(Request(request.scope, replay(body, request.receive)))
            finally:
                state.body_budget.release(request)
                if slot:
                    state.slots.give_back()

        return admitted
