"""Templates back out of the catalog: the probes of search by face or by subject, and the
rows an index is built from.

The only way a template leaves the store, and always as a float32 array decoded by the
configured `TemplateCodec`; nothing here ever logs or shows one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog import collection_row, require_subject
from facegate.store.crypto import TemplateCodec
from facegate.store.faces import chunks, get_faces
from facegate.store.tables import FaceRow


@dataclass(frozen=True, slots=True)
class FaceTemplates:
    face_ids: list[str]
    row_ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, d)



def decode_rows(
    codec: TemplateCodec, rows: Sequence[tuple[int, bytes]], dimension: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row id, blob) pairs to int64 keys and a float32 matrix, for search and index builds."""
    keys = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
    vectors = np.empty((len(rows), dimension), dtype=np.float32)
    for i, (_, blob) in enumerate(rows):
        vectors[i] = codec.decode(blob)
    return keys, vectors


def templates_of(
    session: Session,
    *,
    collection_id: str,
    codec: TemplateCodec,
    face_ids: Sequence[str] | None = None,
    subject_id: str | None = None,
) -> FaceTemplates:
    """Templates of given faces (in that order) or of all faces of a subject: the probes
    of search-by-face and search-by-subject."""
    if (face_ids is None) == (subject_id is None):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "give either face_ids or subject_id")
    collection = collection_row(session, collection_id)
    query = select(FaceRow.face_id, FaceRow.row_id, FaceRow.template).where(
        FaceRow.collection_id == collection_id
    )
    if subject_id is not None:
        subject = require_subject(session, collection_id, subject_id)
        query = query.where(FaceRow.subject_row_id == subject.row_id)
        rows = session.execute(query.order_by(FaceRow.row_id)).all()
    else:
        get_faces(session, collection_id=collection_id, face_ids=face_ids or [])
        wanted = list(dict.fromkeys(face_ids or []))
        by_id = {
            row.face_id: row
            for chunk in chunks(wanted)
            for row in session.execute(query.where(FaceRow.face_id.in_(chunk)))
        }
        rows = [by_id[f] for f in wanted]
    keys, vectors = decode_rows(codec, [(r.row_id, r.template) for r in rows], collection.dimension)
    return FaceTemplates([r.face_id for r in rows], keys, vectors)
