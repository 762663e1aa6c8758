"""The pgvector copy of each template that server mode searches (PostgreSQL only).

In server mode the faces table is the index: `faces.embedding` (type `vector`, created by
the server-mode migration, not part of the ORM so that the embedded catalog's schema is
untouched) holds the template in the clear beside its stored blob, written in the same
transaction as the face, so a face enrolled through one host is searchable through the
next at once and an erased face leaves the index as its row does.

Where a template key is set the column stays NULL: the blob is sealed, and a plaintext
copy beside it would undo the seal. Such an installation searches with each process's
in-memory index, rebuilt from the sealed templates (docs/scaling.md says what that costs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from facegate.store.crypto import TemplateCodec
from facegate.store.db import is_server

_WRITE = text("UPDATE faces SET embedding = CAST(:embedding AS vector) WHERE row_id = :row_id").bindparams(
    bindparam("embedding"), bindparam("row_id")
)


def literal(vector: np.ndarray) -> str:
    """pgvector's text form of a template, exact for float32 ('[0.1,...]', 9 significant digits)."""
    return "[" + ",".join(f"{x:.9g}" for x in np.asarray(vector, dtype=np.float32).tolist()) + "]"


def write(session: Session, codec: TemplateCodec, rows: Sequence[tuple[int, np.ndarray]]) -> None:
    """Set (or, under a template key, clear) the searchable copy of these faces' templates,
    in the caller's transaction; nothing on the embedded backend."""
    if not rows or not is_server(session):
        return
    session.execute(
        _WRITE, [{"row_id": int(r), "embedding": None if codec.encrypted else literal(v)} for r, v in rows]
    )
