"""Fixtures for governance tests: the example policy, a table calibration, a real catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facegate.governance.policy import Policy
from facegate.governance.policy_loading import load_policy
from facegate.store.db import open_engine, server_url, session_factory, sqlite_url
from facegate.store.migrations import migrate
from tests.governance.gov_support import EXAMPLE_POLICY, TableCalibration


@pytest.fixture(scope="session")
def example_policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


@pytest.fixture(scope="session")
def calibration() -> TableCalibration:
    return TableCalibration()


@pytest.fixture
def catalog(tmp_path: Path, database_url: str | None) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """A real, migrated catalog: SQLite in a temporary data directory, or a fresh PostgreSQL database."""
    engine = open_engine(sqlite_url(tmp_path) if database_url is None else server_url(database_url))
    migrate(engine)
    yield engine, session_factory(engine)
    engine.dispose()
