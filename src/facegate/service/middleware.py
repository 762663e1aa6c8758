"""The request id: made here for every request, answered in `X-Request-ID`, kept in the audit entry.

A pure ASGI middleware (no body buffering, so uploads stream through untouched). It also
owns the last line of defence: an exception nothing else handled becomes the one JSON
error shape with status 500 and the request id, and is logged without the request body.
The id is always made by the server: a caller-chosen id could collide with another
request's audit entry.
"""

from __future__ import annotations

import json
import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("facegate.service")

HEADER = "X-Request-ID"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request %s failed with an unhandled error", rid)
            if started:
                raise
            body = json.dumps({"error": {"code": "INTERNAL", "message": "internal error", "request_id": rid}}).encode()
            await send_with_id({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            ]})
            await send({"type": "http.response.body", "body": body})
