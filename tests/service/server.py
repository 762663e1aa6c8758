"""A real facegate server for tests: `facegate serve` in a subprocess on a free loopback port.

Tenants and keys are made with the CLI (`facegate tenant create ... --json`, `facegate key
create ... --json`) against the same installation while the server runs, as an
administrator would. The catalog is read directly (the SQLite file read-only, or the
PostgreSQL database of server mode, through SQLAlchemy with the same queries) to check
that a refused request changed nothing but the audit log.

With `database_url` the server runs in server mode: every piece of state in that
PostgreSQL database, FACEGATE_HOME holding only the models (its log is written beside it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from facegate.client import FacegateClient
from facegate.engine import Facegate
from facegate.settings import Settings
from facegate.store.db import CATALOG_FILE
from facegate.store.sealing import write_new_kek

REPO = Path(__file__).resolve().parents[2]
LFW = REPO.parent / "shared" / "data" / "lfw"
EXAMPLE_POLICY = REPO / "examples" / "policy-2020-moratorium.toml"
FACEGATE = Path(sys.executable).parent / "facegate"
READY_TIMEOUT = 180.0  # two cores shared with other jobs: model loading can be slow
# Settings of a server that its CLI calls need too (the others are the service's own).
SHARED_SETTINGS = ("FACEGATE_CREDENTIALS_KEY_FILE",)
Tenant = tuple[str, str, str, str]  # name, sector, purposes (comma-separated), roles


def lfw(person: str, number: int) -> Path:
    path = LFW / person / f"{person}_{number:04d}.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"LFW photo missing: {path} (the tests read ../shared/data in place)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    home: Path
    policy: Path | None
    process: subprocess.Popen[bytes]
    log: Path
    database_url: str | None = None  # server mode: the PostgreSQL database that holds everything
    keys: dict[str, str] = field(default_factory=dict)  # tenant -> API key, made at start
    shared: dict[str, str] = field(default_factory=dict)  # settings the CLI needs as the server has them
    workers: int = 1
    _engine: Engine | None = field(default=None, init=False, repr=False)

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url is None else "postgresql"

    def cli(self, *args: str) -> dict[str, object]:
        """Run the `facegate ARGS --json` executable against this installation; its JSON answer."""
        run = subprocess.run([str(FACEGATE), *args, "--json"], env=self.env(),
                             capture_output=True, text=True, check=False, timeout=180)
        if run.returncode != 0:
            raise RuntimeError(f"facegate {' '.join(args)} failed ({run.returncode}): {run.stdout} {run.stderr}")
        answer: dict[str, object] = json.loads(run.stdout)
        return answer

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a `facegate` command run against this installation."""
        return _env(self.home, self.policy, {**self.shared, **(extra or {})}, database_url=self.database_url)

    def cli_all(self, commands: Sequence[Sequence[str]]) -> list[dict[str, object]]:
        return cli_all(commands, self.home, self.policy, database_url=self.database_url, extra=self.shared)

    def make_keys(self, *tenants: Tenant) -> dict[str, str]:
        """New tenants, each `(name, sector, purposes, roles)`, and an API key for each (shown once)."""
        made = self.cli_all([
            *(["tenant", "create", n, "--sector", s, "--purposes", p, "--roles", r] for n, s, p, r in tenants),
            *(["key", "create", name] for name, *_ in tenants),
        ])[len(tenants):]
        return {name: str(key["key"]) for (name, *_), key in zip(tenants, made, strict=True)}

    def client(self, key: str | None) -> FacegateClient:
        return FacegateClient(self.url, key)

    @contextmanager
    def catalog(self) -> Iterator[Connection]:
        """A connection that reads the installation's tables as stored right now: the SQLite
        file (read-only) or the PostgreSQL database. No pool: nothing stays open between reads."""
        if self._engine is None:
            self._engine = create_engine(catalog_url(self.home, self.database_url), poolclass=NullPool)
        with self._engine.connect() as conn:
            yield conn

    def rows(self, sql: str, **params: object) -> list[dict[str, Any]]:
        """The rows of one query (`:name` parameters), each as a dict of its columns."""
        with self.catalog() as db:
            return [dict(row) for row in db.execute(text(sql), params).mappings()]

    def value(self, sql: str, **params: object) -> Any:
        """The first column of the first row of one query (None if there is no row)."""
        with self.catalog() as db:
            return db.execute(text(sql), params).scalar()

    def counts(self) -> tuple[int, int, int]:
        """(faces, subjects, audit entries) as stored right now."""
        [row] = self.rows("SELECT (SELECT count(*) FROM faces) AS faces, (SELECT count(*) FROM subjects) AS subjects, "
                          "(SELECT count(*) FROM audit_log) AS entries")
        return int(row["faces"]), int(row["subjects"]), int(row["entries"])

    def last_entry(self) -> dict[str, object]:
        [row] = self.rows("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1")
        return row

    def entry_for(self, request_id: str) -> list[dict[str, object]]:
        return self.rows("SELECT * FROM audit_log WHERE request_id = :rid ORDER BY seq", rid=request_id)

    def entries(self, where: str = "TRUE", **params: object) -> list[dict[str, Any]]:
        """Audit entries in order, `where` an SQL condition both backends read alike."""
        return self.rows(f"SELECT * FROM audit_log WHERE {where} ORDER BY seq", **params)

    def wait_ready(self) -> None:
        _wait_ready(self, self.workers)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def catalog_url(home: Path, database_url: str | None) -> str:
    """A SQLAlchemy URL that reads an installation: its PostgreSQL database (psycopg 3), or
    its SQLite catalog file opened read-only."""
    if database_url is not None:
        return make_url(database_url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return f"sqlite:///file:{home / CATALOG_FILE}?mode=ro&uri=true"


def _env(home: Path, policy: Path | None, extra: dict[str, str] | None = None, *,
         database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env["FACEGATE_HOME"] = str(home)
    if policy is not None:
        env["FACEGATE_POLICY"] = str(policy)
    if database_url is not None:
        env["FACEGATE_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


# Runs several `facegate` commands through the console script's own entry point
# (`facegate.cli:main`) in one interpreter: each `facegate` process spends seconds importing
# before it does anything, and the setup of a server needs a dozen commands.
_BATCH = """
import contextlib, io, json, sys
from facegate.cli import main
answers = []
for args in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*args, "--json"], prog_name="facegate", standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise SystemExit(f"facegate {' '.join(args)} failed: {out.getvalue()}")
    answers.append(json.loads(out.getvalue()))
print(json.dumps(answers))
"""


def cli_all(commands: Sequence[Sequence[str]], home: Path, policy: Path | None, *,
            database_url: str | None = None, extra: dict[str, str] | None = None) -> list[dict[str, object]]:
    """The JSON answers of `facegate ARGS --json` for each command, run in order."""
    run = subprocess.run([sys.executable, "-c", _BATCH, json.dumps([list(c) for c in commands])],
                         env=_env(home, policy, extra, database_url=database_url), capture_output=True, text=True,
                         check=False, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"facegate commands failed ({run.returncode}): {run.stderr[-3000:]}")
    answers: list[dict[str, object]] = json.loads(run.stdout)
    return answers


@contextmanager
def running_server(
    home: Path, model_cache: Path, policy: Path | None = None, workers: int = 1,
    settings: dict[str, str] | None = None, tenants: Sequence[Tenant] = (), database_url: str | None = None,
    wait: bool = True,
) -> Iterator[Server]:
    """`facegate serve` on a free port until the block ends; ready (models loaded) on entry,
    with `tenants` created by the CLI (while the server loads its models) and their keys.

    `database_url` (server mode) is FACEGATE_DATABASE_URL for the server and every CLI call;
    its AWS secret keys are sealed under a credentials key file made beside `home` unless
    `settings` names one (FACEGATE_CREDENTIALS_KEY_FILE: hosts that share a database share it).
    Without `wait` the block starts before the server is ready (`server.wait_ready()`), so
    that several servers load their models at once."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(model_cache, target_is_directory=True)
    settings = dict(settings or {})
    if database_url is not None and "FACEGATE_CREDENTIALS_KEY_FILE" not in settings:
        key_file = home.with_name(f"{home.name}.credentials.kek")
        write_new_kek(key_file)
        settings["FACEGATE_CREDENTIALS_KEY_FILE"] = str(key_file)
    # migrate first: server and CLI start at once
    Facegate(Settings(home=home, database_url=database_url)).db.dispose()
    port = free_port()
    log = home.with_name(f"{home.name}.serve.log")  # beside the data directory: server mode keeps it empty
    args = [str(FACEGATE), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=_env(home, policy, settings, database_url=database_url),
                                   stdout=out, stderr=subprocess.STDOUT)
    shared = {k: v for k, v in settings.items() if k in SHARED_SETTINGS}
    server = Server(f"http://127.0.0.1:{port}", home, policy, process, log, database_url, shared=shared,
                    workers=workers)
    try:
        server.keys = server.make_keys(*tenants) if tenants else {}
        if wait:
            server.wait_ready()
        yield server
    finally:
        server.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(server: Server, workers: int) -> None:
    """Until /readyz answers 200 (as many times as there are workers, so that each is likely warm)."""
    deadline = time.monotonic() + READY_TIMEOUT
    ready = 0
    while ready < workers:
        if server.process.poll() is not None:
            raise RuntimeError(f"facegate serve exited ({server.process.returncode}):\n{server.log.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"facegate serve not ready after {READY_TIMEOUT}s:\n{server.log.read_text()}")
        try:
            ready += httpx.get(f"{server.url}/readyz", timeout=READY_TIMEOUT).status_code == 200
        except httpx.TransportError:
            time.sleep(0.3)
