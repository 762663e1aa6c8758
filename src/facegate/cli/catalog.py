"""`facegate catalog rekey`: re-seal the stored templates under a new template key.

The new key is read from a file (`--new-key-file`), an environment variable
(`--new-key-env NAME`) or, least safely, the command line (`--new-key`, which lands in
shell history and `ps`). The key in use comes from FACEGATE_TEMPLATE_KEY as for every
command. Once it finishes, every process must be given the new key.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from facegate.cli.common import (
    build_engine, emit, engine_options, handles_errors, json_option, progress_bar, stdout,
)
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.operations.catalog_keys import rekey
from facegate.settings import parse_template_key


def read_new_key(text: str | None, file: Path | None, env: str | None) -> bytes:
    """Exactly one source of the new key; its 32 bytes, or TEMPLATE_KEY_INVALID (never echoed)."""
    given = [(what, v) for what, v in (("--new-key", text), ("--new-key-file", file), ("--new-key-env", env))
             if v is not None]
    if len(given) != 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give exactly one of --new-key, --new-key-file, --new-key-env")
    what, value = given[0]
    try:
        if isinstance(value, Path):
            raw = value.read_text(encoding="ascii", errors="replace")
        elif what == "--new-key-env":
            if str(value) not in os.environ:
                raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"environment variable {value} is not set")
            raw = os.environ[str(value)]
        else:
            raw = str(value)
        return parse_template_key(raw, f"the key of {what}")
    except OSError as exc:
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"{what}: {exc.strerror}: {value}") from None
    except ValueError as exc:
        raise FacegateError(ErrorCode.TEMPLATE_KEY_INVALID, str(exc)) from None


@click.group("catalog")
def catalog_group() -> None:
    """The catalog itself: its template key."""


@catalog_group.command("rekey")
@click.option("--new-key", default=None, help="The new key as base64 (visible in shell history: prefer a file).")
@click.option("--new-key-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="File holding the new key as base64.")
@click.option("--new-key-env", default=None, metavar="NAME", help="Environment variable holding the new key.")
@click.option("--as-tenant", "as_tenant", default=None, help="Act as this tenant (needs the admin role).")
@engine_options
@json_option
@handles_errors
def rekey_command(
    new_key: str | None, new_key_file: Path | None, new_key_env: str | None, as_tenant: str | None,
    data_dir: Path | None, policy: Path | None, as_json: bool,
) -> None:
    """Re-seal every template with a new key; resumes an interrupted run (same new key)."""
    key = read_new_key(new_key, new_key_file, new_key_env)
    engine = build_engine(data_dir, policy, rekeying=True)
    with progress_bar() as bar:
        task = bar.add_task("re-sealing", total=None)
        report = rekey(engine, Caller(tenant=as_tenant), key,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    engine.close()

    def human() -> None:
        stdout.print(f"re-sealed {report.resealed} template(s); all {report.templates} now under {report.to_key}")
        stdout.print("give every process the new FACEGATE_TEMPLATE_KEY before it starts again")

    emit(as_json, report.to_dict(), human)
