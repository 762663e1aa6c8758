"""Signing in and out, and the console's front page."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import Operation
from facegate.operations import console as ops
from facegate.service.console.auth import (
    LOGIN_COOKIE,
    PREFIX,
    ConsoleRoute,
    UserDep,
    check_csrf,
    clear_session_cookie,
    engine_of,
    safe_next,
    same_token,
    set_session_cookie,
    take_token,
)
from facegate.service.console.render import page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _login_form(request: Request, status: int = 200, error: str | None = None, notice: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", status, csrf=token, error=error, notice=notice,
                    next=safe_next(request.query_params.get("next")))
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=f"{PREFIX}/login", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    notice = "You are signed out." if request.query_params.get("signed_out") else None
    return _login_form(request, notice=notice)


def _refused(request: Request, host: str, exc: FacegateError) -> None:
    """A failed sign-in, recorded as the API records failed authentication: it draws from the
    client address's bucket, and the log gets at most two entries per address, minute and
    worker (service/refusals.py), so a flood of posts cannot grow the log nor queue on the
    write lock once per attempt."""
    state = request.app.state
    state.address_limiter.take(host)
    state.refusals.refused(host, Operation.CONSOLE_SIGN_IN, exc, request.state.request_id)


@router.post("/login")
def login(
    request: Request,
    key: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Sign in with an API key: a session cookie on success, the form again (401) otherwise.
    Attempts are rate-limited per client address, and failed ones as the API's failed
    authentication are (FACEGATE_UNAUTHENTICATED_PER_MINUTE), so keys cannot be tried in a flood."""
    host = request.client.host if request.client else "unknown"
    take_token(request, f"console-sign-in:{host}")
    limiter = request.app.state.address_limiter
    wait = limiter.wait(host)
    if wait:
        exc = FacegateError(ErrorCode.RATE_LIMITED, f"too many failed sign-ins from {host}: over "
                            f"{limiter.per_minute} a minute; try again in {wait} s", retry_after_seconds=wait)
        request.app.state.refusals.refused(host, Operation.CONSOLE_SIGN_IN, exc, request.state.request_id)
        response = _login_form(request, 429, error=exc.message)
        response.headers["Retry-After"] = str(wait)
        return response
    if not same_token(request.cookies.get(LOGIN_COOKIE), csrf):
        exc = FacegateError(ErrorCode.CSRF_INVALID, "the sign-in form expired or was not ours: try again")
        _refused(request, host, exc)
        return _login_form(request, 403, error=exc.message)
    try:
        new = ops.sign_in(engine_of(request), key, request.state.request_id, lambda exc: _refused(request, host, exc))
    except FacegateError as exc:
        status = 401 if exc.code is ErrorCode.UNAUTHENTICATED else 403
        return _login_form(request, status, error=f"Sign-in refused ({exc.code.value}): {exc.message}")
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(request, response, new.token, new.session.expires_at)
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout")
def logout(request: Request, user: UserDep, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(request, user, csrf, Operation.CONSOLE_SIGN_OUT)
    ops.sign_out(engine_of(request), user, request.state.request_id)
    response = RedirectResponse(f"{PREFIX}/login?signed_out=1", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/")
def home(request: Request, user: UserDep) -> Response:
    return page(request, "home.html", user=user)
