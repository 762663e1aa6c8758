"""Recorded bias audits, their reports, and the policy requirements each one meets or fails."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from facegate.operations import console as ops
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, engine_of
from facegate.service.console.render import page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/bias")
def bias_audits(request: Request, user: UserDep) -> Response:
    engine = engine_of(request)
    board = ops.bias_audits(engine, user.caller(request.state.request_id))
    requirements = {name: p.require_bias_audit for name, p in engine.policy.rules.purposes.items()
                    if p.require_bias_audit is not None}
    return page(request, "bias.html", user=user, board=board, requirements=requirements)
