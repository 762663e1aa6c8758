"""Videos built once per session from LFW photos, and a collection that enrols two of
the people they show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import RowMapping, text

from facegate.cli import main
from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.operations import collections, faces
from facegate.settings import Settings
from tests.backend import environment, host_cache, server_mode_writes_no_files  # noqa: F401 - autouse
from tests.video.scenes import ENROLLED, SCENE, SCENE_SECONDS, SCENE_SIZE, lfw_photo, render

COLLECTION = "people"


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def scene_video(videos: Path) -> Path:
    return render(videos / "scene.mp4", SCENE, SCENE_SECONDS, SCENE_SIZE)


@pytest.fixture()
def enrolled(engine: Facegate) -> Facegate:
    """The engine with collection `people` holding two photos of each enrolled person."""
    collections.create_collection(engine, Caller(), COLLECTION)
    for person, numbers in ENROLLED.items():
        for n in numbers:
            faces.index_faces(engine, Caller(purpose="photo_library"), COLLECTION,
                              lfw_photo(person, n).read_bytes(), subject=person, max_faces=1)
    return engine


def run_cli(settings: Settings, *args: str, policy: Path | None = None) -> tuple[int, list[dict]]:
    """`facegate ARGS --data-dir ... --json` in process (on the installation of `settings`,
    its database included): exit code and every JSON line printed."""
    extra = ["--policy", str(policy)] if policy else []
    result = CliRunner(env=environment(settings)).invoke(
        main, [*args, "--data-dir", str(settings.home), *extra, "--json"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    text = result.stdout.strip()
    try:
        return result.exit_code, [json.loads(text)]
    except json.JSONDecodeError:
        return result.exit_code, [json.loads(line) for line in text.splitlines()]


def video_audit(engine: Facegate) -> list[RowMapping]:
    """The audit entries of video searches, oldest first (either backend)."""
    with engine.db.connect() as conn:
        return list(conn.execute(
            text("SELECT * FROM audit_log WHERE operation = 'video_search' ORDER BY seq")
        ).mappings())
