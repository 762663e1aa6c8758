"""`facegate retention apply`: redact, purge and erase what is past its retention."""

from __future__ import annotations

from pathlib import Path

import click

from facegate.cli.common import build_engine, emit, engine_options, handles_errors, json_option, stdout
from facegate.cli.governance import admin_caller, admin_option, parse_time
from facegate.operations import retention


@click.group("retention")
def retention_group() -> None:
    """Retention: what a purpose or collection keeps, and for how long."""


@retention_group.command("apply")
@click.option("--at", default=None, help="ISO 8601 time to apply retention as of (default: now).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing (the run is still audited).")
@admin_option
@engine_options
@json_option
@handles_errors
def retention_apply(at: str | None, dry_run: bool, as_tenant: str | None, data_dir: Path | None,
                    policy: Path | None, as_json: bool) -> None:
    """Redact audit entries, purge leads and erase faces older than their retention."""
    engine = build_engine(data_dir, policy)
    run = retention.apply(engine, admin_caller(as_tenant), parse_time(at, "--at"), dry_run)
    payload = run.to_dict()
    emit(as_json, payload, lambda: stdout.print(
        f"{'would redact' if dry_run else 'redacted'} {payload['redacted_entries']} audit entries, "
        f"{'purge' if dry_run else 'purged'} {payload['purged_reviews']} leads, "
        f"{'erase' if dry_run else 'erased'} {payload['erased_faces']} faces"
    ))
