"""Subjects (Rekognition's "users"): one person, many faces, and erasure of all of them.

A subject groups faces so that a search can answer "who" rather than "which photo", and
so that a person's right to erasure is one call: `erase_subject` removes the subject and
every face of it, with a 'remove' change per face, in the caller's transaction, so no index
in any process can keep returning them once that transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ScalarSelect, delete, func, select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog import (
    Page,
    as_utc,
    check_limit,
    collection_row,
    decode_token,
    encode_token,
    new_subject_row,
    require_subject,
    subject_row,
)
from facegate.store.faces import by_face_ids, chunks, delete_face_rows
from facegate.store.tables import FaceRow, SubjectRow


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    subject_id: str
    attributes: Mapping[str, str]
    face_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Association:
    associated: list[str]
    unknown: list[str]
    conflicting: list[str]  # already belong to another subject: left as they are


@dataclass(frozen=True, slots=True)
class Erasure:
    subject_id: str
    face_ids: list[str]


def _face_count(subject_row_id: object) -> ScalarSelect[int]:
    """Faces of one subject, as a subquery that the (collection, subject) index answers."""
    return (
        select(func.count())
        .select_from(FaceRow)
        .where(
            FaceRow.collection_id == SubjectRow.collection_id, FaceRow.subject_row_id == subject_row_id
        )
        .scalar_subquery()
    )


def _subject(row: SubjectRow, face_count: int) -> SubjectInfo:
    return SubjectInfo(row.subject_id, dict(row.attributes or {}), face_count, as_utc(row.created_at))


def create_subject(
    session: Session,
    *,
    collection_id: str,
    subject_id: str,
    now: datetime,
    attributes: Mapping[str, str] | None = None,
) -> SubjectInfo:
    collection_row(session, collection_id)
    if subject_row(session, collection_id, subject_id) is not None:
        raise FacegateError(
            ErrorCode.SUBJECT_EXISTS,
            f"subject {subject_id!r} already exists in {collection_id!r}",
            collection_id=collection_id,
            subject_id=subject_id,
        )
    return _subject(new_subject_row(session, collection_id, subject_id, attributes or {}, now), 0)


def get_subject(session: Session, *, collection_id: str, subject_id: str) -> SubjectInfo:
    collection_row(session, collection_id)
    row = require_subject(session, collection_id, subject_id)
    count = session.scalar(select(_face_count(row.row_id)).where(SubjectRow.row_id == row.row_id))
    return _subject(row, int(count or 0))


def list_subjects(
    session: Session, *, collection_id: str, limit: int = 100, next_token: str | None = None
) -> Page[SubjectInfo]:
    """Subjects in creation order, each with its number of faces."""
    collection_row(session, collection_id)
    rows = session.execute(
        select(SubjectRow, _face_count(SubjectRow.row_id))
        .where(SubjectRow.collection_id == collection_id, SubjectRow.row_id > decode_token(next_token))
        .order_by(SubjectRow.row_id)
        .limit(check_limit(limit) + 1)
    ).all()
    token = encode_token(rows[limit - 1][0].row_id) if len(rows) > limit else None
    return Page([_subject(row, int(n)) for row, n in rows[:limit]], token)


def associate_faces(
    session: Session, *, collection_id: str, subject_id: str, face_ids: Sequence[str]
) -> Association:
    """Attach faces to an existing subject; faces of another subject are left alone.

    No change row: index keys are face rows, and a hit's subject is read from the catalog
    when the hit is turned into a result.
    """
    collection_row(session, collection_id)
    subject = require_subject(session, collection_id, subject_id)
    found = by_face_ids(session, collection_id, face_ids)
    free = [f for f in found.values() if f.subject in (None, subject_id)]
    for chunk in chunks([f.row_id for f in free]):
        for row in session.scalars(select(FaceRow).where(FaceRow.row_id.in_(chunk))):
            row.subject_row_id = subject.row_id
    session.flush()
    return Association(
        associated=[f.face_id for f in free],
        unknown=[f for f in dict.fromkeys(face_ids) if f not in found],
        conflicting=[f.face_id for f in found.values() if f.subject not in (None, subject_id)],
    )


def disassociate_faces(
    session: Session, *, collection_id: str, subject_id: str, face_ids: Sequence[str]
) -> Association:
    """Detach faces from a subject; the faces stay enrolled. Faces of another subject are
    left alone (`conflicting`), ids not in the collection are `unknown`."""
    collection_row(session, collection_id)
    require_subject(session, collection_id, subject_id)
    found = by_face_ids(session, collection_id, face_ids)
    mine = [f for f in found.values() if f.subject == subject_id]
    for chunk in chunks([f.row_id for f in mine]):
        for row in session.scalars(select(FaceRow).where(FaceRow.row_id.in_(chunk))):
            row.subject_row_id = None
    session.flush()
    return Association(
        associated=[f.face_id for f in mine],
        unknown=[f for f in dict.fromkeys(face_ids) if f not in found],
        conflicting=[f.face_id for f in found.values() if f.subject != subject_id],
    )


def delete_subject(session: Session, *, collection_id: str, subject_id: str) -> Erasure:
    """Remove the subject only (Rekognition's DeleteUser): its faces stay, unassociated.
    `erase_subject` is the right-to-erasure variant that removes the faces too."""
    collection_row(session, collection_id)
    subject = require_subject(session, collection_id, subject_id)
    face_ids = list(session.scalars(
        select(FaceRow.face_id).where(FaceRow.collection_id == collection_id, FaceRow.subject_row_id == subject.row_id)
        .order_by(FaceRow.row_id)
    ))
    for row in session.scalars(select(FaceRow).where(FaceRow.subject_row_id == subject.row_id)):
        row.subject_row_id = None
    session.flush()
    session.execute(delete(SubjectRow).where(SubjectRow.row_id == subject.row_id))
    session.expire_all()
    return Erasure(subject_id=subject_id, face_ids=face_ids)


def erase_subject(session: Session, *, collection_id: str, subject_id: str) -> Erasure:
    """Right to erasure: the subject and every face of it, each with a 'remove' change."""
    collection_row(session, collection_id)
    subject = require_subject(session, collection_id, subject_id)
    rows = session.execute(
        select(FaceRow.row_id, FaceRow.face_id)
        .where(FaceRow.collection_id == collection_id, FaceRow.subject_row_id == subject.row_id)
        .order_by(FaceRow.row_id)
    ).all()
    delete_face_rows(session, collection_id, [r.row_id for r in rows])
    session.execute(delete(SubjectRow).where(SubjectRow.row_id == subject.row_id))
    session.expire_all()
    return Erasure(subject_id=subject_id, face_ids=[r.face_id for r in rows])
