"""Store fixtures: a fresh migrated catalog per test, and real faces analysed once per session.

Faces come from real photos through the real pipeline (the session's `pipeline` fixture),
so every template in these tests is one the product would store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from facegate.store.catalog import CollectionInfo, create_collection
from facegate.store.crypto import TemplateCodec
from facegate.store.db import open_engine, server_url, session_factory, sqlite_url
from facegate.store.faces import StoredFace, add_faces
from facegate.store.migrations import migrate
from facegate.vision import Pipeline
from facegate.vision.types import Face

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FR = Path("face_recognition")
PHOTOS = {
    "obama": FR / "tests" / "test_images" / "obama.jpg",
    "obama2": FR / "tests" / "test_images" / "obama2.jpg",
    "biden": FR / "tests" / "test_images" / "biden.jpg",
    "two_people": FR / "examples" / "two_people.jpg",
    "powell1": Path("Colin_Powell") / "Colin_Powell_0001.jpg",
    "powell2": Path("Colin_Powell") / "Colin_Powell_0002.jpg",
    "powell3": Path("Colin_Powell") / "Colin_Powell_0003.jpg",
    "sandler1": Path("Adam_Sandler") / "Adam_Sandler_0001.jpg",
    "sandler2": Path("Adam_Sandler") / "Adam_Sandler_0002.jpg",
    "pacino1": Path("Al_Pacino") / "Al_Pacino_0001.jpg",
    "pacino2": Path("Al_Pacino") / "Al_Pacino_0002.jpg",
}


@dataclass(frozen=True)
class Photo:
    name: str
    sha256: str
    faces: list[Face]


@pytest.fixture(scope="session")
def photos(pipeline: Pipeline, lfw: Path, peers: Path) -> dict[str, Photo]:
    """Each photo analysed once; a photo without the faces we expect fails here, loudly."""
    found = {}
    for name, relative in PHOTOS.items():
        path = (peers if relative.parts[0] == "face_recognition" else lfw) / relative
        faces = pipeline.analyze_file(path)
        if len(faces) != (2 if name == "two_people" else 1):
            raise AssertionError(f"{path}: expected its faces, found {len(faces)}")
        found[name] = Photo(name, hashlib.sha256(path.read_bytes()).hexdigest(), faces)
    return found


@pytest.fixture(scope="session")
def template_id(pipeline: Pipeline) -> str:
    return pipeline.template_id


@pytest.fixture()
def sessions(tmp_path: Path, database_url: str | None) -> Iterator[sessionmaker[Session]]:
    """A migrated catalog: a fresh data directory's, or a fresh PostgreSQL database."""
    engine = open_engine(sqlite_url(tmp_path) if database_url is None else server_url(database_url))
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture()
def codec() -> TemplateCodec:
    return TemplateCodec(None)


def make_collection(
    sessions: sessionmaker[Session], template_id: str, collection_id: str = "people"
) -> CollectionInfo:
    with sessions.begin() as session:
        return create_collection(
            session,
            collection_id=collection_id,
            model_id=template_id.split("+")[0],
            template_id=template_id,
            dimension=128,
            now=NOW,
            description="test faces",
        )


def enroll(
    sessions: sessionmaker[Session],
    photo: Photo,
    template_id: str,
    codec: TemplateCodec,
    *,
    collection_id: str = "people",
    subject_id: str | None = None,
    external_image_id: str | None = None,
) -> list[StoredFace]:
    """Store a photo's faces and commit, as the engine does for one image."""
    with sessions.begin() as session:
        return add_faces(
            session,
            collection_id=collection_id,
            faces=photo.faces,
            image_sha256=photo.sha256,
            external_image_id=external_image_id or photo.name,
            subject_id=subject_id,
            template_id=template_id,
            codec=codec,
            now=NOW,
        )
