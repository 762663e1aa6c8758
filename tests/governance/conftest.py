"""Fixtures for governance tests: the example policy, a table calibration, a real catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from facegate.governance.policy import Policy
from facegate.governance.policy_loading import load_policy
from facegate.store.db import open_engine, session_factory, sqlite_url
from facegate.store.migrations import migrate
from tests.governance.gov_support import EXAMPLE_POLICY, TableCalibration


@pytest.fixture(scope="session")
def example_policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


@pytest.fixture(scope="session")
def calibration() -> TableCalibration:
    return TableCalibration()


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """A real, migrated SQLite catalog in a temporary data directory."""
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    yield engine, session_factory(engine)
    engine.dispose()
