"""One demographic audit run: a labelled manifest in, a `BiasReport` out.

Reads the manifest (`path`, `subject` and the group columns; paths relative to the
manifest's folder), gets each image's template from the on-disk cache (computing the
missing ones on all cores), applies the quality filter, and hands per-image arrays to
the pure metrics of `demographics`. The report carries what a reader needs to judge the
numbers: the dataset hash, the template space, every sampling rule, and the limits.
facegate never infers gender, age or race; the labels come with the dataset.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.evaluation import demographics as dm
from facegate.evaluation.detection_failures import Detection, DetectionRate, detect_failures
from facegate.evaluation.template_cache import FACE, NO_FACE, cached_analyses
from facegate.vision.calibration import Calibration
from facegate.vision.parallel import PipelineFactory
from facegate.vision.pipeline import Pipeline
from facegate.vision.score_normalization import Scorer
from facegate.vision.types import QualityFilter

UNSTATED_LABELS = "not stated: the caller did not say where the manifest's labels come from"


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    manifest: str
    sha256: str  # of the manifest bytes and every image's sha256, in manifest order
    n_rows: int
    n_used: int
    min_images_per_subject: int
    label_source: str


@dataclass(frozen=True, slots=True)
class CompositionRow:
    level: tuple[str, ...]
    group: dm.Group  # an empty value is the unlabelled rows
    n_images: int
    n_subjects: int


@dataclass(frozen=True, slots=True)
class BiasReport:
    dataset: DatasetInfo
    group_by: tuple[str, ...]
    model_id: str
    template_id: str
    quality_filter: str
    settings: dm.AuditSettings
    calibrated_fmr: float | None  # what the shipped calibration claims at the threshold
    verification: dm.Verification | None
    detection: Detection
    composition: tuple[CompositionRow, ...]
    images_analysed_now: int
    limits: tuple[str, ...]
    score_space: str = ""  # raw template id, or <template id>+fsn with fair score normalization

    @property
    def max_group_fmr(self) -> float | None:
        """Highest FMR of any group, at any level, that is not small (what a gate's "every
        group's FMR at most X" reads); None when no group is large enough to say."""
        v = self.verification
        rates = [] if v is None else [r.fmr for r in v.groups if not r.small and r.fmr is not None]
        return max(rates) if rates else None

    @property
    def fmr_ratio(self) -> float | None:
        """Max/min FMR over the finest intersection's groups that are not small."""
        return None if self.verification is None else self.verification.differentials[-1].fmr.ratio

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of report.json (contract keys of issue 6, plus context)."""
        v = self.verification
        return {
            "dataset": asdict(self.dataset),
            "group_by": list(self.group_by),
            "model_id": self.model_id,
            "template_id": self.template_id,
            "score_space": self.score_space or self.template_id,
            "quality_filter": self.quality_filter,
            "settings": asdict(self.settings),
            "calibrated_fmr_at_threshold": self.calibrated_fmr,
            "gate": {"max_group_fmr": self.max_group_fmr, "fmr_ratio": self.fmr_ratio},
            "verification": None if v is None else _verification_dict(v),
            "detection": {
                "overall": _detection_dict(self.detection.overall),
                "groups": [_detection_dict(r) for r in self.detection.groups],
                "unreadable_images": self.detection.unreadable,
                "unlabelled_images": dict(self.detection.unlabelled_images),
            },
            "composition": [
                {"level": list(c.level), "group": group_dict(c.group),
                 "n_images": c.n_images, "n_subjects": c.n_subjects}
                for c in self.composition
            ],
            "limits": list(self.limits),
        }


def run_bias_audit(
    manifest: Path,
    group_by: Sequence[str],
    threshold: float,
    pipeline: Pipeline,
    cache_dir: Path,
    *,
    calibration: Calibration | None = None,
    scorer: Scorer | None = None,
    quality_filter: QualityFilter = QualityFilter.LOW,
    seed: int = 8280,
    n_nonmated: int = 50_000,
    n_cross: int = 5_000,
    max_mated_per_subject: int = 200,
    n_boot: int = 1000,
    min_images_per_subject: int = 1,
    label_source: str | None = None,
    workers: int = 2,
    factory: PipelineFactory = Pipeline,
    progress: bool = True,
) -> BiasReport:
    """Audit `pipeline` at `threshold` (similarity 0..100) on a labelled manifest; with a
    normalizing `scorer`, pairs are scored exactly as search and compare score them."""
    settings = dm.AuditSettings(threshold, seed, n_nonmated, n_cross, max_mated_per_subject, n_boot)
    rows = read_manifest(manifest, group_by)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["subject"]] = counts.get(r["subject"], 0) + 1
    used = [r for r in rows if not r["subject"] or counts[r["subject"]] >= min_images_per_subject]
    paths = [manifest.parent / r["path"] for r in used]
    analyses = cached_analyses(paths, pipeline, cache_dir, workers=workers, factory=factory, progress=progress)
    data = dm.AuditInput(
        subjects=np.array([r["subject"] for r in used], dtype=object),
        labels={c: np.array([r[c] for r in used], dtype=object) for c in group_by},
        templates=analyses.templates,
        failure=np.array([_failure(o, lv, quality_filter) for o, lv in zip(analyses.outcome, analyses.level)],
                         dtype=object),
        offsets=scorer.offsets(analyses.templates) if scorer is not None and scorer.normalized else None,
    )
    digest = hashlib.sha256(manifest.read_bytes())
    digest.update("\n".join(analyses.sha256).encode())
    dataset = DatasetInfo(str(manifest), digest.hexdigest(), len(rows), len(used), min_images_per_subject,
                          label_source or UNSTATED_LABELS)
    verification = dm.verify(data, group_by, settings)
    detection = detect_failures(data, group_by, settings)
    calibrated = calibration.estimated_fmr(threshold) if calibration is not None else None
    return BiasReport(
        dataset, tuple(group_by), pipeline.model_id, pipeline.template_id, quality_filter.value, settings,
        calibrated, verification, detection, _composition(data, group_by), analyses.computed,
        _limits(dataset, settings, verification, detection, quality_filter),
        scorer.score_id if scorer is not None else pipeline.template_id,
    )


def read_manifest(manifest: Path, group_by: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a CSV manifest with `path`, `subject` and every group column, or refuse."""
    if not group_by:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "name at least one group column")
    try:
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = [{k: (v or "").strip() for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such manifest: {manifest}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"unreadable manifest: {exc}") from None
    missing = [c for c in ("path", "subject", *group_by) if c not in header]
    if missing:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"manifest lacks columns {missing}",
                            columns=header)
    empty = [i + 2 for i, r in enumerate(rows) if not r["path"]]
    if empty:
        raise FacegateError(ErrorCode.INVALID_MANIFEST, f"rows without a path, e.g. line {empty[0]}")
    return rows


def group_dict(group: dm.Group) -> dict[str, str]:
    return dict(group)


def _failure(outcome: str, level: str, wanted: QualityFilter) -> str:
    if outcome == NO_FACE:
        return dm.NO_FACE
    if outcome != FACE:
        return dm.UNREADABLE
    order = list(QualityFilter)  # NONE < LOW < MEDIUM < HIGH
    return dm.USABLE if order.index(QualityFilter(level)) >= order.index(wanted) else dm.LOW_QUALITY


def _composition(data: dm.AuditInput, group_by: Sequence[str]) -> tuple[CompositionRow, ...]:
    """Images and distinct subjects per label value, unlabelled ones included (value "")."""
    out = []
    for level in dm.levels(group_by):
        keys = list(zip(*(data.labels[c] for c in level)))
        images = Counter(keys)
        subjects = Counter(key for key, subject in set(zip(keys, data.subjects)) if subject)
        for key in sorted(images):
            out.append(CompositionRow(level, tuple(zip(level, key)), images[key], subjects[key]))
    return tuple(out)


def _limits(
    dataset: DatasetInfo, s: dm.AuditSettings, v: dm.Verification | None, d: Detection,
    quality_filter: QualityFilter,
) -> tuple[str, ...]:
    """What a reader must know before trusting or comparing these numbers."""
    out = [
        (f"Labels: {dataset.label_source}. facegate infers no gender, age or race; the groups "
         "are the dataset's own labels, with their errors."),
        ("Verification puts a subject in the group most of its images are labelled with (a tie "
         "leaves it unlabelled); detection uses each image's own label."),
    ]
    if dataset.min_images_per_subject > 1:
        out.append(f"Only subjects with at least {dataset.min_images_per_subject} images were used "
                   f"({dataset.n_used} of {dataset.n_rows} rows); detection covers those images only.")
    if v is None:
        out.append("Verification (FMR, FNMR) was not measured: the manifest names no subjects "
                   "with usable images, so there are no mated pairs.")
    else:
        small = "; ".join(", ".join(f"{k}={x}" for k, x in r.group) for r in v.groups if r.small)
        finest = len(v.differentials[-1].level)
        n_nonmated = sum(r.n_nonmated for r in v.groups if len(r.group) == finest)
        out += [
            (f"Pairs: every mated pair of a subject up to {s.max_mated_per_subject} "
             f"({v.overall.n_mated} in all); per group up to {s.n_nonmated} non-mated pairs of two "
             f"subjects of that group (demographically matched impostors; {n_nonmated} at the finest "
             f"level) and up to {s.n_cross} across each two groups; seed {s.seed}."),
            (f"Intervals: {s.confidence:.0%} percentile bootstrap over subjects ({s.n_boot} "
             "replicates); with few subjects they are rough. With no error among n pairs the "
             "interval is [0, 3/n] (zero-event bound); a ratio involving a zero rate uses that "
             "bound and is then a low estimate."),
            (f"Groups with fewer than {s.min_subjects} subjects or {s.min_mated} mated pairs are "
             f"flagged small and left out of differentials: {small or 'none'}."),
            (f"Resolution: with n non-mated pairs a FMR below about 3/n cannot be told from zero "
             f"(3/{s.n_nonmated} = {3 / s.n_nonmated:.1e} for a full group)."),
            (f"Subjects left out for lack of a label: {_counts(v.unlabelled_subjects)}; subjects "
             f"whose images carry different labels: {_counts(v.mixed_label_subjects)}."),
            "Cross-group FMR is a point estimate without interval.",
        ]
    out += [
        (f"Detection: a failure is an image with no face found or whose central face is below the "
         f"{quality_filter.value} quality filter; {d.unreadable} unreadable files left out; images "
         f"without a label left out of a grouping: {_counts(d.unlabelled_images)}."),
        ("Not measured: identification (1:N search) error rates and ranks; thresholds other than "
         "this one (the DET curves show the trade-off); skin tone and any attribute not in the "
         "manifest; photos unlike the dataset's. Datasets assembled with a face detector (LFW, "
         "UTKFace) hold few faces detectors miss, so detection failure rates are lower bounds."),
    ]
    return tuple(out)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in counts.items() if n) or "none"


def _rates_dict(r: dm.GroupRates) -> dict[str, Any]:
    return {
        "group": group_dict(r.group), "n_subjects": r.n_subjects, "n_images": r.n_images,
        "n_mated": r.n_mated, "n_nonmated": r.n_nonmated,
        "fmr": r.fmr, "fmr_ci": _pair(r.fmr_ci), "false_matches": r.false_matches,
        "fnmr": r.fnmr, "fnmr_ci": _pair(r.fnmr_ci), "false_non_matches": r.false_non_matches,
        "small": r.small,
    }


def _spread_dict(s: dm.Spread, name: str) -> dict[str, Any]:
    return {
        f"{name}_ratio": s.ratio, f"{name}_difference": s.difference,
        f"{name}_highest": None if s.highest is None else group_dict(s.highest),
        f"{name}_lowest": None if s.lowest is None else group_dict(s.lowest),
        f"{name}_floored": [group_dict(g) for g in s.floored],
    }


def _differentials_dict(d: dm.Differentials) -> dict[str, Any]:
    return {
        "level": list(d.level), **_spread_dict(d.fmr, "fmr"), **_spread_dict(d.fnmr, "fnmr"),
        "compared": [group_dict(g) for g in d.compared],
        "excluded_small": [group_dict(g) for g in d.excluded_small],
    }


def _verification_dict(v: dm.Verification) -> dict[str, Any]:
    return {
        "threshold": v.threshold,
        "overall": _rates_dict(v.overall),
        "groups": [{"level": [k for k, _ in r.group], **_rates_dict(r)} for r in v.groups],
        "differentials": _differentials_dict(v.differentials[-1]),
        "differentials_by_level": [_differentials_dict(d) for d in v.differentials],
        "cross_group": [
            {"groups": [group_dict(c.groups[0]), group_dict(c.groups[1])], "n_nonmated": c.n_pairs,
             "false_matches": c.false_matches, "fmr": c.fmr, "fmr_upper": c.fmr_upper}
            for c in v.cross
        ],
        "unlabelled_subjects": dict(v.unlabelled_subjects),
        "mixed_label_subjects": dict(v.mixed_label_subjects),
    }


def _detection_dict(r: DetectionRate) -> dict[str, Any]:
    return {
        "group": group_dict(r.group), "n_images": r.n_images, "no_face": r.no_face,
        "low_quality": r.low_quality, "failure_rate": r.failure_rate,
        "failure_rate_ci": _pair(r.failure_rate_ci), "ci_method": r.ci_method, "small": r.small,
    }


def _pair(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]
