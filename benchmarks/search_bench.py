"""Search speed, recall and memory of the vector indexes at a million templates.

    .venv/bin/python benchmarks/search_bench.py             # 1,000,000 templates, ~8 min
    .venv/bin/python benchmarks/search_bench.py --n 100000  # quicker look
    .venv/bin/python benchmarks/search_bench.py --n 200000 --usearch   # library comparison

Gallery: the real LFW templates (`benchmarks/out/lfw_raw.npz`, one photo per subject with
two or more held out as a query) plus synthetic identities up to `--n`, drawn as
`benchmarks/synth_templates.py` describes: identity centres from a de-noised 8-component
tied Gaussian mixture fitted to LFW subject means, 1-4 templates per identity with the
within-person covariance and heavy-tailed radial law measured on LFW, re-normalised. A
profile table compares real and synthetic similarity statistics.

Queries: the held-out real LFW photos, and unseen extra samples of 1,000 synthetic gallery
identities (mated queries). Ground truth is `ExactIndex` over the same gallery. Each
engine runs in its own subprocess, one after another, so its resident memory (RssAnon
growth while building; the gallery is read through a memory map) is its own and the runs
do not compete for the 2 cores. Latency is per single query, k=10, one thread; building
uses all cores. Targets: recall@10 >= 0.99, p50 < 2 ms, >= 20x faster than exact numpy,
< 1.5 GB resident for 1M. `--usearch` adds raw usearch with the same M and ef_construction
(its 1M build is too slow for the default run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from synth_templates import fit, lfw_templates, profile
from threadpoolctl import threadpool_limits

from facegate.store.vector_index import ExactIndex, HnswIndex

K = 10
NAMES = {"exact": "numpy exact", "hnsw": "facegate HnswIndex (hnswlib)", "usearch": "usearch (raw)"}
CHUNK = 100_000
LFW_RAW = Path(__file__).resolve().parent / "out" / "lfw_raw.npz"


def rss_anon() -> int:
    """Anonymous resident bytes of this process (file-backed pages of the memory map excluded)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def timed_single(search, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, seconds) of one query at a time, after a short warm-up."""
    for query in queries[:20]:
        search(query[None])
    keys, seconds = np.empty((len(queries), K), np.int64), np.empty(len(queries))
    for i, query in enumerate(queries):
        start = time.perf_counter()
        keys[i] = search(query[None])
        seconds[i] = time.perf_counter() - start
    return keys, seconds


def build(add, gallery: np.ndarray) -> float:
    start = time.perf_counter()
    for first in range(0, len(gallery), CHUNK):
        rows = np.array(gallery[first : first + CHUNK])
        add(np.arange(first, first + len(rows)), rows)
    return time.perf_counter() - start


def worker(engine: str, work: Path, efs: list[int], exact_queries: int) -> None:
    """Build one engine over the gallery, measure it and write its keys and numbers."""
    gallery = np.load(work / "gallery.npy", mmap_mode="r")
    queries = np.load(work / "queries.npy")
    before = rss_anon()
    result: dict[str, object] = {"engine": engine}
    if engine == "exact":
        index = ExactIndex(gallery.shape[1])
        result["build_s"] = build(index.add, gallery)
        result["rss_bytes"] = rss_anon() - before
        np.save(work / "keys_exact.npy", index.search(queries, K)[0])  # ground truth, all cores
        with threadpool_limits(1):
            _, seconds = timed_single(lambda q: index.search(q, K)[0], queries[:exact_queries])
        result["runs"] = [{"ef": 0, "seconds": seconds.tolist()}]
    elif engine == "hnsw":
        extra = sum(len(np.load(path, mmap_mode="r")) for path in work.glob("extra_*.npy"))
        index = HnswIndex(gallery.shape[1], capacity=len(gallery) + extra)  # a rebuild knows its size
        result["build_s"] = build(index.add, gallery)
        result["rss_bytes"] = rss_anon() - before
        result["runs"] = []
        for ef in efs:
            index.expansion_search = ef
            keys, seconds = timed_single(lambda q: index.search(q, K)[0], queries)
            np.save(work / f"keys_hnsw_{ef}.npy", keys)
            result["runs"].append({"ef": ef, "seconds": seconds.tolist()})
        index.expansion_search = HnswIndex.EXPANSION_SEARCH
        result.update(insert_rates(index, work, len(gallery)))
        result.update(lock_and_threads(index, queries))
        result.update(save_and_load(index, work))
    else:
        from usearch.index import Index

        graph = Index(
            ndim=gallery.shape[1],
            metric="ip",
            dtype="f32",
            connectivity=HnswIndex.CONNECTIVITY,
            expansion_add=HnswIndex.EXPANSION_ADD,
        )
        result["build_s"] = build(lambda k, v: graph.add(k.astype(np.uint64), v, threads=0), gallery)
        result["rss_bytes"] = rss_anon() - before
        result["runs"] = []
        for ef in efs:
            graph.expansion_search = ef
            keys, seconds = timed_single(lambda q: graph.search(q, K, threads=1).keys, queries)
            np.save(work / f"keys_usearch_{ef}.npy", keys)
            result["runs"].append({"ef": ef, "seconds": seconds.tolist()})
    (work / f"result_{engine}.json").write_text(json.dumps(result))


def insert_rates(index: HnswIndex, work: Path, first_key: int) -> dict[str, float]:
    """Rows/s added to the built index: one at a time, then in batches of 1,000 (the way a
    bulk enrolment refreshes the index); only where make_data wrote new templates."""
    rates: dict[str, float] = {}
    for name, step in (("single", 1), ("batch", 1000)):
        path = work / f"extra_{name}.npy"
        if not path.exists():
            continue
        rows = np.load(path)
        start = time.perf_counter()
        for first in range(0, len(rows), step):
            index.add(np.arange(first_key + first, first_key + first + len(rows[first : first + step])),
                      rows[first : first + step])  # fmt: skip
        rates[f"insert_{name}_rows_s"] = len(rows) / (time.perf_counter() - start)
        first_key += len(rows)
    return rates


def lock_and_threads(index: HnswIndex, queries: np.ndarray) -> dict[str, float]:
    """Cost of the readers-writer lock per call, and queries/s with two searching threads."""
    rounds = 100_000
    start = time.perf_counter()
    for _ in range(rounds):
        with index._lock.reading():  # the same lock `search` takes, measured on its own
            pass
    lock_us = (time.perf_counter() - start) / rounds * 1e6
    halves = np.array_split(queries, 2)
    threads = [threading.Thread(target=lambda h=h: [index.search(q[None], K) for q in h]) for h in halves]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"lock_us": lock_us, "qps_2_threads": len(queries) / (time.perf_counter() - start)}


def save_and_load(index: HnswIndex, work: Path) -> dict[str, float]:
    path = work / "index.fgidx"
    start = time.perf_counter()
    index.save(path, applied_seq=1)
    saved = time.perf_counter() - start
    start = time.perf_counter()
    HnswIndex.load(path, index.dimension)
    return {"save_s": saved, "load_s": time.perf_counter() - start, "file_bytes": path.stat().st_size}


def make_data(
    work: Path, lfw: Path, n: int, mated: int, seed: int, inserts: tuple[int, int] = (0, 0)
) -> tuple[dict[str, np.ndarray], str]:
    """Write gallery.npy and queries.npy; return identities of both and the profile table.

    `inserts` = (single, batched): also write that many templates of new identities (one
    each, drawn last so the gallery and queries do not change) to extra_single.npy and
    extra_batch.npy; the hnsw worker then times adding them (pg_bench.py inserts the same).
    """
    templates, labels, subjects = lfw_templates(lfw)
    counts = np.bincount(labels)
    last = np.zeros(len(labels), bool)
    last[[np.flatnonzero(labels == s)[-1] for s in np.flatnonzero(counts >= 2)]] = True
    model, rng = fit(templates, labels, seed), np.random.default_rng(seed)
    needed = n - int((~last).sum())
    if needed < mated:
        raise SystemExit(f"--n must exceed the {int((~last).sum())} real templates by {mated}")
    per_identity = rng.integers(1, 5, needed)  # 1-4 templates per synthetic identity
    per_identity = per_identity[: np.searchsorted(np.cumsum(per_identity), needed) + 1]
    per_identity[-1] -= per_identity.sum() - needed
    centres = model.identities(len(per_identity), rng)
    synth_ids = np.repeat(np.arange(len(per_identity)), per_identity)
    probes = rng.choice(len(per_identity), mated, replace=False)
    gallery = np.concatenate([templates[~last], model.samples(centres[synth_ids], rng)])
    queries = np.concatenate([templates[last], model.samples(centres[probes], rng)])
    np.save(work / "gallery.npy", gallery)
    np.save(work / "queries.npy", queries)
    ids = {
        "gallery": np.concatenate([labels[~last], len(subjects) + synth_ids]),
        "queries": np.concatenate([labels[last], len(subjects) + probes]),
        "real": np.arange(len(queries)) < int(last.sum()),
    }
    like_lfw = model.samples(np.repeat(model.identities(len(counts), rng), counts, axis=0), rng)
    real, synth = (
        profile(templates, labels, rng),
        profile(like_lfw, np.repeat(np.arange(len(counts)), counts), rng),
    )
    for name, count in zip(("single", "batch"), inserts):
        if count:
            np.save(work / f"extra_{name}.npy", model.samples(model.identities(count, rng), rng))
    rows = [f"| {name} | {real[name]:.3f} | {synth[name]:.3f} |" for name in real]
    table = "\n".join(["| cosine similarity | LFW real | synthetic, same shape |", "|---|---|---|", *rows])
    return (
        ids,
        f"{len(templates)} LFW templates of {len(subjects)} subjects; {len(per_identity)} synthetic identities\n\n{table}",
    )


def report(work: Path, engines: list[str], ids: dict[str, np.ndarray]) -> str:
    truth = np.load(work / "keys_exact.npy")
    results = {e: json.loads((work / f"result_{e}.json").read_text()) for e in engines}
    exact_p50 = np.median(results["exact"]["runs"][0]["seconds"])
    lines = [
        "| engine | ef_search | recall@10 | rank-1 mate real / synth | p50 ms | p99 ms | q/s 1 thread | x exact (p50) | build s | resident MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine, result in results.items():
        for run in result["runs"]:
            keys = truth if engine == "exact" else np.load(work / f"keys_{engine}_{run['ef']}.npy")
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(keys, truth)])
            mate = ids["gallery"][keys[:, 0]] == ids["queries"]
            seconds = np.array(run["seconds"])
            lines.append(
                f"| {NAMES[engine]} | {run['ef'] or '-'} | {recall:.4f} "
                f"| {mate[ids['real']].mean():.3f} / {mate[~ids['real']].mean():.3f} "
                f"| {np.median(seconds) * 1e3:.3f} | {np.percentile(seconds, 99) * 1e3:.3f} "
                f"| {len(seconds) / seconds.sum():.0f} | {exact_p50 / np.median(seconds):.1f} "
                f"| {result['build_s']:.1f} | {result['rss_bytes'] / 2**20:.0f} |"
            )
    extra = results["hnsw"]
    lines.append(
        f"\nfacegate HnswIndex (hnswlib): lock {extra['lock_us']:.2f} us/search, "
        f"{extra['qps_2_threads']:.0f} q/s with 2 searching threads, save {extra['save_s']:.1f} s, "
        f"load {extra['load_s']:.1f} s, file {extra['file_bytes'] / 2**20:.0f} MB"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="gallery size")
    parser.add_argument("--mated", type=int, default=1000, help="synthetic mated queries")
    parser.add_argument("--exact-queries", type=int, default=200, help="queries timed on exact numpy")
    parser.add_argument("--ef", default="256,320,384", help="ef_search values to sweep")
    parser.add_argument("--usearch", action="store_true", help="also time raw usearch (slow build)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lfw", type=Path, default=LFW_RAW, help="raw LFW descriptors (.npz)")
    parser.add_argument("--worker", choices=["exact", "hnsw", "usearch"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    efs = [int(ef) for ef in args.ef.split(",")]
    if args.worker:
        worker(args.worker, args.work, efs, args.exact_queries)
        return
    load = os.getloadavg()[0]
    engines = ["exact", "hnsw"] + (["usearch"] if args.usearch else [])
    with tempfile.TemporaryDirectory(prefix="search_bench.") as tmp:
        work = Path(tmp)
        ids, data_table = make_data(work, args.lfw, args.n, args.mated, args.seed)
        for engine in engines:
            print(f"running {engine} ...", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--worker", engine, "--work", tmp, "--ef", args.ef]
            subprocess.run([*command, "--exact-queries", str(args.exact_queries)], check=True)
        table = report(work, engines, ids)
    print(f"## Vector search, {args.n:,} templates, {len(ids['queries'])} queries, k={K}\n")
    print(
        f"{os.cpu_count()} cores, load average {load:.2f} at start; M={HnswIndex.CONNECTIVITY}, "
        f"ef_construction={HnswIndex.EXPANSION_ADD}, default ef_search={HnswIndex.EXPANSION_SEARCH}\n"
    )
    print(data_table + "\n\n" + table)
    print(f"\ncommand: .venv/bin/python benchmarks/search_bench.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
