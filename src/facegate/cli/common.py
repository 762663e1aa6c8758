"""What every command shares: engine options, output, and the one error mapping."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import Decision
from facegate.settings import load_settings

F = TypeVar("F", bound=Callable[..., Any])

stderr = Console(stderr=True)
stdout = Console(highlight=False, soft_wrap=True)


def engine_options(func: F) -> F:
    """`--data-dir`, `--database-url` and `--policy` (else FACEGATE_HOME, FACEGATE_DATABASE_URL,
    FACEGATE_POLICY) on a command."""
    func = click.option(
        "--database-url", "database_url", default=None, metavar="URL",
        help="postgresql://user:pass@host:port/db: server mode, all state in PostgreSQL [env FACEGATE_DATABASE_URL].",
        expose_value=False, callback=_remember_database_url, is_eager=True,
    )(func)
    func = click.option(
        "--policy", "policy", type=click.Path(path_type=Path), default=None,
        help="Policy TOML file [env FACEGATE_POLICY; built-in default if unset].",
    )(func)
    func = click.option(
        "--data-dir", "data_dir", type=click.Path(path_type=Path), default=None,
        help="Data directory [env FACEGATE_HOME].",
    )(func)
    return func


def caller_options(func: F) -> F:
    """Who acts and why: without --tenant the CLI is the policy's local operator."""
    for decorator in reversed([
        click.option("--tenant", default=None, help="Act as this tenant (default: the local operator)."),
        click.option("--purpose", default=None, help="Declared purpose (default: the local operator's)."),
        click.option("--case-reference", default=None, help="Case reference, where the purpose needs one."),
    ]):
        func = decorator(func)
    return func


def make_caller(tenant: str | None, purpose: str | None, case_reference: str | None, **extra: Any) -> Caller:
    return Caller(tenant=tenant, purpose=purpose, case_reference=case_reference, **extra)


def decision_line(decision: Decision) -> str:
    d = decision.to_dict()
    threshold = f", threshold {d['threshold']:.2f}" if d.get("threshold") is not None else ""
    return f"decision: {d['decision']} by {d['rule']} (policy {d['policy_version']}{threshold})"


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(func)


def _remember_database_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Kept on the context, not passed to the command: every command builds its engine with
    `build_engine`, which reads it from there (one option, no signature changed)."""
    if value is not None:
        ctx.meta["facegate.database_url"] = value
    return value


def build_engine(data_dir: Path | None, policy: Path | None, **engine_args: Any) -> Facegate:
    overrides: dict[str, Any] = {}
    context = click.get_current_context(silent=True)
    if context is not None and "facegate.database_url" in context.meta:
        overrides["database_url"] = context.meta["facegate.database_url"]
    if data_dir is not None:
        overrides["home"] = data_dir
    if policy is not None:
        overrides["policy"] = policy
    return Facegate(load_settings(**overrides), **engine_args)


def emit(as_json: bool, payload: Any, human: Callable[[], None]) -> None:
    """Print `payload` as JSON, or call `human` to print readable text."""
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        human()


def debugging() -> bool:
    """`facegate --debug ...`: show tracebacks instead of one line per error."""
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("debug"))


def handles_errors(func: F) -> F:
    """Turn any error into exit status 1 and one clear line with its code (or JSON on
    stdout with --json); `facegate --debug` shows the traceback instead.

    Unexpected errors (a bug, a full disk) are INTERNAL: still one line, so that a user is
    never handed a Python traceback without asking for it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI's one place that reports errors
            if debugging():
                raise
            error = exc if isinstance(exc, FacegateError) else FacegateError(
                ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
            )
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": error.to_dict()}, default=str))
            else:
                stderr.print(f"[bold red]Error[/] {error.code.value}: {error.message}", highlight=False,
                             markup=True, soft_wrap=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def progress_bar() -> Progress:
    """A progress bar on stderr, so stdout stays clean for results."""
    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=stderr, transient=True,
    )
