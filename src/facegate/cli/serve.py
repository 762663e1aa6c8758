"""`facegate serve`: the HTTP API, run by uvicorn, on the embedded default (SQLite and
in-process indexes under one data directory) or in server mode (FACEGATE_DATABASE_URL:
every piece of state in PostgreSQL, so several hosts serve one installation).

The settings travel to the app through the environment (FACEGATE_HOME, FACEGATE_POLICY,
FACEGATE_DATABASE_URL), because with `--workers N` each worker process builds its own app
and engine from it; the workers then share the data directory (SQLite in WAL mode,
immediate transactions, indexes that catch up with the catalog before every search) or
the database. The start-up lines name where the state lives: the data directory, or the
database URL without its password.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from facegate.cli.common import engine_options, handles_errors
from facegate.engine import Facegate
from facegate.settings import load_settings
from facegate.store.db import shown_url

APP = "facegate.service.app:from_environment"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="TCP port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes; each loads the models once and serves requests in threads.")
@engine_options
@handles_errors
def serve(host: str, port: int, workers: int, data_dir: Path | None, policy: Path | None) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json, docs at /docs) until interrupted."""
    if data_dir is not None:
        os.environ["FACEGATE_HOME"] = str(data_dir.resolve())
    if policy is not None:
        os.environ["FACEGATE_POLICY"] = str(policy.resolve())
    database_url = click.get_current_context().meta.get("facegate.database_url")
    if database_url is not None:
        os.environ["FACEGATE_DATABASE_URL"] = database_url
    settings = load_settings()
    engine = Facegate(settings, keep_last_good_policy=True)
    engine.db  # noqa: B018 - a template key that is not the catalog's stops here, before any write
    # A broken policy file stops here, with its line and field, unless the catalog keeps a
    # last good policy: then the workers decide with that one (and /readyz says "stale").
    drift = engine.policy_drift()  # server mode: another host serving another policy file
    in_force = engine.policy
    if engine.policy_holder.stale is not None:
        click.echo(f"WARNING policy file refused ({engine.policy_holder.stale}); serving the last good "
                   f"policy {in_force.version}", err=True)
    if drift is not None:
        click.echo(f"WARNING {drift}", err=True)
    engine.close()
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}"
    hint = f" --data-dir {shlex.quote(str(settings.home))}" if data_dir is not None else ""
    click.echo(f"facegate listening on {url}  (docs {url}/docs, OpenAPI {url}/openapi.json)", err=True)
    if settings.database_url is not None:  # server mode: the data directory holds only the models
        where = f"database {shown_url(settings.database_url)}"
    else:
        where = f"data directory {settings.home}"
    click.echo(f"{where}; policy {in_force.source} ({in_force.version})", err=True)
    click.echo("A first API key:", err=True)
    click.echo(f"  facegate tenant create my-org --sector nonprofit --purposes photo_library{hint}", err=True)
    click.echo(f"  facegate key create my-org --json{hint}", err=True)
    if settings.database_url is not None:
        click.echo("  (with the same FACEGATE_DATABASE_URL, or --database-url)", err=True)
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server (70 ms less for every other command)

    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, log_level="info")
