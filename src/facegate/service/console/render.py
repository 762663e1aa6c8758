"""Rendering console pages: one Jinja2 environment, the navigation, the headers, the error page.

Templates ship inside the package and autoescape everything; pages load only the console's
own stylesheet and script (the Content-Security-Policy allows nothing else, so no page
can reach a CDN). The navigation shows the pages the gate would let this tenant read: it
asks the same `decide` as every operation, without recording anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from facegate.errors import FacegateError
from facegate.governance import Operation
from facegate.operations.admin import policy_check
from facegate.operations.console import ConsoleUser
from facegate.service.errors import status_of

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    operation: Operation  # what reading it needs


PAGES = (
    Page("/console/report", "Transparency report", Operation.AUDIT_READ),
    Page("/console/audit", "Audit trail", Operation.AUDIT_READ),
    Page("/console/review", "Review queue", Operation.REVIEW),
    Page("/console/policy", "Policy", Operation.POLICY_READ),
    Page("/console/tenants", "Tenants and approvals", Operation.TENANT_ADMIN),
    Page("/console/bias", "Bias audits", Operation.AUDIT_READ),
)


def _fmr(value: float | None) -> str:
    """Rates in scientific notation (1.0e-05), as the policy writes them; none measured is 0."""
    if value is None:
        return ""
    return "0" if value == 0 else f"{value:.1e}"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return value.strftime("%Y-%m-%d %H:%M:%S")


ENV = Environment(loader=PackageLoader("facegate.service.console", "templates"), autoescape=select_autoescape())
ENV.filters["fmr"] = _fmr
ENV.filters["when"] = _when


def visible_pages(request: Request, user: ConsoleUser) -> list[Page]:
    """The pages whose operation the policy would allow this tenant now (a dry run, unrecorded)."""
    engine = request.app.state.engine
    caller, now = user.caller(request.state.request_id), engine.now()
    return [p for p in PAGES if policy_check(engine, caller, p.operation, now).allowed]


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A full page; `user` in the context gives it the navigation and the sign-out form."""
    user: ConsoleUser | None = context.get("user")
    nav = visible_pages(request, user) if user is not None else []
    html = ENV.get_template(template).render(request=request, nav=nav, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def error_page(request: Request, exc: FacegateError) -> HTMLResponse:
    """A refusal as a page with the status the API would answer (403 for a denial, ...)."""
    status = status_of(exc.code)
    decision = getattr(exc, "decision", None)
    user = getattr(request.state, "console_user", None)
    response = page(request, "error.html", status, user=user, error=exc, http_status=status,
                    decision=None if decision is None else decision.to_dict())
    if "retry_after_seconds" in exc.details:
        response.headers["Retry-After"] = str(exc.details["retry_after_seconds"])
    return response
