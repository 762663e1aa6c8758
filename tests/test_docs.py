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


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found += _commands(command, path)
        else:
            found.append((path, command))
    return found


def render_cli_reference() -> str:
    lines = [
        "# CLI reference",
        "",
        "Generated from the commands by `.venv/bin/python -m tests.test_docs`; "
        "`tests/test_docs.py` fails when it is out of date.",
        "",
    ]
    for path, command in _commands(main, "facegate"):
        with click.Context(command, info_name=path, terminal_width=100, max_content_width=100) as ctx:
            text = command.get_help(ctx)
        lines += [f"## `{path}`", "", "```", text.rstrip(), "```", ""]
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
