"""Liveness and readiness, without a key: for load balancers and orchestrators.

`/healthz` answers while the process serves requests. `/readyz` answers 200 once the
catalog database answers, the template key is the catalog's and the models are loaded
(it loads them if the warm-up has not yet), else 503 with what failed: a database that
does not answer is `DATABASE_UNAVAILABLE: <why>` (never its password). `backend` says
where the state lives: "sqlite" (the data directory) or "postgresql" (server mode). Its
`policy` check says which policy decides, and "stale: <why>" when the policy file is
broken and the last good policy (kept in the catalog) stands in: still ready. In server
mode `policy_drift` says "ok", or which policy another host of the database last loaded
when it is not this host's (informative: still ready; docs/server-mode.md). Its
`audit_signing` field says whether checkpoints are signed (informative, not a check).
"""

from __future__ import annotations

from typing import Any

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from facegate.errors import UNAVAILABLE_TO_CLIENTS, ErrorCode, FacegateError, client_message
from facegate.service.deps import EngineDep
from facegate.service.housekeeping import signing_status
from facegate.service.responses import Health, Readiness

log = logging.getLogger("facegate.service")

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(engine: EngineDep, request: Request) -> Any:
    problem = request.app.state.engine_problem
    backend = "postgresql" if engine.settings.server_mode else "sqlite"
    if problem is not None:
        checks = {"template_key": f"{problem.code.value}: {problem.message}"}
        body = {"status": "unavailable", "backend": backend, "checks": checks, "audit_signing": signing_status(engine)}
        return JSONResponse(body, status_code=503)
    checks: dict[str, str] = {"template_key": "ok"}
    try:
        with engine.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except FacegateError as exc:  # server mode: where and why go to the log, not to whoever asks
        log.warning("readiness: %s %s", exc.code.value, exc.message)
        checks["database"] = f"{exc.code.value}: {client_message(exc.code, exc.message)}"[:300]
    except (SQLAlchemyError, OSError) as exc:
        log.warning("readiness: database check failed: %s", type(exc).__name__)
        checks["database"] = f"{ErrorCode.DATABASE_UNAVAILABLE.value}: {UNAVAILABLE_TO_CLIENTS}"
    try:
        engine.load_models()
        checks["models"] = "ok"
    except FacegateError as exc:
        checks["models"] = f"{exc.code.value}: {exc.message}"
    ready = all(v == "ok" for v in checks.values())
    policy = engine.policy_holder
    in_force = policy.current().version
    # Stale is still ready: the last good policy decides, and every worker answers alike.
    checks["policy"] = f"ok: {in_force}" if policy.stale is None else f"stale: {policy.stale}; in force {in_force}"
    if engine.settings.server_mode:  # informative too: hosts on one database serving different policies
        try:
            checks["policy_drift"] = engine.policy_drift() or "ok"
        except (FacegateError, SQLAlchemyError) as exc:  # the database check above says why
            checks["policy_drift"] = f"unknown: {type(exc).__name__}"
    # Informative, not a readiness check: a service without a signing key still serves.
    body = {"status": "ready" if ready else "unavailable", "backend": backend, "checks": checks,
            "audit_signing": signing_status(engine)}
    return body if ready else JSONResponse(body, status_code=503)
