"""The `facegate` command line: a thin adapter over the engine and its operations.

Results go to stdout (`--json` for machines), progress and warnings to stderr. Every
`FacegateError` becomes exit status 1; with `--json` its `{"error": {...}}` body is
printed on stdout so scripts can read the code.
"""

from __future__ import annotations

import click

from facegate.cli import checkpoints  # noqa: F401  (adds keygen, checkpoint, prove to `audit`)
from facegate.cli.bias import audit_bias_command
from facegate.cli.catalog import catalog_group
from facegate.cli.collections import collection, faces_group, index, subject_group
from facegate.cli.db import db_group
from facegate.cli.evaluate import evaluate
from facegate.cli.governance import (
    approval_group, audit_group, key_group, policy_group, review_group, tenant_group,
)
from facegate.cli.retention import retention_group
from facegate.cli.search import search
from facegate.cli.serve import serve
from facegate.cli.video import video_group
from facegate.cli.vision import compare, detect


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facegate")
@click.option("--debug", is_flag=True, help="Show Python tracebacks instead of one line per error.")
def main(debug: bool) -> None:
    """facegate: face search that enforces purpose, audits every request and measures
    its own error rates."""


for command in (
    detect, compare, evaluate, collection, index, faces_group, subject_group, search,
    tenant_group, key_group, approval_group, policy_group, audit_group, review_group,
    serve, audit_bias_command, retention_group, video_group, catalog_group, db_group,
):
    main.add_command(command)
