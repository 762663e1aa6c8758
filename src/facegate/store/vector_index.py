"""Vector indexes over unit-length templates: one interface, an exact and an HNSW kind.

The catalog is the source of truth; an index is a cache of its templates that answers
"which keys are nearest to this template" fast, and can always be rebuilt from it.

    index = open_index("hnsw", 128)
    index.add(keys, vectors)                   # int64 keys >= 0, (n, d) float32 unit rows
    keys, sims = index.search(queries, k=10)   # (q, k) int64, (q, k) float32 cosine, best first
    index.save(path, applied_seq=42)           # atomic; header carries a sha256
    index, applied_seq = VectorIndex.load(path, 128)   # or HnswIndex.load / ExactIndex.load

Semantics every kind shares:
- Keys are int64 >= 0 (catalog face ids); -1 is reserved as padding. Re-adding a key
  replaces its vector; removing an unknown key is ignored; duplicate keys in one call and
  vectors that are not finite, unit-length rows of the index's dimension are refused.
- `search` returns exactly k columns. Where fewer than k templates exist, the row is padded
  with key -1 and similarity -inf, so callers filter with `keys >= 0` or a threshold.
- `save(path, applied_seq)` records the catalog change-log sequence number the index
  reflects; `load(path, dimension)` returns `(index, applied_seq)`. The file is a header
  (magic, format version, kind, dimension, count, applied_seq, payload length, sha256 of
  header and payload) then the payload. Anything missing, short, garbled, of another kind
  or another dimension raises `IndexCorrupt`: the caller rebuilds from the catalog, which
  is why that is a plain exception and not a refusal shown to users.
- Threads: many searches may run while one writer adds or removes. A readers-writer lock
  lets searches overlap (numpy and hnswlib release the GIL while they compute) and keeps
  a writer's half-done change invisible to readers. It costs a few microseconds a call
  (benchmarks/search_bench.py measures it beside the search itself).

HNSW library: hnswlib, chosen by measurement over usearch; faiss-cpu was not a candidate
because its HNSW index cannot remove vectors, and erasure must work. Same data, same
M=32 and ef_construction=128, one quiet 2-core run of benchmarks/search_bench.py at 200k
templates (`--n 200000 --usearch --ef 128,256,384`): at equal recall@10 (0.997 / 0.999 at
ef_search 256 / 384) hnswlib answers a single query in 0.71 / 1.00 ms p50 against
usearch's 1.54 / 2.15 ms, and builds in 28 s against 52 s; usearch holds 8% less memory
(175 vs 190 MB). Two searching threads double hnswlib's throughput (2114 vs 1012 q/s),
so it releases the GIL. Parameters at 1M: see `HnswIndex`.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

import hnswlib
import numpy as np

from facegate.errors import ErrorCode, FacegateError

MAGIC = b"FGVINDEX"
FORMAT_VERSION = 1
# magic, version, kind, dimension, count, applied_seq, payload length, sha256
_HEADER = struct.Struct("<8sI8sIQqQ32s")
_UNIT_TOLERANCE = 1e-3
PAD_KEY = -1


class IndexCorrupt(Exception):
    """An index file that cannot be trusted: rebuild the index from the catalog."""


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer stops new readers from starving it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _invalid(message: str, **details: object) -> FacegateError:
    return FacegateError(ErrorCode.INVALID_ARGUMENT, message, **details)


def _checked_keys(keys: np.ndarray, *, unique: bool) -> np.ndarray:
    array = np.asarray(keys)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise _invalid("keys must be a 1-d array of integers")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise _invalid("keys must be >= 0 (-1 marks padding in search results)")
    if unique and np.unique(array).size != array.size:
        raise _invalid("the same key appears twice in one call")
    return array


def _checked_vectors(vectors: np.ndarray, dimension: int, what: str) -> np.ndarray:
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise _invalid(f"{what} must have shape (n, {dimension})", shape=list(array.shape))
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise _invalid(f"{what} hold NaN or infinite values")
    norms = np.linalg.norm(array, axis=1)
    if array.size and np.abs(norms - 1.0).max() > _UNIT_TOLERANCE:
        raise _invalid(f"{what} must be unit-length rows (cosine is their inner product)")
    return array


class VectorIndex(ABC):
    """Validation, locking, padding and the file format; kinds fill in the `_` hooks."""

    kind: ClassVar[str]
    _kinds: ClassVar[dict[str, type[VectorIndex]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        VectorIndex._kinds[cls.kind] = cls

    def __init__(self, dimension: int) -> None:
        if dimension < 1:
            raise _invalid("dimension must be positive", dimension=dimension)
        self.dimension = dimension
        self._lock = _ReadWriteLock()

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Insert templates; a key already present gets the new vector."""
        keys = _checked_keys(keys, unique=True)
        vectors = _checked_vectors(vectors, self.dimension, "vectors")
        if len(keys) != len(vectors):
            raise _invalid("keys and vectors differ in length", keys=len(keys), vectors=len(vectors))
        if len(keys):
            with self._lock.writing():
                self._add(keys, vectors)

    def remove(self, keys: np.ndarray) -> None:
        """Forget these keys; keys the index does not hold are ignored."""
        keys = _checked_keys(keys, unique=False)
        if len(keys):
            with self._lock.writing():
                self._remove(np.unique(keys))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest keys per query and their cosine similarities, best first, padded."""
        queries = _checked_vectors(queries, self.dimension, "queries")
        if k < 1:
            raise _invalid("k must be at least 1", k=k)
        keys = np.full((len(queries), k), PAD_KEY, dtype=np.int64)
        sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
        if len(queries):
            with self._lock.reading():
                self._search(queries, keys, sims)
        return keys, sims

    def __len__(self) -> int:
        with self._lock.reading():
            return self._count()

    def keys(self) -> np.ndarray:
        """Every key held, ascending."""
        with self._lock.reading():
            return np.sort(self._keys())

    def save(self, path: Path, applied_seq: int) -> None:
        """Write the index atomically: a temp file beside `path`, fsync, then rename."""
        if applied_seq < 0:
            raise _invalid("applied_seq must be >= 0", applied_seq=applied_seq)
        with self._lock.reading():
            count, payload = self._count(), self._payload(path.parent)
        head = _HEADER.pack(
            MAGIC, FORMAT_VERSION, self.kind.encode(), self.dimension, count, applied_seq, len(payload), b""
        )[:-32]
        digest = hashlib.sha256(head)
        digest.update(payload)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head + digest.digest())
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: Path, dimension: int) -> tuple[Self, int]:
        """`(index, applied_seq)` from a file `save` wrote; `IndexCorrupt` if untrustworthy.

        Called on `VectorIndex` it opens whichever kind the file holds; called on a kind
        it refuses files of another kind.
        """
        try:
            data = memoryview(path.read_bytes())
        except OSError as exc:
            raise IndexCorrupt(f"cannot read index file {path}: {exc}") from exc
        if len(data) < _HEADER.size:
            raise IndexCorrupt(f"{path} is truncated: {len(data)} bytes is shorter than a header")
        magic, version, kind, dim, count, seq, size, sha = _HEADER.unpack(data[: _HEADER.size])
        if magic != MAGIC or version != FORMAT_VERSION:
            raise IndexCorrupt(f"{path} is not a facegate index file of version {FORMAT_VERSION}")
        if len(data) != _HEADER.size + size:
            raise IndexCorrupt(f"{path} holds {len(data) - _HEADER.size} payload bytes, expected {size}")
        digest = hashlib.sha256(data[: _HEADER.size - 32])
        digest.update(data[_HEADER.size :])
        if digest.digest() != sha:
            raise IndexCorrupt(f"{path} fails its checksum")
        kind_name = kind.rstrip(b"\0").decode("ascii", "replace")
        target = VectorIndex._kinds.get(kind_name)
        if target is None or (cls is not VectorIndex and target is not cls):
            raise IndexCorrupt(f"{path} holds a {kind_name!r} index, not {cls.__name__}")
        if dim != dimension:
            raise IndexCorrupt(f"{path} holds {dim}-d templates, expected {dimension}-d")
        try:
            index = target._from_payload(dimension, data[_HEADER.size :], path.parent)
        except (ValueError, RuntimeError, struct.error) as exc:
            raise IndexCorrupt(f"{path} payload does not decode: {exc}") from exc
        if len(index) != count:
            raise IndexCorrupt(f"{path} decodes to {len(index)} templates, header says {count}")
        return index, seq  # type: ignore[return-value]

    @abstractmethod
    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _remove(self, keys: np.ndarray) -> None: ...

    @abstractmethod
    def _search(self, queries: np.ndarray, keys: np.ndarray, sims: np.ndarray) -> None:
        """Fill the pre-padded (q, k) `keys` and `sims` in place, best first."""

    @abstractmethod
    def _count(self) -> int: ...

    @abstractmethod
    def _keys(self) -> np.ndarray: ...

    @abstractmethod
    def _payload(self, scratch: Path) -> bytes:
        """The kind's own bytes; `scratch` is a directory for temporary files, if needed."""

    @classmethod
    @abstractmethod
    def _from_payload(cls, dimension: int, payload: memoryview, scratch: Path) -> Self: ...


class ExactIndex(VectorIndex):
    """Brute-force inner product in numpy: the ground truth, fine up to ~100k templates.

    Rows live in one growing matrix; removing a key moves the last row into its place, so
    the matrix stays dense and a search is a single matrix product.
    """

    kind = "exact"
    _BLOCK = 1 << 24  # similarity scores held at once while searching many queries

    def __init__(self, dimension: int) -> None:
        super().__init__(dimension)
        self._ids = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._rows: dict[int, int] = {}

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        rows = np.array([self._rows.get(key, -1) for key in keys.tolist()], dtype=np.int64)
        known = rows >= 0
        self._vectors[rows[known]] = vectors[known]
        fresh, n = keys[~known], len(self._rows)
        if n + len(fresh) > len(self._ids):
            capacity = max(n + len(fresh), 2 * len(self._ids), 1024)
            self._ids = np.resize(self._ids, capacity)
            grown = np.empty((capacity, self.dimension), dtype=np.float32)
            grown[:n] = self._vectors[:n]
            self._vectors = grown
        self._ids[n : n + len(fresh)] = fresh
        self._vectors[n : n + len(fresh)] = vectors[~known]
        self._rows.update(zip(fresh.tolist(), range(n, n + len(fresh))))

    def _remove(self, keys: np.ndarray) -> None:
        for key in keys.tolist():
            row = self._rows.pop(key, None)
            if row is None:
                continue
            last = len(self._rows)
            if row != last:
                moved = int(self._ids[last])
                self._ids[row], self._vectors[row] = moved, self._vectors[last]
                self._rows[moved] = row
            self._vectors[last] = 0.0  # no copy of an erased template stays in memory

    def _search(self, queries: np.ndarray, keys: np.ndarray, sims: np.ndarray) -> None:
        n = len(self._rows)
        if n == 0:
            return
        take = min(keys.shape[1], n)
        matrix, ids = self._vectors[:n], self._ids[:n]
        step = max(1, self._BLOCK // n)
        for start in range(0, len(queries), step):
            scores = queries[start : start + step] @ matrix.T
            if take < n:
                top = np.argpartition(scores, n - take, axis=1)[:, n - take :]
            else:
                top = np.broadcast_to(np.arange(n), scores.shape)
            best = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-best, axis=1, kind="stable")
            rows = np.take_along_axis(top, order, axis=1)
            keys[start : start + step, :take] = ids[rows]
            sims[start : start + step, :take] = np.take_along_axis(best, order, axis=1)

    def _count(self) -> int:
        return len(self._rows)

    def _keys(self) -> np.ndarray:
        return self._ids[: len(self._rows)].copy()

    def _payload(self, scratch: Path) -> bytes:
        n = len(self._rows)
        return self._ids[:n].astype("<i8").tobytes() + self._vectors[:n].astype("<f4").tobytes()

    @classmethod
    def _from_payload(cls, dimension: int, payload: memoryview, scratch: Path) -> Self:
        n, rest = divmod(len(payload), 8 + 4 * dimension)
        if rest:
            raise ValueError("payload length is not a whole number of rows")
        keys = np.frombuffer(payload[: 8 * n], dtype="<i8").astype(np.int64)
        vectors = np.frombuffer(payload[8 * n :], dtype="<f4").reshape(n, dimension)
        if n and (keys.min() < 0 or np.unique(keys).size != n):
            raise ValueError("payload keys are negative or repeated")
        index = cls(dimension)
        if n:
            index._add(keys, vectors.astype(np.float32))
        return index


class HnswIndex(VectorIndex):
    """Approximate search on an hnswlib HNSW graph, in float32 so scores stay exact.

    Removal marks a node deleted (searches skip it, the graph keeps it as a stepping stone)
    after overwriting its vector with random noise, so an erased template's bytes leave
    memory and the saved file at once. Re-adding a key revives and updates its node.
    Deleted nodes keep their slot until the index is rebuilt from the catalog.

    Parameters, from 1M templates (benchmarks/search_bench.py, quiet 2 cores): dlib
    templates are hard for graph search, all in a narrow cone (impostor cosine ~0.84, best
    impostor among a million ~0.93), so the 10th neighbour is a near-tie among thousands.
    M=16, ef_construction=128 reached recall@10 0.973 at ef_search 512 and needed ~1024
    for 0.99. M=32, ef_construction=128: 0.981 / 0.991 / 0.994 at ef_search 256 / 384 /
    512, p50 1.64 ms at 384 (19.9x exact numpy). M=32, ef_construction=200, two builds:
    0.985-0.986 / 0.9898-0.9905 / 0.993 at ef_search 256 / 320 / 384. ef_search 384 is
    the default because 320 sits on the 0.99 line from build to build (builds are
    multi-threaded, so not bit-identical): p50 1.66 ms, p99 1.92 ms single-thread, 20.2x
    exact numpy (33.4 ms), 865 MB resident, a 396 s build, a 752 MB file. ef_search 320
    would give 24x at recall ~0.990.
    """

    kind = "hnsw"
    CONNECTIVITY = 32  # M: graph edges per node (2M on the base layer)
    EXPANSION_ADD = 200  # ef_construction: candidates kept while linking a new node
    EXPANSION_SEARCH = 384  # ef_search: candidates kept while searching; recall vs speed
    _DELETED = struct.Struct("<Q")  # payload: count of deleted keys, the keys, hnswlib's file

    def __init__(self, dimension: int, *, capacity: int = 1024, graph: hnswlib.Index | None = None) -> None:
        """An empty index with room for `capacity` nodes (it grows), or one around a
        `graph` read from a file. A rebuild from the catalog passes its size as capacity."""
        super().__init__(dimension)
        if graph is None:
            graph = hnswlib.Index(space="ip", dim=dimension)
            graph.init_index(capacity, M=self.CONNECTIVITY, ef_construction=self.EXPANSION_ADD)
        graph.set_ef(self.EXPANSION_SEARCH)
        self._graph = graph
        self._deleted: set[int] = set()  # keys whose node is marked deleted

    @property
    def expansion_search(self) -> int:
        return int(self._graph.ef)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        if value < 1:
            raise _invalid("expansion_search must be positive", expansion_search=value)
        with self._lock.writing():
            self._graph.set_ef(value)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        needed = self._graph.element_count + len(keys)  # at most; re-added keys reuse nodes
        if needed > self._graph.max_elements:
            self._graph.resize_index(max(needed, self._graph.max_elements * 5 // 4))
        self._graph.add_items(vectors, keys)  # new key: new node; known key: revive + update
        self._deleted.difference_update(keys.tolist())

    def _remove(self, keys: np.ndarray) -> None:
        live = [key for key in keys.tolist() if key not in self._deleted and self._holds(key)]
        if not live:
            return
        noise = np.random.default_rng().standard_normal((len(live), self.dimension), np.float32)
        self._graph.add_items(noise / np.linalg.norm(noise, axis=1, keepdims=True), live)
        for key in live:
            self._graph.mark_deleted(key)
        self._deleted.update(live)

    def _holds(self, key: int) -> bool:
        try:
            self._graph.get_items([key])
        except RuntimeError:  # hnswlib: "Label not found"
            return False
        return True

    def _search(self, queries: np.ndarray, keys: np.ndarray, sims: np.ndarray) -> None:
        take = min(keys.shape[1], self._count())
        if take == 0:
            return
        try:
            found, distances = self._graph.knn_query(queries, take, num_threads=1)
        except RuntimeError:  # a query reached fewer than `take` live nodes: most are deleted
            for row, query in enumerate(queries):
                self._search_one(query, keys[row], sims[row], take)
            return
        keys[:, :take] = found
        sims[:, :take] = 1.0 - distances  # hnswlib's "ip" distance is 1 - dot

    def _search_one(self, query: np.ndarray, keys: np.ndarray, sims: np.ndarray, take: int) -> None:
        for count in range(take, 0, -1):
            try:
                found, distances = self._graph.knn_query(query[None], count, num_threads=1)
            except RuntimeError:
                continue
            keys[:count], sims[:count] = found[0], 1.0 - distances[0]
            return

    def _count(self) -> int:
        return self._graph.element_count - len(self._deleted)

    def _keys(self) -> np.ndarray:
        held = np.asarray(self._graph.get_ids_list(), dtype=np.int64)
        return np.setdiff1d(held, np.fromiter(self._deleted, np.int64, len(self._deleted)))

    def _payload(self, scratch: Path) -> bytes:
        deleted = np.fromiter(self._deleted, np.int64, len(self._deleted))
        with tempfile.TemporaryDirectory(dir=scratch, prefix=".hnsw.") as tmp:
            self._graph.save_index(str(Path(tmp) / "graph"))
            graph = (Path(tmp) / "graph").read_bytes()
        return self._DELETED.pack(len(deleted)) + deleted.astype("<i8").tobytes() + graph

    @classmethod
    def _from_payload(cls, dimension: int, payload: memoryview, scratch: Path) -> Self:
        (count,) = cls._DELETED.unpack_from(payload)
        start = cls._DELETED.size + 8 * count
        deleted = np.frombuffer(payload[cls._DELETED.size : start], dtype="<i8")
        graph = hnswlib.Index(space="ip", dim=dimension)
        with tempfile.TemporaryDirectory(dir=scratch, prefix=".hnsw.") as tmp:
            (Path(tmp) / "graph").write_bytes(payload[start:])
            graph.load_index(str(Path(tmp) / "graph"))
        if graph.dim != dimension or graph.space != "ip":
            raise ValueError("payload is not an inner-product hnswlib index of this dimension")
        index = cls(dimension, graph=graph)
        index._deleted = set(deleted.tolist())
        return index


def open_index(kind: str, dimension: int) -> VectorIndex:
    """A new, empty index of a named kind; unknown kinds are refused, never guessed."""
    target = VectorIndex._kinds.get(kind)
    if target is None:
        raise _invalid(f"unknown index kind {kind!r}", kind=kind, known=sorted(VectorIndex._kinds))
    return target(dimension)
