"""Shared fixtures: the real photos of ../shared/data, and one engine per test session.

The data is read in place. If it is missing the suite fails loudly: a face-recognition
test suite that silently skips its photos tests nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.settings import Settings
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
def settings(tmp_path: Path, model_cache: Path) -> Settings:
    """Settings on a fresh data directory; the model cache is shared to save time."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "models").symlink_to(model_cache, target_is_directory=True)
    return Settings(home=tmp_path / "home")


@pytest.fixture()
def engine(settings: Settings) -> Facegate:
    return Facegate(settings)
