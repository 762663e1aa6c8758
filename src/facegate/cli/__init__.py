"""The `facegate` command line: a thin adapter over the `Facegate` engine.

Results go to stdout (`--json` for machines), progress and warnings to stderr. Every
`FacegateError` becomes a non-zero exit; with `--json` its `{"error": {...}}` body is
printed on stdout so scripts can read the code.
"""

from __future__ import annotations

import click

from facegate.cli.evaluate import evaluate
from facegate.cli.vision import compare, detect


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="facegate")
def main() -> None:
    """facegate: face search that enforces purpose, audits every request and measures
    its own error rates."""


for command in (detect, compare, evaluate):
    main.add_command(command)
