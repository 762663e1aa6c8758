"""`facegate db migrate|copy|credentials-key`: the catalog database itself.

`migrate` brings a database (the data directory's SQLite catalog, or a PostgreSQL one) to
the current schema, as every command does when it opens one, and says from which revision
to which. `copy --to postgresql://...` moves an embedded installation to a server: every
face, tenant, key, review and audit entry, ids kept, in one transaction, then verifies the
audit chain on the copy. `credentials-key` makes the key file that seals AWS secret keys
in server mode (FACEGATE_CREDENTIALS_KEY_FILE). Database URLs are printed with their
password hidden.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

from facegate.cli.common import emit, handles_errors, json_option, progress_bar, stderr, stdout
from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance.audit_verify import verify
from facegate.operations.catalog_copy import copy_to_server
from facegate.settings import Settings, load_settings
from facegate.store.catalog_copy import refuse_if_occupied
from facegate.store.db import CATALOG_FILE, open_engine, reachable, server_url, session_factory, shown_url
from facegate.store.migrations import migrate
from facegate.store.sealing import KEK_FILE, write_new_kek


def shown(url: str | Engine) -> str:
    """A database URL as it may be printed: never its password."""
    return shown_url(url.url if isinstance(url, Engine) else url)


def where(settings: Settings) -> str:
    return shown(settings.database_url) if settings.database_url else str(settings.home / CATALOG_FILE)


def selected_settings(data_dir: Path | None, database_url: str | None) -> Settings:
    """`--database-url` (a server) or `--data-dir` (its SQLite catalog), else the environment's
    choice (FACEGATE_DATABASE_URL, else FACEGATE_HOME)."""
    if data_dir is not None and database_url is not None:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give --data-dir or --database-url, not both")
    if database_url is not None:
        return load_settings(database_url=database_url)
    if data_dir is not None:
        return load_settings(home=data_dir, database_url=None)
    return load_settings()


def database_url_option(help_text: str) -> Any:
    return click.option("--database-url", "database_url", default=None, metavar="URL", help=help_text)


def data_dir_option(help_text: str) -> Any:
    return click.option("--data-dir", "data_dir", type=click.Path(path_type=Path), default=None, help=help_text)


@click.group("db")
def db_group() -> None:
    """The catalog database: migrate its schema, copy an embedded installation to PostgreSQL."""


@db_group.command("migrate")
@data_dir_option("Data directory whose SQLite catalog to migrate [env FACEGATE_HOME].")
@database_url_option("PostgreSQL database to migrate, postgresql://user:pass@host:port/db [env FACEGATE_DATABASE_URL].")
@json_option
@handles_errors
def migrate_command(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Bring the database to the current schema; print from and to which revision.

    Every command migrates the database it opens; this does only that. On PostgreSQL it
    creates the pgvector extension where the role may, and otherwise says exactly what a
    database administrator must run."""
    settings = selected_settings(data_dir, database_url)
    engine = Facegate(settings)
    engine.db  # noqa: B018  (opening checks the template key, migrates, records the key)
    done = engine.migration
    engine.close()
    assert done is not None
    payload = {**done.to_dict(), "database": where(settings)}
    emit(as_json, payload, lambda: stdout.print(
        f"{where(settings)}: already at revision {done.after}" if done.before == done.after
        else f"{where(settings)}: migrated from revision {done.before or '(empty)'} to {done.after}"
    ))


@db_group.command("copy")
@click.option("--to", "to", required=True, metavar="URL",
              help="Target PostgreSQL database, postgresql://user:pass@host:port/db: empty (it is migrated first).")
@data_dir_option("Data directory to copy from (its SQLite catalog) [env FACEGATE_HOME].")
@click.option("--batch-size", type=click.IntRange(min=1, max=100_000), default=1000, show_default=True,
              help="Rows per insert.")
@json_option
@handles_errors
def copy_command(to: str, data_dir: Path | None, batch_size: int, as_json: bool) -> None:
    """Copy an embedded installation into an empty PostgreSQL database.

    Everything moves: collections, faces, tenants, keys, grants, reviews, the audit chain and
    its checkpoints. One transaction: the target holds all of it or nothing. Ids are kept
    (face row ids, audit sequence numbers); plain templates also fill the pgvector column.
    The source's audit log records the copy (`catalog_copy`: start, carried by the copy, and
    finish). The audit chain is then verified on the copy; exit status 1 if it does not verify."""
    try:
        target_url = load_settings(database_url=to).database_url  # refuses what is not a postgresql:// URL
    except FacegateError as exc:
        raise FacegateError(exc.code, exc.message.replace("database_url:", "--to:"), option="--to") from None
    if target_url is None:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "--to needs a postgresql://user:pass@host:port/db URL")
    # the source is the embedded catalog, whatever FACEGATE_DATABASE_URL says
    source_settings = load_settings(database_url=None, **({} if data_dir is None else {"home": data_dir}))
    if not (source_settings.home / CATALOG_FILE).is_file():
        raise FacegateError(ErrorCode.FILE_NOT_FOUND,
                            f"no catalog at {source_settings.home / CATALOG_FILE}: nothing to copy (give --data-dir)")
    source = Facegate(source_settings)
    target = open_engine(server_url(target_url))
    try:
        source.db  # noqa: B018  (opened as every command opens it: template key checked, migrated)
        reachable(target)
        with target.begin() as conn:  # refuse before migrating anything into someone's database
            refuse_if_occupied(conn, f"the target database {shown(target_url)}")
        migrated = migrate(target)
        with progress_bar() as bar:
            task = bar.add_task("copying", total=None)
            report = copy_to_server(
                source, Caller(), target, shown(target_url), batch=batch_size,
                progress=lambda what, done, total: bar.update(task, description=what, completed=done, total=total),
            )
        with session_factory(target)() as session:
            checked = verify(session)
        source_checked = None
        if not checked.ok:
            with source.sessions() as session:
                source_checked = verify(session)
    finally:
        source.close()
        target.dispose()
    kek = source_settings.home / KEK_FILE
    payload: dict[str, Any] = {
        "from": str(source_settings.home / CATALOG_FILE), "to": shown(target_url), "target_revision": migrated.after,
        **report.to_dict(), "audit": checked.to_dict(),
        "credentials_key_file": str(kek) if kek.exists() else None,
    }
    if source_checked is not None:
        payload["source_audit"] = source_checked.to_dict()

    def human() -> None:
        stdout.print(f"copied {source_settings.home / CATALOG_FILE} to {shown(target_url)} (revision {migrated.after})")
        for table, n in report.rows.items():
            stdout.print(f"  {table:20} {n:>9}")
        stdout.print(f"  {'faces.embedding':20} {report.embeddings:>9}"
                     + ("" if report.embeddings or not report.rows.get("faces") else "  (templates sealed: left NULL)"))
        if report.uploads:
            stdout.print(f"  {report.uploads} queued video upload(s) moved from the data directory into the database")
        if checked.ok:
            stdout.print(f"audit chain OK on the copy: {checked.entries} entries")
        else:
            stdout.print(f"audit chain BROKEN on the copy ({checked.kind}) at entry {checked.first_bad_entry}"
                         + ("" if source_checked is None or source_checked.ok
                            else f"; the source's is broken too ({source_checked.kind})"))

    emit(as_json, payload, human)
    if kek.exists():
        stderr.print(f"note: AWS secret keys are sealed under {kek}; server mode reads that key from the file "
                     f"FACEGATE_CREDENTIALS_KEY_FILE names: copy it (mode 0600) to every host and point the setting "
                     "at it", highlight=False, soft_wrap=True)
    if not checked.ok:
        sys.exit(1)


@db_group.command("credentials-key")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Key file to create (mode 0600); never overwritten.")
@json_option
@handles_errors
def credentials_key_command(out: Path, as_json: bool) -> None:
    """Create the key file that seals AWS secret keys in server mode (FACEGATE_CREDENTIALS_KEY_FILE).

    Every host of one installation needs the same file. An installation moved with `db copy`
    keeps its data directory's credentials.kek instead: its keys' secrets are sealed under it."""
    if not out.parent.is_dir():
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no directory {out.parent} to write {out.name} in")
    if not write_new_kek(out):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"{out} exists: a credentials key is never overwritten "
                            "(the secrets sealed under it would no longer open)")
    emit(as_json, {"credentials_key_file": str(out)}, lambda: stdout.print(
        f"credentials key written to {out}; give every host FACEGATE_CREDENTIALS_KEY_FILE={out}"))
