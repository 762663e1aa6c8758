"""Who is signed in to the console, the cookies that say so, CSRF, and the console's route class.

- The session cookie holds a random token (never the API key): HttpOnly, SameSite=Strict,
  scoped to /console, Secure over HTTPS, expiring with the session.
- Every form that changes something carries the session's CSRF token; the sign-in form,
  before any session exists, a token that must equal a cookie set with the form
  (double submit). A post without the right token is refused (403 CSRF_INVALID) and recorded.
- `ConsoleRoute` turns refusals into pages: no session sends the browser to the sign-in
  form; any other error becomes the error page with the status the API would answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.governance import Operation
from facegate.operations.console import ConsoleUser, signed_in
from facegate.service.console.render import error_page

SESSION_COOKIE = "facegate_console"
LOGIN_COOKIE = "facegate_console_login"
PREFIX = "/console"


def engine_of(request: Request) -> Facegate:
    engine: Facegate = request.app.state.engine
    return engine


def take_token(request: Request, bucket: str) -> None:
    """The service's rate limit, here too: a page costs its key what an API call costs."""
    limiter = request.app.state.limiter
    wait = limiter.take(bucket)
    if wait:
        raise FacegateError(ErrorCode.RATE_LIMITED, f"over {limiter.per_minute} requests a minute: wait {wait} s",
                            retry_after_seconds=wait)


def current_user(request: Request) -> ConsoleUser:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise FacegateError(ErrorCode.UNAUTHENTICATED, "sign in first")
    user = signed_in(engine_of(request), token)
    request.state.console_user = user
    take_token(request, user.session.key_id)
    return user


UserDep = Annotated[ConsoleUser, Depends(current_user)]


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected), str(given))


def check_csrf(request: Request, user: ConsoleUser, given: str | None, operation: Operation) -> None:
    """Refuse (and record) a form post whose CSRF token is not the session's."""
    if same_token(user.session.csrf_token, given):
        return
    exc = FacegateError(ErrorCode.CSRF_INVALID, "the form's CSRF token is missing or wrong: reload the page")
    engine_of(request).gate.refuse(user.caller(request.state.request_id), operation, exc)
    raise exc


def set_session_cookie(request: Request, response: Response, token: str, expires_at: datetime) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max(1, int((expires_at - engine_of(request).now()).total_seconds())),
        path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


class ConsoleRoute(APIRoute):
    """Console routes answer pages: refusals render, a missing session redirects to sign in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def rendered(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
                error = FacegateError(ErrorCode.VALIDATION_ERROR, f"{where}: {first.get('msg', 'invalid')}")
                return await run_in_threadpool(error_page, request, error)
            except FacegateError as exc:
                if exc.code is ErrorCode.UNAUTHENTICATED:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
                return await run_in_threadpool(error_page, request, exc)

        return rendered
