"""The vector indexes of one data directory: one per collection, opened lazily, kept in step.

    vectors = VectorStore(settings.home, sessions, TemplateCodec(key), IndexSettings("auto"))
    with sessions.begin() as s:              # the engine's unit of work
        add_faces(s, ...); audit.append(s, ...)
    vectors.refresh("missing-persons")     # after commit: apply it to the index
    vectors.search("missing-persons", probes, max_results=10, min_similarity=0.6)

Every method opens its own short transactions, so the engine calls them outside its own
(SQLite allows one writer, and every transaction here begins IMMEDIATE): after a commit to
apply it, before a search to see every process's writes. Each search catches up first, in
the same transaction that turns hits into faces, so what it returns is the catalog's
state at that moment, whoever wrote it. And hits are checked against the catalog before
they leave: one whose face row no longer exists is dropped, so even a stale index can never
return a deleted or erased face.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog import validate_name
from facegate.store.crypto import TemplateCodec
from facegate.store.faces import StoredFace, faces_by_row_ids
from facegate.store.index_sync import CollectionVectors, IndexSettings, StaleIndex, delete_index_files

T = TypeVar("T")

INDEX_DIR = "indexes"
_CHANGES_PER_TRANSACTION = 5_000  # a long backlog is replayed in steps: writers wait less
_ATTEMPTS = 3  # a collection deleted and re-created under our feet, twice, is a bug: say so


@dataclass(frozen=True, slots=True)
class FaceMatch:
    face: StoredFace
    similarity: float  # cosine similarity of the probe and the stored template


def nearest(
    vectors: CollectionVectors,
    session: Session,
    probes: np.ndarray,
    k: int,
    min_similarity: float = -math.inf,
    exclude: frozenset[int] = frozenset(),
) -> list[list[FaceMatch]]:
    """Best-first matches per probe, every one a face the catalog holds in `session`.

    Over-fetches, and fetches more while a probe is short of `k` hits that pass, so a few
    stale or excluded keys never cost a result.
    """
    index = vectors.index
    total = len(index) if index is not None else 0
    if index is None or total == 0:
        return [[] for _ in probes]
    fetch = min(total, 2 * k + len(exclude) + 8)
    while True:
        keys, sims = index.search(probes, fetch)
        wanted = keys[(keys >= 0) & (sims >= min_similarity)].tolist()
        faces = faces_by_row_ids(session, collection_id=vectors.collection_id, row_ids=wanted)
        results, short = [], False
        for row_keys, row_sims in zip(keys.tolist(), sims.tolist(), strict=True):
            matches = [
                FaceMatch(faces[key], sim)
                for key, sim in zip(row_keys, row_sims, strict=True)
                if sim >= min_similarity and key in faces and key not in exclude
            ][:k]
            results.append(matches)
            exhausted = row_keys[-1] < 0 or row_sims[-1] < min_similarity
            short = short or (len(matches) < k and not exhausted)
        if not short or fetch >= total:
            return results
        fetch = min(total, fetch * 4)


def search_arguments(probes: np.ndarray, max_results: int, exclude_row_ids: Collection[int]) -> tuple[np.ndarray, frozenset[int]]:
    """The probes as a float32 matrix and the excluded keys, or INVALID_ARGUMENT: what every
    index's `search` (embedded or server) checks before it looks at a collection."""
    queries = np.asarray(probes, dtype=np.float32)
    if queries.ndim != 2:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "probes must be a (n, dimension) matrix")
    if max_results < 1:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "max_results must be at least 1")
    return queries, frozenset(int(r) for r in exclude_row_ids)


def dimension_mismatch(collection_id: str, dimension: int, queries: np.ndarray) -> FacegateError:
    return FacegateError(
        ErrorCode.MODEL_MISMATCH,
        f"{collection_id!r} holds {dimension}-d templates, the probes are {queries.shape[1]}-d",
        collection_id=collection_id,
    )


class VectorStore:
    """One `CollectionVectors` per collection for this process, behind one lock."""

    def __init__(
        self,
        data_dir: Path | None,
        sessions: sessionmaker[Session],
        codec: TemplateCodec,
        settings: IndexSettings = IndexSettings(),
    ) -> None:
        self.directory = data_dir / INDEX_DIR if data_dir is not None else None  # None: never saved
        self._sessions = sessions
        self._codec = codec
        self._settings = settings
        self._lock = threading.Lock()
        self._open: dict[str, CollectionVectors] = {}

    def _run(self, collection_id: str, work: Callable[[CollectionVectors, Session, int], T]) -> T:
        """Open the collection's index if needed, catch up, then run `work` in the same
        transaction as the last step of catching up: what `work` sees of the index is what
        the catalog holds. `work` also gets the number of changes applied."""
        validate_name(collection_id, "collection_id")
        for _ in range(_ATTEMPTS):
            with self._lock:
                vectors = self._open.setdefault(
                    collection_id,
                    CollectionVectors(collection_id, self.directory, self._codec, self._settings),
                )
            try:
                vectors.open(self._sessions)
                applied = 0
                while True:
                    with self._sessions.begin() as session:
                        step = vectors.catch_up(session, _CHANGES_PER_TRANSACTION)
                        applied += step
                        if step < _CHANGES_PER_TRANSACTION:
                            result = work(vectors, session, applied)
                            break
            except StaleIndex:
                self._forget(collection_id, vectors)
                continue
            except FacegateError as exc:
                if exc.code is ErrorCode.COLLECTION_NOT_FOUND:
                    self._forget(collection_id, vectors)
                raise
            vectors.maintain(self._sessions)
            return result
        raise FacegateError(
            ErrorCode.INTERNAL,
            f"the index of {collection_id!r} could not be brought in step",
            collection_id=collection_id,
        )

    def _forget(self, collection_id: str, vectors: CollectionVectors) -> None:
        with self._lock:
            if self._open.get(collection_id) is vectors:
                del self._open[collection_id]

    def vectors(self, collection_id: str) -> CollectionVectors:
        """The collection's index, opened and caught up (for checks, benchmarks and tests)."""
        return self._run(collection_id, lambda vectors, _session, _applied: vectors)

    def refresh(self, collection_id: str) -> int:
        """Bring the index up to the catalog; after the engine commits a change, call this.

        Returns the number of changes it applied (besides those an open replayed)."""
        return self._run(collection_id, lambda _vectors, _session, applied: applied)

    def search(
        self,
        collection_id: str,
        probes: np.ndarray,
        *,
        max_results: int,
        min_similarity: float = -math.inf,
        exclude_row_ids: Collection[int] = (),
    ) -> list[list[FaceMatch]]:
        """For each probe template (rows of `probes`), up to `max_results` faces with
        similarity >= `min_similarity`, best first; `exclude_row_ids` never appear (e.g.
        the probe's own face in a search by face id)."""
        queries, exclude = search_arguments(probes, max_results, exclude_row_ids)

        def matches(
            vectors: CollectionVectors, session: Session, _applied: int
        ) -> list[list[FaceMatch]]:
            if queries.shape[1] != vectors.dimension:
                raise dimension_mismatch(collection_id, vectors.dimension, queries)
            return nearest(vectors, session, queries, max_results, min_similarity, exclude)

        return self._run(collection_id, matches)

    def persist(self, collection_id: str | None = None) -> None:
        """Save one collection's index, or every open one that changed since its last save."""
        with self._lock:
            if collection_id is None:
                chosen = [vectors for vectors in self._open.values() if vectors.unsaved]
            else:
                chosen = [self._open[collection_id]] if collection_id in self._open else []
        for vectors in chosen:
            vectors.save()

    def drop(self, collection_id: str) -> None:
        """Forget a deleted collection's index, in memory and on disk."""
        validate_name(collection_id, "collection_id")
        with self._lock:
            self._open.pop(collection_id, None)
        if self.directory is not None:
            delete_index_files(self.directory, collection_id)

    def close(self) -> None:
        """Save what changed, so the next process opens files instead of replaying."""
        self.persist()
