"""The cheapest possible answer to a flood: a client address that is over its limit of
unauthenticated requests, and whose refusals this minute are already on the record, gets
its 429 here, before routing, request objects or any thread.

A pure ASGI middleware, outermost: each flooded request costs a dictionary lookup and a
canned answer. Everything it cannot answer that cheaply (the first refusal of a minute,
which must be recorded with its operation; any address under its limit) goes on to
`GatedRoute`, which refuses with the same code and records it. The Rekognition door
(`POST /`, service/aws/dispatch.py) is guarded alike, its 429 spoken as AWS's
ThrottlingException (`__type`, `x-amzn-RequestId`).
"""

from __future__ import annotations

import json
import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from facegate.errors import ErrorCode
from facegate.service.aws.errors import aws_error


class FloodGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        aws = scope["type"] == "http" and scope["path"] == "/" and scope["method"] == "POST"
        if scope["type"] == "http" and (aws or scope["path"].startswith("/v1/")):
            state = scope["app"].state
            client = scope.get("client")
            address = client[0] if client else "unknown"
            wait = state.address_limiter.wait(address)
            if wait and state.refusals.count_if_open(address, ErrorCode.RATE_LIMITED):
                await (_refuse_aws if aws else _refuse)(send, address, wait, state.address_limiter.per_minute)
                return
        await self.app(scope, receive, send)


def _message(address: str, per_minute: int) -> str:
    return f"too many unauthenticated requests from {address}: over {per_minute} a minute"


async def _refuse(send: Send, address: str, wait: int, per_minute: int) -> None:
    rid = uuid.uuid4().hex
    body = json.dumps({"error": {
        "code": ErrorCode.RATE_LIMITED.value, "request_id": rid, "retry_after_seconds": wait,
        "message": _message(address, per_minute),
    }}).encode()
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(wait).encode()), (b"x-request-id", rid.encode()),
    ]})
    await send({"type": "http.response.body", "body": body})


async def _refuse_aws(send: Send, address: str, wait: int, per_minute: int) -> None:
    rid = uuid.uuid4().hex
    error = aws_error(ErrorCode.RATE_LIMITED, _message(address, per_minute))
    body = json.dumps(error.body()).encode()
    decision = json.dumps({"decision": "deny", "code": ErrorCode.RATE_LIMITED.value, "rule": "request:invalid"},
                          separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": error.status, "headers": [
        (b"content-type", b"application/x-amz-json-1.1"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(wait).encode()), (b"x-amzn-requestid", rid.encode()),
        (b"x-facegate-decision", decision),
    ]})
    await send({"type": "http.response.body", "body": body})
