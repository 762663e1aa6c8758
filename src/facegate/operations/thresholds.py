"""The cost of each purpose's promise: population and every-group thresholds, per group.

`facegate policy thresholds` prints, for every purpose of the policy in force, the
similarity threshold its `max_fmr` derives for the population and for every group, which
one is in force (`fmr_holds_for`), and for each group of the shipped group calibration
its FMR (upper bound) and FNMR at the threshold in force. A read of the policy and the
shipped calibrations, like `policy show`: nothing is performed or recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.engine import Facegate
from facegate.governance.decision import Promise, purpose_promise


@dataclass(frozen=True, slots=True)
class GroupAtThreshold:
    group: str
    threshold_at_max_fmr: float | None  # None: the group cannot support max_fmr
    lowest_certifiable_fmr: float
    fmr_upper: float  # at the threshold in force
    fnmr: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "threshold_at_max_fmr": _round(self.threshold_at_max_fmr),
            "lowest_certifiable_fmr": self.lowest_certifiable_fmr,
            "fmr_upper": self.fmr_upper,
            "fnmr": self.fnmr,
        }


@dataclass(frozen=True, slots=True)
class PurposeThresholds:
    purpose: str
    max_fmr: float
    fmr_holds_for: str
    accept_lowest_certifiable_fmr: bool
    population_threshold: float
    every_group_threshold: float | None  # None: some group cannot support max_fmr
    certifiable: bool
    threshold: float | None  # in force; None when the purpose is refused (FMR_NOT_CERTIFIABLE)
    certified_fmr: float | None
    groups: tuple[GroupAtThreshold, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "purpose": self.purpose,
            "max_fmr": self.max_fmr,
            "fmr_holds_for": self.fmr_holds_for,
            "accept_lowest_certifiable_fmr": self.accept_lowest_certifiable_fmr,
            "population_threshold": _round(self.population_threshold),
            "every_group_threshold": _round(self.every_group_threshold),
            "certifiable": self.certifiable,
            "threshold": _round(self.threshold),
            "certified_fmr": self.certified_fmr,
            "groups": [g.to_dict() for g in self.groups],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def purpose_thresholds(engine: Facegate) -> tuple[str, str | None, list[PurposeThresholds]]:
    """(score space, group calibration id, one row per purpose of the policy in force);
    the threshold in force is derived by the gate's own `purpose_promise`."""
    rules, calibration, groups = engine.policy.rules, engine.calibration, engine.group_calibration
    out = []
    for pid, purpose in rules.purposes.items():
        mode, accept = rules.promise(pid)
        population = calibration.threshold_at_fmr(purpose.max_fmr)
        every = groups.every_group_threshold(purpose.max_fmr) if groups is not None else None
        every_threshold = None if every is None or every.threshold is None else max(population, every.threshold)
        promise = purpose_promise(rules, pid, purpose.max_fmr, calibration, groups)
        in_force = promise.threshold if isinstance(promise, Promise) else None
        certified = promise.certified_fmr if isinstance(promise, Promise) else None
        rows = []
        for curve in groups.groups if groups is not None else ():
            at = in_force if in_force is not None else population
            rows.append(GroupAtThreshold(curve.group, curve.threshold_at_fmr(purpose.max_fmr),
                                         curve.lowest_certifiable_fmr, curve.estimated_fmr(at), curve.fnmr_at(at)))
        out.append(PurposeThresholds(pid, purpose.max_fmr, mode, accept, population, every_threshold,
                                     every_threshold is not None, in_force, certified, tuple(rows)))
    return engine.scorer.score_id, None if groups is None else groups.calibration_id, out
