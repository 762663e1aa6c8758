"""`facegate evaluate pairs` (1:1, the LFW protocol) and `evaluate identification` (1:N):
both gated and audited (auditor role), like every operation."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import build_engine, emit, engine_options, handles_errors, json_option, stdout
from facegate.gate import Caller
from facegate.operations import evaluation as ops


@click.group()
def evaluate() -> None:
    """Measure accuracy on labelled photos."""


@evaluate.command("pairs")
@click.option("--pairs", "pairs_file", required=True, type=click.Path(path_type=Path),
              help="Pairs file in LFW pairs.txt format.")
@click.option("--images", "images_dir", required=True, type=click.Path(path_type=Path),
              help="Folder with <name>/<name>_<nnnn>.jpg images.")
@click.option("--no-face", type=click.Choice(["centre", "reject"]), default="centre", show_default=True,
              help="What to do with an image where no face is found.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes (default: the CPUs this process may use).")
@click.option("--tenant", default=None, help="Auditor tenant (default: the local operator).")
@engine_options
@json_option
@handles_errors
def pairs_command(
    pairs_file: Path, images_dir: Path, no_face: str, workers: int | None, tenant: str | None,
    data_dir: Path | None, policy: Path | None, as_json: bool,
) -> None:
    """1:1 verification accuracy on a pairs file (k-fold, ROC AUC, TAR at FMR 1e-3)."""
    engine = build_engine(data_dir, policy)
    result = ops.evaluate_pairs(engine, Caller(tenant=tenant), pairs_file, images_dir, no_face=no_face,
                                workers=workers)

    def human() -> None:
        stdout.print(
            f"{result['n_pairs']} pairs in {result['n_folds']} folds, {result['n_images']} images"
            f" ({result['n_no_face']} without a detected face: {result['no_face_handling']})"
        )
        stdout.print(
            f"k-fold accuracy {100 * result['kfold_accuracy_mean']:.2f}% ± {100 * result['kfold_accuracy_std']:.2f}"
            f" | at default threshold {result['default_threshold']:.2f}"
            f" (FMR {result['default_fmr']:g}): {100 * result['accuracy_at_default_threshold']:.2f}%"
        )
        stdout.print(f"ROC AUC {result['roc_auc']:.5f} | TAR at FMR 1e-3: {result['tar_at_fmr_1e-3']:.4f}")

    emit(as_json, result, human)


@evaluate.command("identification")
@click.option("--manifest", required=True, type=click.Path(path_type=Path),
              help="CSV with columns path (relative to the CSV) and subject.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes (default: the CPUs this process may use).")
@click.option("--tenant", default=None, help="Auditor tenant (default: the local operator).")
@engine_options
@json_option
@handles_errors
def identification_command(
    manifest: Path, workers: int | None, tenant: str | None, data_dir: Path | None, policy: Path | None,
    as_json: bool,
) -> None:
    """1:N: enrol one image per subject, search the rest; rank-1 and FNIR at FPIR."""
    engine = build_engine(data_dir, policy)
    result = ops.evaluate_identification(engine, Caller(tenant=tenant), manifest, workers=workers)

    def human() -> None:
        stdout.print(
            f"gallery {result['n_gallery']}, mated searches {result['n_mated']},"
            f" non-mated searches {result['n_nonmated']} ({result['n_images_without_face']} images without a face)"
        )
        stdout.print(
            f"rank-1 {100 * result['rank1_rate']:.2f}% | FNIR at FPIR 1e-2: {result['fnir_at_fpir_1e-2']:.4f}"
            f" | FNIR at FPIR 1e-3: {result['fnir_at_fpir_1e-3']:.4f}"
        )

    emit(as_json, result, human)
