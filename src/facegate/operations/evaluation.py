"""Accuracy measurements as operations: `evaluate pairs` (1:1, the LFW protocol) and
`evaluate identification` (1:N), gated and audited like every other operation.

They process the faces of an evaluation set, so like the demographic audit they need the
auditor role: the gate decides before the (long) computation, a denial is recorded, and
the run is recorded after it with its figures and the template space it measured.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.evaluation.identification import identify, split
from facegate.evaluation.lfw_pairs import pair_scores, read_pairs, report
from facegate.evaluation.templates import image_templates
from facegate.gate import Caller
from facegate.governance import Operation, append_entry


def eval_cache(engine: Facegate) -> Path:
    """Where evaluation templates are cached (templates of the evaluation set's photos,
    biometric data: a private directory). Embedded: inside the data directory, with the
    other biometric data, so that erasing the data directory erases them too. Server mode
    writes nothing but model caches to the data directory: the cache is this host's, in the
    user cache directory (keyed by image hash and recipe, so any installation may share it)."""
    if not engine.settings.server_mode:
        return engine.settings.home / "evaluation-cache"
    cache = Path(user_cache_dir("facegate", appauthor=False)) / "evaluation-cache"
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    cache.chmod(0o700)
    return cache


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such file: {path}") from None


def _gated(engine: Facegate, caller: Caller, kind: str, source: Path, work: Callable[[], dict[str, Any]],
           recorded: tuple[str, ...]) -> dict[str, Any]:
    """Decide, run `work`, then record the run with the named figures of its result."""
    digest = _file_sha256(source)
    engine.gate.admit(caller, Operation.EVALUATE)  # before the long work; a denial is recorded
    try:
        result = work()
    except FacegateError as exc:  # refused input is recorded too: one entry per operation
        code = exc.code.value
        engine.gate.run_recorded(caller, Operation.EVALUATE, lambda session, entry: append_entry(
            session, entry.with_details(evaluation=kind, dataset_sha256=digest, error=code)))
        raise

    def act(session, entry) -> None:  # type: ignore[no-untyped-def]
        append_entry(session, entry.with_details(
            evaluation=kind, dataset_sha256=digest, audit_space=engine.space.audit_id,
            score_space=engine.scorer.score_id,
            **{k: result[k] for k in recorded if k in result},
        ))

    engine.gate.run_recorded(caller, Operation.EVALUATE, act)
    return result


def evaluate_pairs(
    engine: Facegate, caller: Caller, pairs_file: Path, images_dir: Path, *, no_face: str = "centre",
    workers: int | None = None,
) -> dict[str, Any]:
    """1:1 verification accuracy on a pairs file (k-fold, ROC AUC, TAR at FMR 1e-3)."""

    def work() -> dict[str, Any]:
        pairs = read_pairs(pairs_file)
        names = pairs.images
        found = image_templates(
            names, images_dir, engine.pipeline, eval_cache(engine), workers or engine.settings.workers, no_face
        )
        scores = pair_scores(pairs, found.templates, lambda a, b: engine.scorer.pairs(a, b))
        cal = engine.calibration
        result = report(
            pairs, scores, len(names), len(found.no_face), no_face,
            cal.default_threshold, cal.default_fmr, engine.template_id,
        ).to_dict()
        result["score_space"] = engine.scorer.score_id
        result["n_unreadable"] = len(found.unreadable)
        return result

    return _gated(engine, caller, "pairs", pairs_file, work,
                  ("n_pairs", "n_images", "kfold_accuracy_mean", "roc_auc", "tar_at_fmr_1e-3"))


def evaluate_identification(
    engine: Facegate, caller: Caller, manifest: Path, *, workers: int | None = None
) -> dict[str, Any]:
    """1:N: enrol one image per subject, search the rest; rank-1 and FNIR at FPIR."""

    def work() -> dict[str, Any]:
        rows = manifest_rows(manifest)
        names = [path for path, _ in rows]
        found = image_templates(
            names, manifest.parent, engine.pipeline, eval_cache(engine), workers or engine.settings.workers, "reject"
        )
        result = identify(split(rows, set(found.templates)), found.templates, scorer=engine.scorer).to_dict()
        result["score_space"] = engine.scorer.score_id
        result["n_images_without_face"] = len(found.no_face)
        result["n_unreadable"] = len(found.unreadable)
        return result

    return _gated(engine, caller, "identification", manifest, work,
                  ("n_gallery", "n_mated", "n_nonmated", "rank1_rate", "fnir_at_fpir_1e-3"))


def manifest_rows(manifest: Path) -> list[tuple[str, str]]:
    """(path, subject) rows of a manifest; `INVALID_MANIFEST` without those columns."""
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"path", "subject"} <= set(reader.fieldnames):
                raise FacegateError(ErrorCode.INVALID_MANIFEST, f"{manifest} needs the columns path and subject")
            return [(r["path"], r["subject"] or "") for r in reader if r.get("path")]
    except FileNotFoundError:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such manifest: {manifest}") from None
