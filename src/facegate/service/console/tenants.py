"""Tenants and approvals: who uses the installation, their roles and keys, and purpose requests."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from facegate.governance import Operation
from facegate.operations import admin
from facegate.operations import console as ops
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, check_csrf, engine_of
from facegate.service.console.render import page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/tenants")
def tenants(request: Request, user: UserDep) -> Response:
    """Tenants with roles and keys (ids and dates only: secrets are never stored), and requests."""
    engine, caller = engine_of(request), user.caller(request.state.request_id)
    found = admin.tenants(engine, caller)
    requests = ops.purpose_requests(engine, caller)
    return page(request, "tenants.html", user=user, tenants=found, requests=requests,
                answered=request.query_params.get("answered"))


@router.post("/tenants/approvals")
def answer(
    request: Request, user: UserDep,
    tenant: Annotated[str, Form(max_length=64)],
    purpose: Annotated[str, Form(max_length=64)],
    verdict: Annotated[Literal["approve", "reject"], Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(request, user, csrf, Operation.TENANT_ADMIN)
    admin.answer_approval(engine_of(request), user.caller(request.state.request_id), tenant, purpose,
                          verdict == "approve", note)
    return RedirectResponse(f"{PREFIX}/tenants?answered={tenant}:{purpose}", status_code=303)
