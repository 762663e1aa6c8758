"""Docs that can't drift: the CLI reference is generated from the commands themselves,
and every error code is documented.

Regenerate the CLI reference after changing a command:

    .venv/bin/python -m tests.test_docs
"""

from __future__ import annotations

import click

from facegate.cli import main
from facegate.errors import ErrorCode
from tests.conftest import REPO

CLI_REFERENCE = REPO / "docs" / "cli.md"
ERRORS = REPO / "docs" / "errors.md"


def _commands(group: click.Group, parent: click.Context) -> list[tuple[str, click.Context]]:
    """Every leaf command with a context chained to its parents, as a real invocation has
    (so inherited settings such as `-h` render the same whatever ran before)."""
    found: list[tuple[str, click.Context]] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        ctx = click.Context(command, info_name=name, parent=parent)
        if isinstance(command, click.Group):
            found += _commands(command, ctx)
        else:
            found.append((ctx.command_path, ctx))
    return found


def render_cli_reference() -> str:
    lines = [
        "# CLI reference",
        "",
        "Generated from the commands by `.venv/bin/python -m tests.test_docs`; "
        "`tests/test_docs.py` fails when it is out of date.",
        "",
    ]
    root = click.Context(main, info_name="facegate", terminal_width=100, max_content_width=100, **main.context_settings)
    for path, ctx in _commands(main, root):
        lines += [f"## `{path}`", "", "```", ctx.command.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(lines)


def test_cli_reference_is_current() -> None:
    assert CLI_REFERENCE.read_text() == render_cli_reference(), "run: .venv/bin/python -m tests.test_docs"


def test_every_error_code_is_documented() -> None:
    text = ERRORS.read_text()
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in text]
    assert not missing, f"undocumented error codes in docs/errors.md: {missing}"


if __name__ == "__main__":
    CLI_REFERENCE.write_text(render_cli_reference())
    print(f"wrote {CLI_REFERENCE}")
