"""The transparency report page and its downloads (CSV, and the JSON of `facegate audit report`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import TransparencyReport
from facegate.governance.policy import Moratorium
from facegate.operations import audit as audit_ops
from facegate.service.console.auth import PREFIX, ConsoleRoute, UserDep, engine_of
from facegate.service.console.charts import tally_bars
from facegate.service.console.render import HEADERS, page

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

DateQuery = Annotated[str | None, Query(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")]


def _day(value: str | None, name: str, plus: int = 0) -> datetime | None:
    """A YYYY-MM-DD field as midnight UTC (`plus` days later: `until` includes its day)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"{name} is not a valid date", field=name) from None
    return datetime.combine(day + timedelta(days=plus), time(), tzinfo=UTC)


def _report(request: Request, user: UserDep, since: str | None, until: str | None) -> TransparencyReport:
    start, end = _day(since, "since"), _day(until, "until", plus=1)
    if start is not None and end is not None and end <= start:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "the period ends before it starts", field="until")
    return audit_ops.report(engine_of(request), user.caller(request.state.request_id), start, end)


def moratoria_in_force(moratoria: list[Moratorium], now: datetime, start: datetime | None,
                       end: datetime | None) -> list[tuple[Moratorium, bool]]:
    """Moratoria that overlap the period (all time when open), each with whether it is in force now."""
    lo, hi = start or datetime.min.replace(tzinfo=UTC), end or datetime.max.replace(tzinfo=UTC)
    return [(m, m.active_at(now)) for m in moratoria if m.start < hi and (m.end is None or m.end > lo)]


@router.get("/report")
def report_page(request: Request, user: UserDep, since: DateQuery = None, until: DateQuery = None) -> Response:
    rep = _report(request, user, since, until)
    engine = engine_of(request)
    charts = {
        dim: tally_bars(f"chart-{dim}", f"Requests by {dim}: allowed and denied", getattr(rep, f"by_{dim}"))
        for dim in ("month", "sector", "purpose", "operation")
    }
    moratoria = moratoria_in_force(list(engine.policy.rules.moratoria), engine.now(),
                                   _day(since, "since"), _day(until, "until", plus=1))
    query = request.url.query
    return page(request, "report.html", user=user, report=rep, charts=charts, since=since or "",
                until=until or "", moratoria=moratoria, query=f"?{query}" if query else "")


@router.get("/report.json")
def report_json(request: Request, user: UserDep, since: DateQuery = None, until: DateQuery = None) -> Response:
    """Exactly the JSON of `facegate audit report --json` for the period."""
    rep = _report(request, user, since, until)
    headers = {**HEADERS, "Content-Disposition": 'attachment; filename="transparency-report.json"'}
    return JSONResponse(rep.to_dict(), headers=headers)


@router.get("/report.csv")
def report_csv(request: Request, user: UserDep, since: DateQuery = None, until: DateQuery = None) -> Response:
    """One row per breakdown and key: dimension,key,requests,allowed,denied."""
    rep = _report(request, user, since, until)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dimension", "key", "requests", "allowed", "denied"])
    writer.writerow(["total", "all", rep.total.requests, rep.total.requests - rep.total.denied, rep.total.denied])
    for dim in ("month", "sector", "purpose", "operation"):
        for key, tally in getattr(rep, f"by_{dim}").items():
            writer.writerow([dim, key, tally.requests, tally.requests - tally.denied, tally.denied])
    for decision, count in rep.by_decision.items():
        writer.writerow(["decision", decision, count, count if decision == "allow" else 0,
                         count if decision == "deny" else 0])
    headers = {**HEADERS, "Content-Disposition": 'attachment; filename="transparency-report.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
