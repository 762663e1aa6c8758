"""The transparency report: what was asked of facegate, by whom, for what, and what it refused.

Counted straight from the audit log (one entry per operation, denials included), so a
published report can be re-derived from an exported log by anyone who holds it. It names
the chain head it was computed at, so a reader can tell which log it summarises.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facegate.governance.audit import Anchor, head
from facegate.store.governance_tables import AuditLogRow, ReviewRow

NONE = "(none)"


@dataclass(frozen=True, slots=True)
class Tally:
    requests: int
    denied: int

    def to_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "allowed": self.requests - self.denied, "denied": self.denied}


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    since: str | None
    until: str | None
    total: Tally
    by_sector: dict[str, Tally]
    by_purpose: dict[str, Tally]
    by_operation: dict[str, Tally]
    by_month: dict[str, Tally]
    by_decision: dict[str, int]
    denials_by_code: dict[str, int]
    denials_by_rule: dict[str, int]
    policy_versions: dict[str, int]
    reviews: dict[str, int]  # leads by status
    head: Anchor | None

    def to_dict(self) -> dict[str, Any]:
        def tallies(d: dict[str, Tally]) -> dict[str, dict[str, int]]:
            return {k: v.to_dict() for k, v in d.items()}

        return {
            "since": self.since,
            "until": self.until,
            "total": self.total.to_dict(),
            "by_sector": tallies(self.by_sector),
            "by_purpose": tallies(self.by_purpose),
            "by_operation": tallies(self.by_operation),
            "by_month": tallies(self.by_month),
            "by_decision": self.by_decision,
            "denials_by_code": self.denials_by_code,
            "denials_by_rule": self.denials_by_rule,
            "policy_versions": self.policy_versions,
            "reviews": self.reviews,
            "head": None if self.head is None else {"seq": self.head.seq, "entry_hash": self.head.entry_hash},
        }

    def to_markdown(self) -> str:
        """A publishable text: one table per breakdown."""
        period = f"{self.since or 'the first entry'} to {self.until or 'the last entry'}"
        anchor = f"entry {self.head.seq}, hash {self.head.entry_hash}" if self.head else "empty log"
        lines = ["# facegate transparency report", "", f"Period: {period}. Audit chain head: {anchor}.", ""]
        total = self.total.to_dict()
        lines += [
            f"Requests: {total['requests']}; allowed: {total['allowed']}; denied: {total['denied']}.",
            "",
        ]
        for title, table in (
            ("sector", self.by_sector),
            ("purpose", self.by_purpose),
            ("operation", self.by_operation),
            ("month", self.by_month),
        ):
            lines += [
                f"## By {title}",
                "",
                f"| {title} | requests | allowed | denied |",
                "|---|---:|---:|---:|",
            ]
            lines += [
                f"| {k} | {v.requests} | {v.requests - v.denied} | {v.denied} |" for k, v in table.items()
            ]
            lines.append("")
        for title, counts in (
            ("Denials by code", self.denials_by_code),
            ("Denials by rule", self.denials_by_rule),
            ("Policy versions", self.policy_versions),
            ("Human review of leads", self.reviews),
        ):
            lines += [f"## {title}", "", "| | count |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in counts.items()]
            lines.append("")
        return "\n".join(lines)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def transparency_report(
    session: Session, *, since: datetime | None = None, until: datetime | None = None, tenant: str | None = None
) -> TransparencyReport:
    """Counts over audit entries with since <= time < until (UTC), grouped in the database;
    of one tenant's entries and leads only when `tenant` is given (its auditor's report)."""
    cols = (
        AuditLogRow.sector, AuditLogRow.purpose, AuditLogRow.operation, AuditLogRow.decision,
        AuditLogRow.code, AuditLogRow.rule, AuditLogRow.policy_version, func.substr(AuditLogRow.time, 1, 7),
    )  # fmt: skip
    query = select(*cols, func.count()).group_by(*cols)
    lo, hi = _iso(since), _iso(until)
    if lo is not None:
        query = query.where(AuditLogRow.time >= lo)
    if hi is not None:
        query = query.where(AuditLogRow.time < hi)
    if tenant is not None:
        query = query.where(AuditLogRow.tenant == tenant)
    requests: dict[str, Counter[str]] = defaultdict(Counter)
    denied: dict[str, Counter[str]] = defaultdict(Counter)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for sector, purpose, operation, decision, code, rule, version, month, n in session.execute(query):
        keys = {
            "sector": sector or NONE,
            "purpose": purpose or NONE,
            "operation": operation,
            "month": month,
            "total": "all",
        }
        for dim, key in keys.items():
            requests[dim][key] += n
            if decision == "deny":
                denied[dim][key] += n
        counts["decision"][decision] += n
        counts["version"][version] += n
        if decision == "deny":
            counts["code"][code or NONE] += n
            counts["rule"][rule] += n

    def tallies(dim: str) -> dict[str, Tally]:
        return {k: Tally(requests[dim][k], denied[dim][k]) for k in sorted(requests[dim])}

    review_query = select(ReviewRow.status, func.count()).group_by(ReviewRow.status)
    if since is not None:
        review_query = review_query.where(ReviewRow.created_at >= since)
    if until is not None:
        review_query = review_query.where(ReviewRow.created_at < until)
    if tenant is not None:
        review_query = review_query.where(ReviewRow.tenant == tenant)
    reviews = {status: count for status, count in session.execute(review_query)}
    return TransparencyReport(
        since=lo,
        until=hi,
        total=Tally(requests["total"]["all"], denied["total"]["all"]),
        by_sector=tallies("sector"),
        by_purpose=tallies("purpose"),
        by_operation=tallies("operation"),
        by_month=tallies("month"),
        by_decision=dict(sorted(counts["decision"].items())),
        denials_by_code=dict(counts["code"].most_common()),
        denials_by_rule=dict(counts["rule"].most_common()),
        policy_versions=dict(sorted(counts["version"].items())),
        reviews=dict(sorted(reviews.items())),
        head=head(session),
    )
