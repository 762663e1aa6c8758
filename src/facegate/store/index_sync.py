"""Keeping a collection's vector index in step with the catalog, in any process, after any crash.

The catalog is the truth; an index is a cache of it. Every add or remove of a face writes a
`face_changes` row in the same transaction, and an index file remembers the last change it
reflects (`applied_seq`). Opening a collection therefore means: load its file, replay the
changes after `applied_seq`, and check that it holds as many templates as the catalog holds
faces; a missing, corrupt, foreign or inconsistent file is rebuilt from the faces table.
Replay works because both index operations are idempotent (re-adding a key replaces it,
removing an absent key is a no-op) and because SQLite's single writer (BEGIN IMMEDIATE)
hands out change numbers and face row ids in commit order.

A crash at any point converges: before commit, nothing happened; after commit but before
the in-memory index or the file learnt of it, the next open or refresh replays it; during a
save, the old file stays whole (temp file + fsync + rename) and the temp file is swept up by
the next save. Saving is only about the speed of the next open, never about correctness.

Index files hold templates in the clear. So when a template key is configured they are
never written (and any left from before the key are deleted): each process rebuilds its
indexes from the encrypted catalog when it opens a collection. Sealing the files with the
key needs a bytes-level save/load from `vector_index.py`; until then, that is the price of keeping
biometric data encrypted at rest.
"""

from __future__ import annotations

import fcntl
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from facegate.store.catalog import collection_row
from facegate.store.crypto import TemplateCodec
from facegate.store.faces import chunks
from facegate.store.vector_index import IndexCorrupt, VectorIndex, open_index
from facegate.store.tables import FaceChangeRow, FaceRow
from facegate.store.templates import decode_rows

log = logging.getLogger(__name__)

KINDS = ("exact", "hnsw")
_BATCH = 20_000  # rows read per transaction while rebuilding or replaying


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """Which kind of index a collection gets, and how often it is saved.

    "auto" uses the exact index below `hnsw_threshold` faces (numpy answers a 50k search in
    a few ms with perfect recall) and HNSW from there on; an exact index that grows past
    the threshold is rebuilt as HNSW once, and an HNSW index is kept if the collection
    shrinks. "exact" and "hnsw" force a kind. `autosave_every` is how many applied changes
    make the index worth saving again: saving only speeds up the next open.
    """

    kind: Literal["auto", "exact", "hnsw"] = "auto"
    hnsw_threshold: int = 50_000
    autosave_every: int = 10_000

    def kind_for(self, faces: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "hnsw" if faces >= self.hnsw_threshold else "exact"


class StaleIndex(Exception):
    """The in-memory index belongs to an earlier life of the collection (deleted and
    created again) or of the catalog (restored from a backup): open it afresh."""


def _count(session: Session, collection_id: str) -> int:
    return int(session.scalar(select(func.count()).where(FaceRow.collection_id == collection_id)) or 0)


def _head(session: Session, collection_id: str) -> int:
    query = select(func.coalesce(func.max(FaceChangeRow.seq), 0))
    return int(session.scalar(query.where(FaceChangeRow.collection_id == collection_id)) or 0)


@contextmanager
def _file_lock(directory: Path) -> Iterator[None]:
    """One writer of index files at a time across processes sharing the data directory."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def delete_index_files(directory: Path, collection_id: str) -> None:
    with _file_lock(directory):
        for kind in KINDS:
            (directory / f"{collection_id}.{kind}.idx").unlink(missing_ok=True)


class CollectionVectors:
    """The in-memory index of one collection and the change it reflects.

    `catch_up` runs in the caller's transaction; `open`, `rebuild` and `maintain` open
    their own short ones, so call them outside any transaction.
    """

    def __init__(
        self, collection_id: str, directory: Path | None, codec: TemplateCodec, settings: IndexSettings
    ):
        self.collection_id = collection_id
        self.directory = directory
        self.index: VectorIndex | None = None
        self.applied_seq = 0
        self.unsaved = 0
        self.origin: Literal["file", "rebuilt"] | None = None
        self.dimension = 0
        self._codec = codec
        self._settings = settings
        self._generation: datetime | None = None
        self._lock = threading.RLock()

    def path(self, kind: str) -> Path:
        assert self.directory is not None, "an index that is never saved has no path"
        return self.directory / f"{self.collection_id}.{kind}.idx"

    def open(self, sessions: sessionmaker[Session]) -> None:
        """Load the saved index and catch up, or rebuild it from the catalog."""
        with self._lock:
            if self.index is not None:
                return
            with sessions.begin() as session:
                row = collection_row(session, self.collection_id)
                self.dimension, self._generation = row.dimension, row.created_at
                kind = self._settings.kind_for(_count(session, self.collection_id))
            if self._codec.encrypted and self.directory is not None:
                delete_index_files(self.directory, self.collection_id)
            keep_hnsw = self._settings.kind == "auto" and kind == "exact"
            candidates = (kind, "hnsw") if keep_hnsw else (kind,)
            for candidate in () if self._codec.encrypted or self.directory is None else candidates:
                if self._load(sessions, candidate):
                    return
            self.rebuild(sessions, kind)

    def _load(self, sessions: sessionmaker[Session], kind: str) -> bool:
        path = self.path(kind)
        if not path.exists():
            return False
        try:
            index, seq = VectorIndex.load(path, self.dimension)
        except IndexCorrupt as exc:
            log.warning("index of %s unusable, rebuilding from the catalog: %s", self.collection_id, exc)
            return False
        self.index, self.applied_seq, self.unsaved = index, seq, 0
        try:
            with sessions.begin() as session:
                self.catch_up(session)
                faces = _count(session, self.collection_id)
        except StaleIndex:
            faces = -1
        except BaseException:
            self.index = None  # half-checked: the next open starts again
            raise
        if index.kind == kind and len(index) == faces:
            self.origin = "file"
            return True
        log.warning("index of %s disagrees with the catalog, rebuilding", self.collection_id)
        self.index = None
        return False

    def rebuild(self, sessions: sessionmaker[Session], kind: str) -> None:
        """Fill a new index from the faces table in short transactions, then replay what
        was committed meanwhile; saved at once so the next open is fast."""
        with self._lock:
            index = open_index(kind, self.dimension)
            with sessions.begin() as session:
                seq = _head(session, self.collection_id)
                top = session.scalar(
                    select(func.coalesce(func.max(FaceRow.row_id), 0)).where(
                        FaceRow.collection_id == self.collection_id
                    )
                )
            after = 0
            while True:  # rows committed after `seq` have ids above `top`: the replay adds them
                with sessions.begin() as session:
                    rows = session.execute(
                        select(FaceRow.row_id, FaceRow.template)
                        .where(FaceRow.collection_id == self.collection_id)
                        .where(FaceRow.row_id > after, FaceRow.row_id <= top)
                        .order_by(FaceRow.row_id)
                        .limit(_BATCH)
                    ).all()
                if not rows:
                    break
                keys, vectors = decode_rows(self._codec, rows, self.dimension)
                index.add(keys, vectors)
                after = int(keys[-1])
            self.index, self.applied_seq, self.origin = index, seq, "rebuilt"
            with sessions.begin() as session:
                self.catch_up(session)
            self.save()

    def catch_up(self, session: Session, max_changes: int | None = None) -> int:
        """Apply the changes committed since `applied_seq` (at most `max_changes` of them,
        so that a long backlog need not hold one transaction); the number applied."""
        with self._lock:
            if self.index is None:
                raise StaleIndex(self.collection_id)
            row = collection_row(session, self.collection_id)
            head = _head(session, self.collection_id)
            if row.created_at != self._generation or head < self.applied_seq:
                raise StaleIndex(self.collection_id)
            applied, limit = 0, math.inf if max_changes is None else max_changes
            while self.applied_seq < head and applied < limit:
                changes = session.execute(
                    select(FaceChangeRow.seq, FaceChangeRow.face_row_id, FaceChangeRow.op)
                    .where(FaceChangeRow.collection_id == self.collection_id)
                    .where(FaceChangeRow.seq > self.applied_seq, FaceChangeRow.seq <= head)
                    .order_by(FaceChangeRow.seq)
                    .limit(int(min(_BATCH, limit - applied)))
                ).all()
                # A row is added once and removed at most once, later: the net effect of a
                # batch is "remove the removed, add the added that were not removed since".
                removed = {c.face_row_id for c in changes if c.op == "remove"}
                self.index.remove(np.fromiter(removed, dtype=np.int64, count=len(removed)))
                added = [
                    c.face_row_id for c in changes if c.op == "add" and c.face_row_id not in removed
                ]
                self._add_rows(session, self.index, added)
                self.applied_seq = changes[-1].seq
                applied += len(changes)
            self.unsaved += applied
            return applied

    def _add_rows(self, session: Session, index: VectorIndex, row_ids: Sequence[int]) -> None:
        """Rows deleted since their 'add' are simply not found here: nothing to add."""
        for chunk in chunks(row_ids):
            rows = session.execute(
                select(FaceRow.row_id, FaceRow.template).where(
                    FaceRow.collection_id == self.collection_id, FaceRow.row_id.in_(chunk)
                )
            ).all()
            if rows:
                index.add(*decode_rows(self._codec, rows, self.dimension))

    def maintain(self, sessions: sessionmaker[Session]) -> None:
        """Grow an exact index into HNSW past the threshold; save after enough changes."""
        with self._lock:
            index = self.index
            if index is None:
                return
            auto = self._settings.kind == "auto"
            if auto and index.kind == "exact" and len(index) >= self._settings.hnsw_threshold:
                self.rebuild(sessions, "hnsw")
            elif self.unsaved >= self._settings.autosave_every:
                self.save()

    def save(self) -> None:
        """Write the index file under the directory lock; drop the file of the other kind."""
        with self._lock:
            if self.index is None or self._codec.encrypted or self.directory is None:
                self.unsaved = 0
                return
            with _file_lock(self.directory):
                # Every writer holds this lock, so any temp file seen now is a killed writer's.
                for leftover in self.directory.glob(".*.tmp"):
                    leftover.unlink(missing_ok=True)
                self.index.save(self.path(self.index.kind), self.applied_seq)
                for kind in KINDS:
                    if kind != self.index.kind:
                        self.path(kind).unlink(missing_ok=True)
            self.unsaved = 0
