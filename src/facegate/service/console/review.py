"""The review queue: pending leads by case, confirm or reject with a note, and the decided history."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import RedirectResponse

from facegate.governance import Operation, Review
from facegate.operations import admin
from facegate.operations import console as ops
from facegate.operations.scoring import Estimates, estimates
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, check_csrf, engine_of
from facegate.service.console.render import HEADERS, page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("/review")
def queue(request: Request, user: UserDep) -> Response:
    engine, caller = engine_of(request), user.caller(request.state.request_id)
    pending = admin.pending_reviews(engine, caller)
    cases: dict[tuple[str, str], list[tuple[Review, Estimates]]] = defaultdict(list)
    for lead in pending:  # what the similarity means: population and worst-group false-match rates
        cases[(lead.purpose or "", lead.case_reference or "")].append((lead, estimates(engine, lead.similarity)))
    history = ops.decided_reviews(engine, caller)
    thumbs = ops.thumbnails_shown(engine, caller, [lead.review_id for lead in pending]) if pending else {}
    decided = request.query_params.get("decided")
    return page(request, "review.html", user=user, cases=dict(cases), history=history, decided=decided,
                thumbs=thumbs)


@router.get("/review/{review_id}/{which}.jpg")
def thumbnail(
    request: Request, user: UserDep, review_id: Annotated[int, Path(ge=1, le=2**62)],
    which: Literal["probe", "candidate"],
) -> Response:
    """A lead's probe or candidate face for the reviewer of its tenant: biometric data, so
    the read is recorded and nothing may keep a copy (`Cache-Control: no-store`)."""
    jpeg = ops.thumbnail(engine_of(request), user.caller(request.state.request_id), review_id, which)
    return Response(jpeg, media_type="image/jpeg", headers=HEADERS)


@router.post("/review/{review_id}")
def decide(
    request: Request, user: UserDep, review_id: Annotated[int, Path(ge=1, le=2**62)],
    verdict: Annotated[Literal["confirm", "reject"], Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A reviewer's verdict through the review operation (its four-eyes rule applies), audited."""
    check_csrf(request, user, csrf, Operation.REVIEW)
    done = admin.review(engine_of(request), user.caller(request.state.request_id), review_id, verdict, note)
    return RedirectResponse(f"{PREFIX}/review?decided={done.review_id}", status_code=303)
