"""The policy in force, and a simulator answering as `facegate policy check` does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response

from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Operation, parse_operation
from facegate.governance.policy import Moratorium
from facegate.operations import console as ops
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, check_csrf, engine_of
from facegate.service.console.render import page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def moratorium_state(moratorium: Moratorium, now: datetime) -> str:
    if moratorium.active_at(now):
        return "in force" + ("" if moratorium.end else " until further notice")
    return "scheduled" if now < moratorium.start else "ended"


def _policy_page(request: Request, user: UserDep, status: int = 200, **extra: Any) -> Response:
    engine = engine_of(request)
    policy = ops.policy_in_force(engine, user.caller(request.state.request_id))
    now = engine.now()
    thresholds = {name: engine.calibration.threshold_at_fmr(p.max_fmr) for name, p in policy.rules.purposes.items()}
    moratoria = [(m, moratorium_state(m, now)) for m in policy.rules.moratoria]
    form = {"tenant": user.session.tenant, "purpose": "", "operation": "search_image", "case_reference": "",
            "mode": "post_event", "at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), **extra.pop("form", {})}
    return page(request, "policy.html", status, user=user, policy=policy, thresholds=thresholds,
                moratoria=moratoria, operations=[o.value for o in Operation], form=form, **extra)


@router.get("/policy")
def policy_page(request: Request, user: UserDep) -> Response:
    return _policy_page(request, user)


@router.post("/policy/simulate")
def simulate(
    request: Request, user: UserDep,
    tenant: Annotated[str, Form(max_length=64)] = "",
    purpose: Annotated[str, Form(max_length=64)] = "",
    operation: Annotated[str, Form(max_length=32)] = "search_image",
    case_reference: Annotated[str, Form(max_length=255)] = "",
    mode: Annotated[Literal["post_event", "live"], Form()] = "post_event",
    at: Annotated[str, Form(max_length=40)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The decision for a tenant, purpose, operation and time: the same dry run as the CLI's."""
    check_csrf(request, user, csrf, Operation.AUDIT_READ)
    engine = engine_of(request)
    try:
        when = datetime.fromisoformat(at) if at else engine.now()
    except ValueError:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"at must be an ISO 8601 time, got {at!r}", field="at"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    asked = Caller(tenant=tenant or None, purpose=purpose or None, case_reference=case_reference or None, mode=mode)
    decision = ops.simulate(engine, user.caller(request.state.request_id), asked, parse_operation(operation), when)
    form = {"tenant": tenant, "purpose": purpose, "operation": operation, "case_reference": case_reference,
            "mode": mode, "at": at}
    return _policy_page(request, user, form=form, decision=decision.to_dict())
