"""`facegate audit-bias`: error rates by demographic group, as a report and as a gate."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import build_engine, emit, engine_options, handles_errors, json_option, stdout
from facegate.cli.tables import fmr
from facegate.gate import Caller
from facegate.vision.types import QualityFilter


@click.command("audit-bias")
@click.option("--manifest", required=True, type=click.Path(path_type=Path),
              help="CSV with path, subject and the group columns (paths relative to it).")
@click.option("--group-by", required=True, help="Comma-separated group columns, e.g. gender,race.")
@click.option("--purpose", default=None, help="Audit at this purpose's threshold (its max FMR).")
@click.option("--threshold", type=click.FloatRange(0, 100), default=None, help="Audit at this similarity.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bias-report"), show_default=True,
              help="Folder for report.json and report.html.")
@click.option("--record", is_flag=True, help="Store the result so the policy's audit requirement can use it.")
@click.option("--dataset", default=None, help="Dataset name the policy refers to (needed with --record).")
@click.option("--label-source", default=None, help="Where the group labels come from (quoted in the report).")
@click.option("--min-images-per-subject", type=click.IntRange(1), default=1, show_default=True,
              help="Leave out subjects with fewer images (mated pairs need two).")
@click.option("--quality-filter", type=click.Choice([q.value for q in QualityFilter], case_sensitive=False),
              default="LOW", show_default=True, help="Count faces below this quality as detection failures.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes (default: the CPUs this process may use).")
@click.option("--tenant", default=None, help="Auditor tenant (default: the local operator).")
@engine_options
@json_option
@handles_errors
def audit_bias_command(
    manifest: Path, group_by: str, purpose: str | None, threshold: float | None, out: Path, record: bool,
    dataset: str | None, label_source: str | None, min_images_per_subject: int, quality_filter: str,
    workers: int | None, tenant: str | None, data_dir: Path | None, policy: Path | None, as_json: bool,
) -> None:
    """Measure FMR and FNMR by group (with intervals) and detection failures; write a report."""
    # Imported here, not at the top: fairlearn, scikit-learn, SciPy and matplotlib take over
    # a second to import, which every other facegate command would pay.
    from facegate.evaluation.bias_report import write_report
    from facegate.operations.bias import audit_bias

    engine = build_engine(data_dir, policy)
    run = audit_bias(
        engine, Caller(tenant=tenant), manifest, [c.strip() for c in group_by.split(",") if c.strip()],
        purpose=purpose, threshold=threshold, dataset=dataset, record=record, label_source=label_source,
        min_images_per_subject=min_images_per_subject, quality_filter=QualityFilter(quality_filter.upper()),
        workers=workers,
    )
    json_path, html_path = write_report(run.report, out)
    payload = {
        "report_json": str(json_path), "report_html": str(html_path), "threshold": run.threshold,
        "max_group_fmr": run.report.max_group_fmr, "fmr_ratio": run.report.fmr_ratio,
        "passed": run.passed, "recorded": run.recorded,
    }

    def human() -> None:
        stdout.print(f"report: {html_path} (and {json_path.name})")
        stdout.print(
            f"at similarity threshold {run.threshold:.2f}: worst group FMR {fmr(run.report.max_group_fmr)},"
            f" FMR max/min ratio {ratio(run.report.fmr_ratio)}; {'passed' if run.passed else 'NOT passed'},"
            f" {'recorded' if run.recorded else 'not recorded'}"
        )

    emit(as_json, payload, human)


def ratio(value: float | None) -> str:
    """A max/min ratio, rounded: 195.4x (infinite when some group had no false match)."""
    return "-" if value is None else f"{value:.1f}x"
