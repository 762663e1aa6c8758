"""Hosts on one database each read their own policy file. What they share is the catalog's
`policy_versions` (every policy a service worker loaded cleanly) and the audit log (every
entry names the policy that decided). Two things follow, checked here:

- a worker whose file is broken falls back to the last good policy of *its own* file, not
  to whatever another host (serving another file) loaded last;
- in server mode, hosts serving different policies is visible: `policy_drift()` (in
  /readyz as `checks.policy_drift`, and in `facegate serve`'s start-up lines) names the
  policy the service last loaded when it is not this host's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from importlib import resources

from facegate.engine import Facegate
from facegate.service.app import create_app
from facegate.settings import Settings
from facegate.store.catalog_meta import PolicyVersionRow

DEFAULT = resources.files("facegate.governance").joinpath("default_policy.toml").read_text()


def host(tmp_path: Path, model_cache: Path, name: str, database_url: str | None, policy: Path,
         shared_home: Path | None = None) -> Settings:
    home = shared_home or tmp_path / name
    if not home.exists():
        home.mkdir()
        (home / "models").symlink_to(model_cache, target_is_directory=True)
    return Settings(home=home, database_url=database_url, policy=policy)


def worker(settings: Settings) -> Facegate:
    """A service worker's engine: it keeps each clean policy in the catalog (in a thread)."""
    engine = Facegate(settings, keep_last_good_policy=True)
    version = engine.policy.version
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.sessions() as session:
            if session.get(PolicyVersionRow, version) is not None:
                return engine
        time.sleep(0.05)
    raise AssertionError(f"policy {version} never kept")


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    strict, lax = tmp_path / "strict.toml", tmp_path / "lax.toml"
    strict.write_text(DEFAULT)
    lax.write_text(DEFAULT.replace("max_fmr = 1e-3\nmax_results = 50", "max_fmr = 1e-2\nmax_results = 500"))
    assert lax.read_text() != DEFAULT
    return strict, lax


def test_a_broken_file_falls_back_to_its_own_last_good_policy(
    tmp_path: Path, model_cache: Path, database_url: str | None, files: tuple[Path, Path]
) -> None:
    strict, lax = files
    first = host(tmp_path, model_cache, "a", database_url, strict)
    kept = worker(first).policy.version
    other = host(tmp_path, model_cache, "b", database_url, lax, shared_home=None if database_url else first.home)
    assert worker(other).policy.version != kept  # loaded (and kept) after the strict one
    strict.write_text("[purposes.photo_library\nbroken = ")
    restarted = Facegate(first, keep_last_good_policy=True)
    assert restarted.policy.version == kept
    assert restarted.policy_holder.stale is not None and restarted.policy.source == str(strict)


def test_hosts_serving_different_policies_say_so(
    tmp_path: Path, model_cache: Path, postgres_url_factory, files: tuple[Path, Path]
) -> None:
    url = postgres_url_factory()
    strict, lax = files
    a = worker(host(tmp_path, model_cache, "a", url, strict))
    assert a.policy_drift() is None
    b = worker(host(tmp_path, model_cache, "b", url, lax))
    assert b.policy_drift() is None  # it loaded last
    drift = a.policy_drift()
    assert drift is not None and b.policy.version in drift and str(lax) in drift and a.policy.version in drift
    with TestClient(create_app(a.settings)) as client:  # host a's service: it loads (and keeps) strict again
        assert worker(a.settings).policy_drift() is None
        worker(b.settings)  # and b's restarts on lax
        checks = client.get("/readyz").json()["checks"]
        assert checks["policy"] == f"ok: {a.policy.version}"
        assert checks["policy_drift"] == a.policy_drift() and b.policy.version in checks["policy_drift"]
    embedded = worker(host(tmp_path, model_cache, "c", None, lax))
    assert embedded.policy_drift() is None
