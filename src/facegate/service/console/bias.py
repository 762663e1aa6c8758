"""Recorded bias audits, their reports, and the policy requirements each one meets or fails."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from facegate.errors import ErrorCode, FacegateError
from facegate.operations import console as ops
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, engine_of
from facegate.service.console.render import HEADERS, page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/bias")
def bias_audits(request: Request, user: UserDep) -> Response:
    engine = engine_of(request)
    board = ops.bias_audits(engine, user.caller(request.state.request_id))
    requirements = {name: p.require_bias_audit for name, p in engine.policy.rules.purposes.items()
                    if p.require_bias_audit is not None}
    return page(request, "bias.html", user=user, board=board, requirements=requirements)


@router.get("/bias/{audit_id}.json")
def bias_report(request: Request, user: UserDep, audit_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
    """The whole report recorded with one audit (the report.json of `facegate audit-bias`)."""
    board = ops.bias_audits(engine_of(request), user.caller(request.state.request_id))
    found = next((a for a in board.audits if a.summary.audit_id == audit_id), None)
    if found is None:
        raise FacegateError(ErrorCode.NOT_FOUND, f"no recorded bias audit {audit_id}", audit_id=audit_id)
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="bias-audit-{audit_id}.json"'}
    return JSONResponse(found.report, headers=headers)
