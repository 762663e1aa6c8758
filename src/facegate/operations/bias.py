"""The demographic audit as an operation: measured, reported, and optionally recorded so
that a policy's `require_bias_audit` can let a purpose use the model.

Running an audit processes faces of an evaluation set and needs the auditor role; it is
decided before the (long) computation and recorded after it, with the report's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.evaluation.bias_audit import BiasReport, run_bias_audit
from facegate.gate import Caller
from facegate.governance import Operation, append_entry, record_bias_audit
from facegate.governance.decision import Promise, purpose_promise
from facegate.operations.evaluation import eval_cache
from facegate.store.governance_tables import BiasAuditRow
from facegate.vision.types import QualityFilter


_DATASET_LENGTH = BiasAuditRow.__table__.c.dataset.type.length  # what a recorded audit can name


@dataclass(frozen=True, slots=True)
class AuditRun:
    report: BiasReport
    threshold: float
    passed: bool | None  # None: not judged (no --purpose requirement and not recorded)
    recorded: bool


def threshold_for(engine: Facegate, purpose: str | None, threshold: float | None) -> tuple[float, float | None]:
    """The operating threshold: a purpose's (through its max FMR) or the one given."""
    if (purpose is None) == (threshold is None):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give --purpose or --threshold, not both or neither")
    if purpose is not None:
        found = engine.policy.rules.purposes.get(purpose)
        if found is None:
            raise FacegateError(ErrorCode.PURPOSE_UNKNOWN, f"purpose {purpose!r} is not defined by the policy")
        promise = purpose_promise(engine.policy.rules, purpose, found.max_fmr, engine.calibration,
                                  engine.group_calibration)
        if not isinstance(promise, Promise):  # the gate would refuse the purpose: nothing to audit at
            raise FacegateError(promise.code, promise.reason, rule=promise.rule)
        return promise.threshold, found.max_fmr
    return float(threshold or 0.0), None


def judge(engine: Facegate, report: BiasReport, purpose: str | None) -> bool:
    """Passed: every group's FMR and the FMR differential within the purpose's limits
    (without a requirement: measurable at all, i.e. at least one group large enough)."""
    if report.max_group_fmr is None:
        return False
    requirement = engine.policy.rules.purposes[purpose].require_bias_audit if purpose else None
    if requirement is None:
        return True
    ratio = report.fmr_ratio if report.fmr_ratio is not None else float("inf")
    return report.max_group_fmr <= requirement.max_group_fmr and ratio <= requirement.max_fmr_ratio


def audit_bias(
    engine: Facegate,
    caller: Caller,
    manifest: Path,
    group_by: Sequence[str],
    *,
    purpose: str | None = None,
    threshold: float | None = None,
    dataset: str | None = None,
    record: bool = False,
    label_source: str | None = None,
    min_images_per_subject: int = 1,
    quality_filter: QualityFilter = QualityFilter.LOW,
    workers: int | None = None,
) -> AuditRun:
    """Measure error rates by group at the operating threshold; `record` stores the result."""
    if record and not dataset:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "--record needs --dataset, the name the policy refers to")
    if record and dataset and len(dataset) > _DATASET_LENGTH:  # refused before the long work, not after it
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"--dataset is at most {_DATASET_LENGTH} characters",
                            field="dataset")
    operating, _ = threshold_for(engine, purpose, threshold)
    engine.gate.admit(caller, Operation.BIAS_AUDIT)  # before the long work; denial recorded
    report = run_bias_audit(
        manifest, list(group_by), operating, engine.pipeline, eval_cache(engine),
        calibration=engine.calibration, scorer=engine.scorer, quality_filter=quality_filter, label_source=label_source,
        min_images_per_subject=min_images_per_subject, workers=workers or engine.settings.workers,
    )
    passed = judge(engine, report, purpose)

    def act(session, entry) -> None:  # type: ignore[no-untyped-def]
        if record and report.max_group_fmr is not None:
            record_bias_audit(
                session, model_id=engine.model_id, template_id=engine.template_id, space_id=engine.space.audit_id,
                dataset=dataset or "",
                dataset_sha256=report.dataset.sha256, threshold=operating, max_group_fmr=report.max_group_fmr,
                fmr_ratio=report.fmr_ratio, passed=passed, report=report.to_dict(), record=entry,
            )
        else:
            append_entry(session, entry.with_details(
                dataset_sha256=report.dataset.sha256, threshold=operating, passed=passed,
                max_group_fmr=report.max_group_fmr, recorded=False,
            ))

    engine.gate.run_recorded(caller, Operation.BIAS_AUDIT, act)
    return AuditRun(report, operating, passed, record and report.max_group_fmr is not None)
