"""The HTTP service: `create_app(settings)` builds the FastAPI app around one engine.

Nothing happens at import: the app, its engine and its settings are made by the caller
(`facegate serve`, a test, or `from_environment` when uvicorn runs several workers, each
of which builds its own). The lifespan opens the catalog (migrating it) before the first
request, warms the models up in the background so that the first search does not pay
for them, and saves the vector indexes on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.service import console, errors
from facegate.service.admission import AnalysisSlots, BodyBudget
from facegate.service.flood import FloodGate
from facegate.service.housekeeping import Housekeeping, signing_status
from facegate.service.middleware import RequestIdMiddleware
from facegate.service.aws import dispatch as aws
from facegate.service.ratelimit import RateLimiter
from facegate.service.refusals import RefusalLedger
from facegate.operations.video_jobs import JobRunner
from facegate.service.routes import audit, collections, compare, faces, health, reviews, search, subjects, video
from facegate.settings import Settings

log = logging.getLogger("facegate.service")

REFUSAL_FLUSH_SECONDS = 5.0

DESCRIPTION = """\
Face search that enforces who may use it for what. Every call under `/v1` carries
`Authorization: Bearer <key>`; face operations declare a `purpose` (and a `case_reference`
where the policy demands one). Each call is decided by the policy, answered with that
decision, and written to a hash-chained audit log under the request id returned in
`X-Request-ID`. Errors share one shape: `{"error": {"code", "message", "request_id"}}`.
"""


def _warm_up(engine: Facegate) -> None:
    try:
        engine.load_models()
    except FacegateError as exc:  # /readyz reports it; requests that need models get the error
        log.error("models could not be loaded: %s %s", exc.code.value, exc.message)


def _open_catalog(engine: Facegate) -> FacegateError | None:
    """Open (and migrate) the catalog and read the policy before the first request.

    A template key that is not the catalog's leaves the worker up but closed: /readyz
    says why (503) and every API request is refused before it could write anything.
    `facegate serve` checks the same before it starts workers; this covers a worker that
    uvicorn or a supervisor starts on its own."""
    try:
        engine.db  # noqa: B018
    except FacegateError as exc:
        if exc.code is not ErrorCode.TEMPLATE_KEY_MISMATCH:
            raise
        log.error("catalog closed to this worker: %s %s", exc.code.value, exc.message)
        return exc
    engine.policy_holder  # noqa: B018 - last good policy from the catalog if the file is broken
    return None


async def _flush_refusals(ledger: RefusalLedger) -> None:
    """Close the minute windows of aggregated refusals as their minute ends."""
    while True:
        await asyncio.sleep(REFUSAL_FLUSH_SECONDS)
        try:
            await asyncio.to_thread(ledger.flush)
        except (FacegateError, SQLAlchemyError) as exc:  # retried at the next tick
            log.error("aggregated refusals not recorded yet: %s", exc)


def create_app(settings: Settings) -> FastAPI:
    """The app for one data directory; it builds its engine when it starts serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Facegate(settings, keep_last_good_policy=True)
        app.state.engine = engine
        app.state.engine_problem = _open_catalog(engine)
        if app.state.engine_problem is not None:  # closed: nothing may write, not even housekeeping
            flusher = asyncio.create_task(_flush_refusals(app.state.refusals))
            try:
                yield
            finally:
                flusher.cancel()
            return
        threading.Thread(target=_warm_up, args=(engine,), name="facegate-warm-up", daemon=True).start()
        signing = signing_status(engine)
        if signing != "ok":
            log.warning("audit checkpoint signing %s", signing)
        # Both write (retention, checkpoints, resumed jobs): started only once the template
        # key check above has passed.
        housekeeping = Housekeeping(engine)
        housekeeping.start()
        app.state.video_jobs = JobRunner(engine)  # resumes the jobs a stopped service left
        app.state.video_jobs.start()
        flusher = asyncio.create_task(_flush_refusals(app.state.refusals))
        try:
            yield
        finally:
            flusher.cancel()
            try:
                app.state.video_jobs.stop()
                housekeeping.stop()
                await asyncio.to_thread(app.state.refusals.flush, True)  # the open minutes' counts
            finally:
                engine.close()

    app = FastAPI(title="facegate", version=version("facegate"), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.address_limiter = RateLimiter(settings.unauthenticated_per_minute)
    app.state.slots = AnalysisSlots(settings.max_concurrent_analyses)
    app.state.body_budget = BodyBudget(settings.max_body_bytes_in_flight)
    app.state.engine_problem = None
    app.state.refusals = RefusalLedger(lambda: app.state.engine.gate)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(FloodGate)  # outermost: a flooded address costs a lookup, nothing more
    errors.install(app)
    for module in (collections, faces, subjects, search, compare, audit, reviews, health, video):
        app.include_router(module.router)
    console.install(app)
    app.include_router(aws.router)  # Rekognition's JSON 1.1 protocol at the base URL
    return app


def from_environment() -> FastAPI:
    """The app from FACEGATE_* variables: what each uvicorn worker process runs (`--workers N`)."""
    return create_app(Settings())
