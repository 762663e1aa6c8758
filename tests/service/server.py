"""A real facegate server for tests: `facegate serve` in a subprocess on a free loopback port.

Tenants and keys are made with the CLI (`facegate tenant create ... --json`, `facegate key
create ... --json`) against the same data directory while the server runs, as an
administrator would. The catalog is read directly (read-only SQLite) to check that a
refused request changed nothing but the audit log.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from facegate.client import FacegateClient
from facegate.engine import Facegate
from facegate.settings import Settings

REPO = Path(__file__).resolve().parents[2]
LFW = REPO.parent / "shared" / "data" / "lfw"
EXAMPLE_POLICY = REPO / "examples" / "policy-2020-moratorium.toml"
FACEGATE = Path(sys.executable).parent / "facegate"
READY_TIMEOUT = 180.0  # two cores shared with other jobs: model loading can be slow
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
    keys: dict[str, str] = field(default_factory=dict)  # tenant -> API key, made at start

    def cli(self, *args: str) -> dict[str, object]:
        """Run the `facegate ARGS --json` executable against this data directory; its JSON answer."""
        run = subprocess.run([str(FACEGATE), *args, "--json"], env=_env(self.home, self.policy),
                             capture_output=True, text=True, check=False, timeout=180)
        if run.returncode != 0:
            raise RuntimeError(f"facegate {' '.join(args)} failed ({run.returncode}): {run.stdout} {run.stderr}")
        answer: dict[str, object] = json.loads(run.stdout)
        return answer

    def cli_all(self, commands: Sequence[Sequence[str]]) -> list[dict[str, object]]:
        return cli_all(commands, self.home, self.policy)

    def make_keys(self, *tenants: Tenant) -> dict[str, str]:
        """New tenants, each `(name, sector, purposes, roles)`, and an API key for each (shown once)."""
        made = self.cli_all([
            *(["tenant", "create", n, "--sector", s, "--purposes", p, "--roles", r] for n, s, p, r in tenants),
            *(["key", "create", name] for name, *_ in tenants),
        ])[len(tenants):]
        return {name: str(key["key"]) for (name, *_), key in zip(tenants, made, strict=True)}

    def client(self, key: str | None) -> FacegateClient:
        return FacegateClient(self.url, key)

    def catalog(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.home / 'catalog.sqlite3'}?mode=ro", uri=True)

    def counts(self) -> tuple[int, int, int]:
        """(faces, subjects, audit entries) as stored right now."""
        with self.catalog() as db:
            faces = db.execute("SELECT count(*) FROM faces").fetchone()[0]
            subjects = db.execute("SELECT count(*) FROM subjects").fetchone()[0]
            entries = db.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        return faces, subjects, entries

    def last_entry(self) -> dict[str, object]:
        with self.catalog() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return dict(row)

    def entry_for(self, request_id: str) -> list[dict[str, object]]:
        with self.catalog() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM audit_log WHERE request_id = ?", (request_id,)).fetchall()
        return [dict(r) for r in rows]


def _env(home: Path, policy: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env["FACEGATE_HOME"] = str(home)
    if policy is not None:
        env["FACEGATE_POLICY"] = str(policy)
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


def cli_all(commands: Sequence[Sequence[str]], home: Path, policy: Path | None) -> list[dict[str, object]]:
    """The JSON answers of `facegate ARGS --json` for each command, run in order."""
    run = subprocess.run([sys.executable, "-c", _BATCH, json.dumps([list(c) for c in commands])],
                         env=_env(home, policy), capture_output=True, text=True, check=False, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"facegate commands failed ({run.returncode}): {run.stderr[-3000:]}")
    answers: list[dict[str, object]] = json.loads(run.stdout)
    return answers


@contextmanager
def running_server(
    home: Path, model_cache: Path, policy: Path | None = None, workers: int = 1,
    settings: dict[str, str] | None = None, tenants: Sequence[Tenant] = (),
) -> Iterator[Server]:
    """`facegate serve` on a free port until the block ends; ready (models loaded) on entry,
    with `tenants` created by the CLI (while the server loads its models) and their keys."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(model_cache, target_is_directory=True)
    Facegate(Settings(home=home)).db.dispose()  # migrate first: server and CLI start at once
    port = free_port()
    log = home / "serve.log"
    args = [str(FACEGATE), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=_env(home, policy, settings), stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", home, policy, process, log)
    try:
        server.keys = server.make_keys(*tenants) if tenants else {}
        _wait_ready(server, workers)
        yield server
    finally:
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
