"""What a newcomer meets on the command line: help for every command and option, and
every configuration or usage error as one line with its code and a non-zero exit, never a
traceback (outside --debug)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from facegate.cli import main


def commands(group: click.Group, prefix: str = "facegate") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix} {name}")
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for name, command in commands(main):
        if not (command.help or "").strip():
            missing.append(name)
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip() and "--help" not in param.opts:
                missing.append(f"{name} {param.opts[0]}")
    assert missing == []


def run(args: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (errors raised at start-up included)."""
    script = Path(sys.executable).parent / "facegate"
    full = {**os.environ, "FACEGATE_HOME": str(home), **env}
    return subprocess.run([str(script), *args], env=full, capture_output=True, text=True, timeout=120)


CASES = [
    ("unknown detector", ["collection", "list"], {"FACEGATE_DETECTOR": "bogus"}, "INVALID_SETTINGS", "FACEGATE_DETECTOR"),
    ("bytes not a number", ["collection", "list"], {"FACEGATE_MAX_IMAGE_BYTES": "abc"}, "INVALID_SETTINGS",
     "FACEGATE_MAX_IMAGE_BYTES"),
    # a malformed template key has its own code (hardening), the key never echoed
    ("template key not base64", ["collection", "list"], {"FACEGATE_TEMPLATE_KEY": "not-base64!"},
     "TEMPLATE_KEY_INVALID", "FACEGATE_TEMPLATE_KEY"),
    ("template key too short", ["collection", "list"], {"FACEGATE_TEMPLATE_KEY": "c2hvcnQ="}, "TEMPLATE_KEY_INVALID",
     "32 bytes"),
    ("policy file missing", ["policy", "show"], {"FACEGATE_POLICY": "/nonexistent/policy.toml"}, "FILE_NOT_FOUND",
     "policy"),
]


@pytest.mark.parametrize(("label", "args", "env", "code", "mentions"), CASES, ids=[c[0] for c in CASES])
def test_configuration_errors_are_one_line_with_a_code(
    label: str, args: list[str], env: dict[str, str], code: str, mentions: str, tmp_path: Path
) -> None:
    done = run(args, env, tmp_path / "home")
    assert done.returncode != 0, label
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and code in lines[0] and mentions in lines[0], done.stderr


def test_data_dir_naming_a_file(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    done = run(["collection", "list", "--data-dir", str(a_file)], {}, tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "INVALID_SETTINGS" in line and str(a_file) in line
    machine = run(["collection", "list", "--data-dir", str(a_file), "--json"], {}, tmp_path)
    assert machine.returncode != 0 and '"code": "INVALID_SETTINGS"' in machine.stdout


def test_data_dir_that_cannot_be_made(tmp_path: Path) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    done = run(["collection", "list", "--data-dir", str(a_file / "below")], {}, tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "INVALID_SETTINGS" in line and "cannot be made" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = run(["--debug", "collection", "list"], {"FACEGATE_DETECTOR": "bogus"}, tmp_path / "home")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_usage_errors_exit_2_in_one_line() -> None:
    result = CliRunner().invoke(main, ["search", "people", "--max-results", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_time_without_a_zone_is_refused_not_guessed(tmp_path: Path) -> None:
    """docs/governance.md: a decision time without a zone is refused (it used to be taken as UTC)."""
    args = ["policy", "check", "--operation", "search", "--data-dir", str(tmp_path / "home"), "--json"]
    naive = CliRunner().invoke(main, [*args, "--at", "2020-07-01T12:00:00"])
    assert naive.exit_code == 1 and '"code": "INVALID_ARGUMENT"' in naive.output and "zone" in naive.output
    zoned = CliRunner().invoke(main, [*args, "--at", "2020-07-01T12:00:00Z"])
    assert zoned.exit_code == 0, zoned.output
