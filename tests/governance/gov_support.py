"""Plain helpers for governance tests: a table calibration, tenant views, times, admin records."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from facegate.governance.audit import AuditEntry
from facegate.governance.permissions import Role
from facegate.governance.request import TenantStatus, TenantView
from facegate.vision.group_calibration import GroupCalibration, GroupCurve

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = REPO / "examples" / "policy-2020-moratorium.toml"


class TableCalibration:
    """Similarity (0..100) at a few FMRs, interpolated linearly in log10(FMR).

    Plain arithmetic standing in for a measured calibration: `decide` only needs the
    mapping from a false-match rate to a threshold, and a table makes expected values exact.
    """

    POINTS = ((1e-1, 55.0), (1e-2, 65.0), (1e-3, 72.0), (1e-4, 78.0), (1e-5, 83.0), (1e-6, 87.0))

    def threshold_at_fmr(self, fmr: float) -> float:
        x = math.log10(fmr)
        pts = [(math.log10(f), s) for f, s in self.POINTS]
        if x >= pts[0][0]:
            return pts[0][1]
        for (x0, s0), (x1, s1) in itertools.pairwise(pts):
            if x1 <= x <= x0:
                return s0 + (s1 - s0) * (x - x0) / (x1 - x0)
        return pts[-1][1]


def table_groups(shift: float = 1.0) -> GroupCalibration:
    """Two groups on TableCalibration's scale: one exactly like it, one `shift` points lower,
    both vouched for down to 1e-7: the example policy's every-group purposes then derive
    the population's thresholds, so the table's exact values still hold."""
    pts = TableCalibration.POINTS + ((1e-7, 90.0),)
    sims = np.array([s for _, s in pts])
    fmr = np.array([f for f, _ in pts])

    def curve(name: str, minus: float) -> GroupCurve:
        return GroupCurve(name, 100, 500, 10**6, sims - minus, fmr, fmr, 1e-7)

    return GroupCalibration("table", "table", "none", 0.95, (curve("g=a", 0.0), curve("g=b", shift)), "test table")


def tenant(
    name: str, sector: str, purposes: set[str], roles: set[Role] | None = None, *, suspended: bool = False
) -> TenantView:
    return TenantView(
        name=name,
        sector=sector,
        status=TenantStatus.SUSPENDED if suspended else TenantStatus.ACTIVE,
        purposes=frozenset(purposes),
        roles=frozenset(roles if roles is not None else {Role.OPERATOR}),
    )


def at(text: str) -> datetime:
    """An ISO time; a bare date means midnight UTC (as in policy files)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def admin_record(
    time: str = "2024-01-01T09:00:00Z", actor: str = "local", policy_version: str = "sha256:test"
) -> AuditEntry:
    """The audit entry the engine would build for an allowed `tenant_admin` request."""
    return AuditEntry(
        time=at(time),
        operation="tenant_admin",
        decision="allow",
        rule="role:admin",
        policy_version=policy_version,
        tenant=actor,
        sector="nonprofit",
    )
