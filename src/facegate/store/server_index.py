"""Search in server mode: pgvector over the faces table, so no host keeps an index of its own.

Each face's template is in `faces.embedding` (store/embeddings.py), written with the face;
an HNSW index per template dimension covers every collection
(`ix_faces_halfvec_hnsw_<d>`, of half-precision copies, partial on
`vector_dims(embedding) = d`). A search runs in
one transaction that turns hits into faces, so what it returns is the database's state at
that moment, whoever wrote it, and an erased face can never come back.

Which scan answers: a collection with fewer than `exact_below` faces is scanned exactly
(its rows through the collection index, every distance computed: perfect recall, and
faster than walking a graph shared with bigger collections); a bigger one walks the HNSW
graph with pgvector's iterative scan (`hnsw.iterative_scan = relaxed_order`), which keeps
walking until enough rows of *this* collection pass, so a filter by collection does not
starve the result. The graph only picks candidates: every row found is ranked here by
its full-precision distance (the graph's half precision and its relaxed order may both
misplace near-ties), over-fetched like the embedded index. Parameters are in docs/scaling.md,
chosen by benchmarks/pg_bench.py.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog import collection_row, validate_name
from facegate.store.collection_indexes import FaceMatch, dimension_mismatch, search_arguments
from facegate.store.embeddings import literal
from facegate.store.faces import faces_by_row_ids


@dataclass(frozen=True, slots=True)
class ServerIndexSettings:
    """`kind` as the embedded index's: "auto" picks by size, "exact"/"hnsw" force a scan."""

    kind: str = "auto"
    exact_below: int = 20_000  # exact scan below (crossover measured at 20k-50k in a 1M table)
    # The HNSW candidate list, by the number of templates the graph holds (one graph for
    # every collection): benchmarks/pg_bench.py measured recall@10 0.995 at ef_search 100 in
    # 100,000 templates and, with the half-precision graph, 0.9926 at 300 in 1,000,000
    # (0.9900 at 250, 0.9847 at 200). Raised to the fetch size when that is larger.
    ef_search: int = 100
    ef_search_large: int = 300
    large_from: int = 150_000  # templates in the table from which ef_search_large applies
    m: int = 32  # at 1M, m=16 reached only 0.956 at ef_search 400
    ef_construction: int = 128

    def ef_for(self, templates: int) -> int:
        return self.ef_search_large if templates >= self.large_from else self.ef_search


def index_name(dimension: int) -> str:
    """The HNSW index of `dimension`-d templates (one per dimension, partial on it)."""
    return f"ix_faces_halfvec_hnsw_{int(dimension)}"


def index_ddl(dimension: int, settings: ServerIndexSettings = ServerIndexSettings()) -> str:
    """The HNSW index of `dimension`-d templates (created by the server-mode migrations for
    the shipped model's 128, and at first use for any other dimension).

    The graph holds half-precision copies (`halfvec`): each step of a graph walk is a page
    read, and halving the vector bytes made the index a quarter smaller (766 bytes a
    template at m=32 against 1,028) and the walk 8-15% faster at 1M for the same candidates
    and the same recall (docs/scaling.md). Half precision only picks the candidates: the
    search ranks them by the full-precision `embedding` (`search_query`)."""
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(dimension)} ON faces USING hnsw "
        f"((embedding::halfvec({int(dimension)})) halfvec_cosine_ops) "
        f"WITH (m = {int(settings.m)}, ef_construction = {int(settings.ef_construction)}) "
        f"WHERE vector_dims(embedding) = {int(dimension)}"
    )


def replace_full_precision_indexes(conn: Connection) -> list[int]:
    """Drop the full-precision HNSW indexes of releases before the halfvec graph (migration
    0013) and build the halfvec one of each dimension they covered; those dimensions.

    Only the names those releases gave (`ix_faces_embedding_hnsw_<d>`) are theirs: an index a
    database administrator made under a similar name is left as it is."""
    found = conn.execute(text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'faces' "
        "AND indexname ~ '^ix_faces_embedding_hnsw_[0-9]+$'"
    )).scalars().all()
    dimensions = sorted({int(name.rsplit("_", 1)[1]) for name in found} | {SHIPPED_DIMENSION})
    for name in found:
        conn.execute(text(f'DROP INDEX "{name}"'))
    for dimension in dimensions:
        conn.execute(text(index_ddl(dimension)))
    return dimensions


SHIPPED_DIMENSION = 128  # the templates of the shipped model (dlib ResNet)


PGVECTOR_MIN = (0, 8)  # hnsw.iterative_scan: a filtered HNSW search that still fills k


def _version(found: str) -> tuple[int, ...]:
    return tuple(int(part) for part in found.split(".") if part.isdigit())


def _extension_missing(conn: Connection, why: str, then: str = "") -> FacegateError:
    database, role = conn.execute(text("SELECT current_database(), current_user")).one()
    return FacegateError(
        ErrorCode.DATABASE_EXTENSION_MISSING,
        f"{why}: a database administrator must{then} run `CREATE EXTENSION vector;` in database {database} as "
        f"a superuser (pgvector >= {'.'.join(map(str, PGVECTOR_MIN))} installed on the server), then run "
        "`facegate db migrate` again; nothing was written",
        database=database, role=role, sql="CREATE EXTENSION vector;",
    )


def ensure_vector_extension(conn: Connection) -> str:
    """The `vector` extension of this database, created where the role may; its version.

    pgvector is not a trusted extension: only a superuser may create it. Where it is missing
    and this role may not, or the server lacks pgvector >= 0.8, the refusal
    (DATABASE_EXTENSION_MISSING) says exactly what a database administrator must run."""
    installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    if installed is None:
        available = conn.execute(
            text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        ).scalar()
        if available is None or _version(available) < PGVECTOR_MIN:
            found = "no pgvector" if available is None else f"pgvector {available}"
            raise _extension_missing(conn, f"the PostgreSQL server has {found}", " install a newer pgvector, then")
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except DBAPIError as exc:
            role = conn.execute(text("SELECT current_user")).scalar_one()
            reason = getattr(getattr(exc.orig, "diag", None), "message_primary", None) or "refused"
            raise _extension_missing(conn, f"role {role} may not create the pgvector extension ({reason})") from None
        installed = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar_one()
    if _version(installed) < PGVECTOR_MIN:
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        raise FacegateError(
            ErrorCode.DATABASE_EXTENSION_MISSING,
            f"database {database} has pgvector {installed}, facegate needs >= {'.'.join(map(str, PGVECTOR_MIN))}: "
            "a database administrator must install a newer pgvector on the server and run "
            "`ALTER EXTENSION vector UPDATE;` in that database, then run `facegate db migrate` again; "
            "nothing was written",
            database=database, sql="ALTER EXTENSION vector UPDATE;",
        )
    return installed


def install(conn: Connection) -> None:
    """The server-mode schema beyond the ORM's: the `vector` extension, `faces.embedding`
    and the HNSW index of 128-d templates (migration revision 0011; idempotent).

    Where the extension is missing and this role may not create it, the refusal says
    exactly what a database administrator must run, and nothing is written: migrations run
    in one transaction."""
    ensure_vector_extension(conn)
    conn.execute(text("ALTER TABLE faces ADD COLUMN IF NOT EXISTS embedding vector"))
    conn.execute(text(index_ddl(SHIPPED_DIMENSION)))


def _table_size(session: Session) -> int:
    """Templates in the faces table as the planner's statistics have it (no scan; 0 before
    the table was first analysed, which autovacuum does as it grows)."""
    estimate = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'faces'::regclass")).scalar_one()
    return max(0, int(estimate))


def search_query(dimension: int, exact: bool) -> str:
    """Rows by cosine distance of the full-precision templates. The HNSW query orders by
    the indexed half-precision expression, so the graph picks the rows, and returns each
    row's full-precision distance, by which `_nearest` ranks them; the exact one orders by
    the bare column, which no index covers, so the planner scans the collection's rows."""
    distance = "embedding <=> CAST(:probe AS vector)"
    order = distance if exact else f"embedding::halfvec({dimension}) <=> CAST(:probe AS halfvec({dimension}))"
    return (
        f"SELECT row_id, {distance} AS distance FROM faces "
        f"WHERE collection_id = :collection_id AND vector_dims(embedding) = {dimension} "
        f"ORDER BY {order} LIMIT :fetch"
    )


class ServerVectors:
    """The engine's `vectors` in server mode: same verbs as the embedded VectorStore."""

    directory = None  # no index files: the database is the index

    def __init__(
        self, sessions: sessionmaker[Session], reads: sessionmaker[Session],
        settings: ServerIndexSettings = ServerIndexSettings(),
    ) -> None:
        """`reads`: READ ONLY sessions without facegate's transaction lock (store/db.py), so
        searches through many hosts do not queue behind each other; `sessions` for DDL."""
        self._sessions = sessions
        self._reads = reads
        self._settings = settings
        self._indexed_dimensions: set[int] = set()

    def refresh(self, collection_id: str) -> int:
        """Nothing to catch up: a committed face is already in the index."""
        validate_name(collection_id, "collection_id")
        return 0

    def persist(self, collection_id: str | None = None) -> None:
        """Nothing to save."""

    def drop(self, collection_id: str) -> None:
        """A deleted collection's rows (and so its index entries) went with it."""
        validate_name(collection_id, "collection_id")

    def close(self) -> None:
        """Nothing held but the engine's connection pool."""

    def _small(self, session: Session, collection_id: str) -> bool:
        if self._settings.kind != "auto":
            return self._settings.kind == "exact"
        # Counting stops at the threshold: an index-only scan of at most `exact_below` rows.
        counted = session.execute(
            text("SELECT count(*) FROM (SELECT 1 FROM faces WHERE collection_id = :c LIMIT :n) AS s"),
            {"c": collection_id, "n": self._settings.exact_below},
        ).scalar_one()
        return int(counted) < self._settings.exact_below

    def _ensure_index(self, dimension: int) -> None:
        """The HNSW index of an unusual dimension, made once (under the transaction lock)."""
        if dimension not in self._indexed_dimensions:
            with self._sessions.begin() as session:
                session.execute(text(index_ddl(dimension, self._settings)))
            self._indexed_dimensions.add(dimension)

    def search(
        self,
        collection_id: str,
        probes: np.ndarray,
        *,
        max_results: int,
        min_similarity: float = -math.inf,
        exclude_row_ids: Collection[int] = (),
    ) -> list[list[FaceMatch]]:
        """As VectorStore.search: per probe, up to `max_results` faces with cosine similarity
        >= `min_similarity`, best first, never one of `exclude_row_ids`."""
        validate_name(collection_id, "collection_id")
        queries, exclude = search_arguments(probes, max_results, exclude_row_ids)
        with self._reads.begin() as session:
            dimension = collection_row(session, collection_id).dimension
            if queries.shape[1] != dimension:
                raise dimension_mismatch(collection_id, dimension, queries)
            exact = self._small(session, collection_id)
            ef = 0
            if not exact:
                if dimension != SHIPPED_DIMENSION:
                    self._ensure_index(dimension)
                session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
                ef = self._settings.ef_for(_table_size(session))
            return [
                self._nearest(session, collection_id, probe, dimension, ef, max_results, min_similarity, exclude)
                for probe in queries
            ]

    def _nearest(
        self, session: Session, collection_id: str, probe: np.ndarray, dimension: int, ef: int,
        k: int, min_similarity: float, exclude: frozenset[int],
    ) -> list[FaceMatch]:
        """One probe's matches (`ef` 0: an exact scan); fetches more while short of `k` that
        pass and rows remain."""
        fetch = 2 * k + len(exclude) + 8
        exact = ef == 0
        sql = text(search_query(dimension, exact))
        while True:
            if not exact:
                candidates = max(ef, min(fetch, 1000))  # pgvector caps ef_search at 1000
                session.execute(text(f"SET LOCAL hnsw.ef_search = {int(candidates)}"))
            rows = session.execute(
                sql, {"collection_id": collection_id, "probe": literal(probe), "fetch": fetch}
            ).all()
            hits = sorted(((int(r.row_id), 1.0 - float(r.distance)) for r in rows), key=lambda hit: -hit[1])
            wanted = [(key, sim) for key, sim in hits if sim >= min_similarity and key not in exclude]
            faces = faces_by_row_ids(session, collection_id=collection_id, row_ids=[key for key, _ in wanted])
            matches = [FaceMatch(faces[key], sim) for key, sim in wanted if key in faces][:k]
            exhausted = len(rows) < fetch or (hits and hits[-1][1] < min_similarity)
            if len(matches) >= k or exhausted:
                return matches
            fetch *= 4
