"""Collections, and the lookups, ids and page tokens the other catalog modules share.

One plain function per operation, on a caller's `Session` (here: collections; faces.py and
subjects.py hold the rest). None of them commits: the engine owns the transaction, so an
operation and its audit entry are one unit of work. Public functions return frozen
dataclasses, never ORM rows, so nothing above `store/` can lazily load or change a row;
the `*_row` helpers are for the store modules only.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.store.tables import CollectionGrantRow, CollectionRow, FaceChangeRow, FaceRow, SubjectRow

T = TypeVar("T")

# Collection ids name their index files ("<id>.<kind>.idx"): 128 characters keeps them
# well inside the 255-byte file-name limit of common file systems.
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_SUBJECT = re.compile(r"[A-Za-z0-9_.\-:]{1,255}")
_ALPHABET = {
    _NAME: "1-128 characters: letters, digits, '_', '.', '-'",
    _SUBJECT: "1-255 characters: letters, digits, '_', '.', '-', ':'",
}
MAX_PAGE = 4096


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    collection_id: str
    description: str
    model_id: str
    template_id: str  # the template space (model + recipe) every face in it belongs to
    dimension: int
    created_at: datetime
    owner: str = "local"  # the tenant that created it
    retention_days: int | None = None  # faces older than this are erased by retention
    keep_thumbnails: bool = False  # each face keeps a sealed crop for reviewers (opt-in)


@dataclass(frozen=True, slots=True)
class CollectionStats:
    collection: CollectionInfo
    face_count: int
    subject_count: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass `next_token` back to get the next (None: no more)."""

    items: list[T]
    next_token: str | None


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every stored moment is UTC, so say so."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def validate_name(value: str, what: str, pattern: re.Pattern[str] = _NAME) -> str:
    """Ids end up in file names and URLs: refuse anything outside a safe alphabet."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT,
            f"{what} must be {_ALPHABET[pattern]}",
            **{what: str(value)[:300]},
        )
    return value


def encode_token(row_id: int) -> str:
    """Keyset position as an opaque token: stable under inserts and deletes elsewhere."""
    return base64.urlsafe_b64encode(f"r{row_id}".encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        digits = text[1:]
        # at most 18 ASCII digits: a row id SQLite can hold (a longer one was a 500)
        if text[:1] == "r" and digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(digits)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise FacegateError(ErrorCode.INVALID_ARGUMENT, "next_token is not a token we issued")


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"limit must be 1..{MAX_PAGE}", limit=limit)
    return limit


def _info(row: CollectionRow) -> CollectionInfo:
    return CollectionInfo(
        row.collection_id,
        row.description,
        row.model_id,
        row.template_id,
        row.dimension,
        as_utc(row.created_at),
        row.owner or "local",
        row.retention_days,
        bool(row.keep_thumbnails),
    )


def collection_row(session: Session, collection_id: str) -> CollectionRow:
    """The row itself, for the other store modules; callers above store/ get `CollectionInfo`."""
    row = session.get(CollectionRow, collection_id)
    if row is None:
        raise collection_not_found(collection_id)
    return row


def collection_not_found(collection_id: str) -> FacegateError:
    """The one refusal for a collection that does not exist, or that the caller may not
    know of (the gate raises this very error for another tenant's collection)."""
    return FacegateError(
        ErrorCode.COLLECTION_NOT_FOUND, f"no collection {collection_id!r}", collection_id=collection_id
    )


def ensure_template(collection: CollectionInfo, template_id: str) -> None:
    """Templates of different models (or recipes) are not comparable: refuse to mix them."""
    if template_id != collection.template_id:
        raise FacegateError(
            ErrorCode.MODEL_MISMATCH,
            f"collection {collection.collection_id!r} holds {collection.template_id} templates, "
            f"not {template_id}",
            collection_id=collection.collection_id,
            collection_template=collection.template_id,
            requested_template=template_id,
        )


def create_collection(
    session: Session,
    *,
    collection_id: str,
    model_id: str,
    template_id: str,
    dimension: int,
    now: datetime,
    description: str = "",
    owner: str = "local",
    retention_days: int | None = None,
    keep_thumbnails: bool = False,
) -> CollectionInfo:
    validate_name(collection_id, "collection_id")
    if dimension < 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "dimension must be positive")
    if retention_days is not None and retention_days < 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "retention_days must be at least 1", field="retention_days")
    if session.get(CollectionRow, collection_id) is not None:
        raise FacegateError(
            ErrorCode.COLLECTION_EXISTS,
            f"collection {collection_id!r} already exists",
            collection_id=collection_id,
        )
    row = CollectionRow(
        collection_id=collection_id,
        description=description,
        model_id=model_id,
        template_id=template_id,
        dimension=dimension,
        created_at=as_utc(now),
        owner=owner,
        retention_days=retention_days,
        keep_thumbnails=keep_thumbnails,
    )
    session.add(row)
    session.flush()
    return _info(row)


def get_collection(session: Session, *, collection_id: str) -> CollectionInfo:
    return _info(collection_row(session, collection_id))


def list_collections(session: Session, only: set[str] | None = None) -> list[CollectionInfo]:
    """Every collection, or `only` those ids (what a tenant may see)."""
    query = select(CollectionRow).order_by(CollectionRow.collection_id)
    if only is not None:
        query = query.where(CollectionRow.collection_id.in_(sorted(only)))
    rows = session.scalars(query)
    return [_info(row) for row in rows]


def describe_collection(session: Session, *, collection_id: str) -> CollectionStats:
    info = _info(collection_row(session, collection_id))
    faces = session.scalar(
        select(func.count()).select_from(FaceRow).where(FaceRow.collection_id == collection_id)
    )
    subjects = session.scalar(
        select(func.count()).select_from(SubjectRow).where(SubjectRow.collection_id == collection_id)
    )
    return CollectionStats(info, int(faces or 0), int(subjects or 0))


def delete_collection(session: Session, *, collection_id: str) -> CollectionStats:
    """Delete the collection with its faces, subjects and change log; returns what it held.

    The change log goes too: ids are AUTOINCREMENT, so a collection created later under the
    same name starts a fresh log that an old index file can never be mistaken for.
    """
    stats = describe_collection(session, collection_id=collection_id)
    session.execute(delete(FaceChangeRow).where(FaceChangeRow.collection_id == collection_id))
    session.execute(delete(FaceRow).where(FaceRow.collection_id == collection_id))
    session.execute(delete(SubjectRow).where(SubjectRow.collection_id == collection_id))
    # Grants go with it: a collection made later under the same name must not inherit them.
    session.execute(delete(CollectionGrantRow).where(CollectionGrantRow.collection_id == collection_id))
    session.execute(delete(CollectionRow).where(CollectionRow.collection_id == collection_id))
    session.expire_all()
    return stats


def subject_row(session: Session, collection_id: str, subject_id: str) -> SubjectRow | None:
    """Subject ids are unique per collection: the same person may be in several."""
    return session.scalars(
        select(SubjectRow).where(
            SubjectRow.collection_id == collection_id, SubjectRow.subject_id == subject_id
        )
    ).one_or_none()


def require_subject(session: Session, collection_id: str, subject_id: str) -> SubjectRow:
    row = subject_row(session, collection_id, subject_id)
    if row is None:
        raise FacegateError(
            ErrorCode.SUBJECT_NOT_FOUND,
            f"no subject {subject_id!r} in {collection_id!r}",
            collection_id=collection_id,
            subject_id=subject_id,
        )
    return row


def new_subject_row(
    session: Session, collection_id: str, subject_id: str, attributes: Mapping[str, str], now: datetime
) -> SubjectRow:
    """Subject ids come from manifests and users; they may also hold ':' (e.g. "case:42")."""
    validate_name(subject_id, "subject_id", _SUBJECT)
    row = SubjectRow(
        collection_id=collection_id,
        subject_id=subject_id,
        attributes=dict(attributes),
        created_at=as_utc(now),
    )
    session.add(row)
    session.flush()
    return row
