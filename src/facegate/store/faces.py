"""Faces in the catalog: enrol, find again, list, get, turn index hits into faces, delete.

Every function that adds or removes a face also appends to `face_changes` in the same
transaction (the caller's). That log is how vector indexes, in this process or another,
catch up with the catalog: a face row never exists without its change row, so an index
that replays the log can never miss one, whatever was interrupted. None of these functions
commits, and none hands a template back (templates.py does, for search by face or subject).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Select, delete, insert, select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog import (
    Page,
    as_utc,
    check_limit,
    collection_row,
    decode_token,
    encode_token,
    ensure_template,
    get_collection,
    new_subject_row,
    require_subject,
    subject_row,
)
from facegate.store import embeddings
from facegate.store.crypto import TemplateCodec
from facegate.store.tables import FaceChangeRow, FaceRow, SubjectRow
from facegate.store.template_key import ensure_writable
from facegate.vision.types import Box, Face

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 500  # ids per IN (...) list: well under every SQLite build's parameter limit
_UNIT_TOLERANCE = 1e-3  # what the vector index accepts as unit length


@dataclass(frozen=True, slots=True)
class StoredFace:
    """A face as the catalog holds it, without its template."""

    face_id: str
    row_id: int  # key in the vector index; internal to facegate, never shown to users
    collection_id: str
    subject: str | None
    external_image_id: str | None
    box: Box
    confidence: float
    quality: dict[str, float | int | str]
    landmarks: tuple[tuple[int, int], ...]
    image_sha256: str
    created_at: datetime
    score_offset: float | None = None  # fair score normalization offset; None: not stored
    image_size: tuple[int, int] | None = None  # (width, height) of its image, when known

    def to_dict(self) -> dict[str, object]:
        return {
            "face_id": self.face_id,
            "collection_id": self.collection_id,
            "subject": self.subject,
            "external_image_id": self.external_image_id,
            "box": self.box.to_dict(),
            "confidence": round(self.confidence, 4),
            "quality": dict(self.quality),
            "landmarks": [{"x": x, "y": y} for x, y in self.landmarks],
            "image_sha256": self.image_sha256,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class FaceDeletion:
    deleted: list[str]
    unknown: list[str]


# Every column but the template and the thumbnail, as plain rows rather than ORM objects:
# turning a search's hits into faces is on the hot path, and neither must ride along by accident.
_COLUMNS = [column for column in FaceRow.__table__.columns if column.name not in ("template", "thumbnail")]


def _faces_query() -> Select[Any]:
    return (
        select(*_COLUMNS, SubjectRow.subject_id)
        .select_from(FaceRow)
        .outerjoin(SubjectRow, FaceRow.subject_row_id == SubjectRow.row_id)
    )


def _stored(row: Any, subject: str | None) -> StoredFace:
    """From a `_faces_query` row or a `FaceRow`: both name the columns alike."""
    return StoredFace(
        face_id=row.face_id,
        row_id=row.row_id,
        collection_id=row.collection_id,
        subject=subject,
        external_image_id=row.external_image_id,
        box=Box(row.box_left, row.box_top, row.box_width, row.box_height),
        confidence=row.confidence,
        quality=dict(row.quality),
        landmarks=tuple((int(x), int(y)) for x, y in row.landmarks),
        image_sha256=row.image_sha256,
        created_at=as_utc(row.created_at),
        score_offset=row.score_offset,
        image_size=(row.image_width, row.image_height) if row.image_width and row.image_height else None,
    )


def _log(session: Session, collection_id: str, row_ids: Iterable[int], op: str) -> None:
    rows = [{"collection_id": collection_id, "face_row_id": r, "op": op} for r in row_ids]
    if rows:
        session.execute(insert(FaceChangeRow), rows)


def chunks(values: Sequence[object]) -> Iterable[Sequence[object]]:
    """Long id lists as several IN (...) queries: SQLite caps bound parameters."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def by_face_ids(session: Session, collection_id: str, face_ids: Sequence[str]) -> dict[str, StoredFace]:
    """The faces of those ids that exist in this collection (ids of others are absent), in
    the order asked for: what callers report back (associated, deleted) follows the request,
    never the order a backend happens to return rows in."""
    asked = list(dict.fromkeys(face_ids))
    found: dict[str, StoredFace] = {}
    for chunk in chunks(asked):
        query = _faces_query().where(FaceRow.collection_id == collection_id, FaceRow.face_id.in_(chunk))
        for row in session.execute(query):
            found[row.face_id] = _stored(row, row.subject_id)
    return {face_id: found[face_id] for face_id in asked if face_id in found}


def add_faces(
    session: Session,
    *,
    collection_id: str,
    faces: Sequence[Face],
    image_sha256: str,
    external_image_id: str | None,
    subject_id: str | None,
    template_id: str,
    codec: TemplateCodec,
    now: datetime,
    score_offsets: Sequence[float] | None = None,
    image_size: tuple[int, int] | None = None,
) -> list[StoredFace]:
    """Store faces of one image (creating the subject if new), each with an 'add' change;
    `score_offsets` (one per face) are their fair score normalization offsets, if on."""
    collection = get_collection(session, collection_id=collection_id)
    ensure_template(collection, template_id)
    if _SHA256.fullmatch(image_sha256) is None:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "image_sha256 must be 64 lowercase hex digits")
    if external_image_id is not None and not 1 <= len(external_image_id) <= 255:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "external_image_id must be 1-255 characters")
    for face in faces:
        if face.template.shape != (collection.dimension,):
            raise FacegateError(
                ErrorCode.MODEL_MISMATCH,
                f"templates of {collection_id!r} have {collection.dimension} dimensions, "
                f"got {face.template.shape}",
                collection_id=collection_id,
            )
        # One bad row would make every later index build of the collection fail.
        if not abs(float(np.linalg.norm(face.template)) - 1.0) <= _UNIT_TOLERANCE:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a template must be a finite unit vector")
    if not faces:
        return []
    ensure_writable(session, codec)  # the key may have changed since this process started
    subject = None
    if subject_id is not None:
        subject = subject_row(session, collection_id, subject_id) or new_subject_row(
            session, collection_id, subject_id, {}, now
        )
    rows = [
        FaceRow(
            face_id=str(uuid.uuid4()),
            collection_id=collection_id,
            subject_row_id=subject.row_id if subject is not None else None,
            external_image_id=external_image_id,
            image_sha256=image_sha256,
            box_left=face.box.left,
            box_top=face.box.top,
            box_width=face.box.width,
            box_height=face.box.height,
            confidence=float(face.confidence),
            landmarks=[list(p) for p in face.landmarks],
            quality=face.quality.to_dict(),
            template=codec.encode(face.template),
            created_at=as_utc(now),
            score_offset=None if score_offsets is None else float(score_offsets[i]),
            image_width=image_size[0] if image_size else None,
            image_height=image_size[1] if image_size else None,
            thumbnail=codec.seal_thumbnail(face.thumbnail)
            if collection.keep_thumbnails and face.thumbnail is not None else None,
        )
        for i, face in enumerate(faces)
    ]
    session.add_all(rows)
    session.flush()
    embeddings.write(session, codec, [(row.row_id, face.template) for row, face in zip(rows, faces, strict=True)])
    _log(session, collection_id, [row.row_id for row in rows], "add")
    return [_stored(row, subject_id) for row in rows]


def find_indexed_image(
    session: Session, *, collection_id: str, image_sha256: str, external_image_id: str | None
) -> list[StoredFace]:
    """Faces already stored from this image under this external id: a re-run adds nothing."""
    collection_row(session, collection_id)
    external = (
        FaceRow.external_image_id.is_(None)
        if external_image_id is None
        else FaceRow.external_image_id == external_image_id
    )
    query = _faces_query().where(
        FaceRow.collection_id == collection_id, FaceRow.image_sha256 == image_sha256, external
    )
    return [_stored(row, row.subject_id) for row in session.execute(query.order_by(FaceRow.row_id))]


def list_faces(
    session: Session,
    *,
    collection_id: str,
    subject_id: str | None = None,
    limit: int = 100,
    next_token: str | None = None,
) -> Page[StoredFace]:
    """Faces in enrolment order; the token is a position, so pages never repeat or skip."""
    collection_row(session, collection_id)
    query = _faces_query().where(FaceRow.collection_id == collection_id)
    if subject_id is not None:
        subject = require_subject(session, collection_id, subject_id)
        query = query.where(FaceRow.subject_row_id == subject.row_id)
    query = query.where(FaceRow.row_id > decode_token(next_token)).order_by(FaceRow.row_id)
    rows = session.execute(query.limit(check_limit(limit) + 1)).all()
    token = encode_token(rows[limit - 1].row_id) if len(rows) > limit else None
    return Page([_stored(row, row.subject_id) for row in rows[:limit]], token)


def get_faces(session: Session, *, collection_id: str, face_ids: Sequence[str]) -> list[StoredFace]:
    """The faces asked for, in that order; FACE_NOT_FOUND names any that are not there."""
    collection_row(session, collection_id)
    found = by_face_ids(session, collection_id, face_ids)
    unknown = [f for f in dict.fromkeys(face_ids) if f not in found]
    if unknown:
        raise FacegateError(
            ErrorCode.FACE_NOT_FOUND,
            f"{len(unknown)} face id(s) not in {collection_id!r}",
            collection_id=collection_id,
            face_ids=unknown,
        )
    return [found[f] for f in dict.fromkeys(face_ids)]


def faces_by_row_ids(
    session: Session, *, collection_id: str, row_ids: Iterable[int]
) -> dict[int, StoredFace]:
    """Index keys to faces. Keys whose row is gone are simply absent: a stale index hit
    can never turn into a deleted face."""
    found: dict[int, StoredFace] = {}
    for chunk in chunks(sorted({int(r) for r in row_ids})):
        query = _faces_query().where(FaceRow.collection_id == collection_id, FaceRow.row_id.in_(chunk))
        for row in session.execute(query):
            found[row.row_id] = _stored(row, row.subject_id)
    return found


def sealed_thumbnail(session: Session, face_id: str) -> tuple[str, bytes | None] | None:
    """(collection id, sealed thumbnail or None) of a face, or None when no such face exists."""
    row = session.execute(select(FaceRow.collection_id, FaceRow.thumbnail).where(FaceRow.face_id == face_id)).first()
    return None if row is None else (row.collection_id, row.thumbnail)


def delete_face_rows(session: Session, collection_id: str, row_ids: Sequence[int]) -> None:
    """The one way faces leave the catalog: rows and their 'remove' changes together."""
    for chunk in chunks(row_ids):
        session.execute(delete(FaceRow).where(FaceRow.row_id.in_(chunk)))
    _log(session, collection_id, row_ids, "remove")


def delete_faces(session: Session, *, collection_id: str, face_ids: Sequence[str]) -> FaceDeletion:
    collection_row(session, collection_id)
    found = by_face_ids(session, collection_id, face_ids)
    delete_face_rows(session, collection_id, [face.row_id for face in found.values()])
    session.expire_all()
    unknown = [f for f in dict.fromkeys(face_ids) if f not in found]
    return FaceDeletion(deleted=list(found), unknown=unknown)
