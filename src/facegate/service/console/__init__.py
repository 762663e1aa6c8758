"""The oversight console: server-rendered pages under /console/ in the service's own app.

For the people the audit trail is for (an oversight board, an auditor, a reviewer, an
administrator) who do not use a terminal. Every page reads through `facegate.operations`
and every action passes the gate, so the console can never show or do more than the API
would let the same key; it only renders. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from facegate.service.console import bias, policy, report, review, session, tenants, trail


def install(app: FastAPI) -> None:
    """Mount the console's pages and its static files (stylesheet, script) on `app`."""
    for module in (session, report, trail, review, policy, tenants, bias):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(packages=[("facegate.service.console", "static")]), name="console-static")
