"""The HTTP service: `create_app(settings)` builds the FastAPI app around one engine.

Nothing happens at import: the app, its engine and its settings are made by the caller
(`facegate serve`, a test, or `from_environment` when uvicorn runs several workers, each
of which builds its own). The lifespan opens the catalog (migrating it) before the first
request, warms the models up in the background so that the first search does not pay
for them, and saves the vector indexes on shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from facegate.engine import Facegate
from facegate.errors import FacegateError
from facegate.service import console, errors
from facegate.service.housekeeping import Housekeeping, signing_status
from facegate.service.middleware import RequestIdMiddleware
from facegate.service.aws import dispatch as aws
from facegate.service.ratelimit import RateLimiter
from facegate.operations.video_jobs import JobRunner
from facegate.service.routes import audit, collections, compare, faces, health, reviews, search, subjects, video
from facegate.settings import Settings

log = logging.getLogger("facegate.service")

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


def create_app(settings: Settings) -> FastAPI:
    """The app for one data directory; it builds its engine when it starts serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Facegate(settings)
        engine.db  # noqa: B018 - open and migrate the catalog before the first request
        app.state.engine = engine
        threading.Thread(target=_warm_up, args=(engine,), name="facegate-warm-up", daemon=True).start()
        signing = signing_status(engine)
        if signing != "ok":
            log.warning("audit checkpoint signing %s", signing)
        housekeeping = Housekeeping(engine)
        housekeeping.start()
        app.state.video_jobs = JobRunner(engine)  # resumes the jobs a stopped service left
        app.state.video_jobs.start()
        try:
            yield
        finally:
            app.state.video_jobs.stop()
            housekeeping.stop()
            engine.close()

    app = FastAPI(title="facegate", version=version("facegate"), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.add_middleware(RequestIdMiddleware)
    errors.install(app)
    for module in (collections, faces, subjects, search, compare, audit, reviews, health, video):
        app.include_router(module.router)
    console.install(app)
    app.include_router(aws.router)  # Rekognition's JSON 1.1 protocol at the base URL
    return app


def from_environment() -> FastAPI:
    """The app from FACEGATE_* variables: what each uvicorn worker process runs (`--workers N`)."""
    return create_app(Settings())
