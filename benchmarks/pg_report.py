"""The tables `pg_bench.py` prints, from its results (live or a saved `--json` run)."""

from __future__ import annotations

from typing import Any

import pg_vectors as pv

SEARCH_HEADER = (
    "| engine | parameters | recall@10 | p50 ms | p99 ms | transaction p50 / p99 ms "
    "| product path p50 / p99 ms (recall) | build s | index MiB | memory MiB |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
WRITERS_HEADER = (
    "| backend | operation | writers | ops | ops/s | p50 / p99 ms per op | entries added (expected) | verify "
    "| transactions per op | writers waiting for the lock (mean) |\n"
    "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"
)


def mb(count: float) -> str:
    return f"{count / 2**20:,.0f}"


def spread(timing: dict[str, float]) -> str:
    return f"{timing['p50_ms']:.2f} / {timing['p99_ms']:.2f}"


def search_table(results: dict[str, Any]) -> list[str]:
    emb, pg = results["embedded"], results["pgvector"]
    e, h, x = emb["exact"], emb["hnsw"], pg["exact"]
    lines = [f"### Search, {results['n']:,} templates, one collection, {results['queries']} queries, "
             f"k={pv.K}, one at a time", "", SEARCH_HEADER,
             f"| numpy exact (ExactIndex) | - | 1.0000 | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | | "
             f"| {e['build_s']:.1f} | | {mb(e['rss_bytes'])} |",
             f"| facegate HnswIndex (hnswlib) | M={h['M']}, ef_c={h['ef_construction']}, ef_search={h['ef_search']} "
             f"| {h['recall']:.4f} | {h['p50_ms']:.2f} | {h['p99_ms']:.2f} | | | {h['build_s']:.0f} "
             f"| {mb(h['file_bytes'])} (file) | {mb(h['rss_bytes'])} |",
             f"| pgvector exact scan | {x['queries']} queries | {x['recall']:.4f} | {x['select']['p50_ms']:.2f} "
             f"| {x['select']['p99_ms']:.2f} | {spread(x['transaction'])} | | | | |"]
    huge = pg.get("huge_pages_status", "?")
    for built in pg["builds"]:
        product = {p["ef_search"]: p for p in built.get("product", [])}
        graph = f"{built.get('element', 'vector')}, m={built['m']}, ef_c={built['ef_construction']}"
        for runs, pages in ((built["runs"], huge), (built.get("runs_without_huge_pages", []), "off")):
            for run in runs:
                p = product.get(run["ef_search"]) if pages == huge else None
                path = f"{spread(p)} ({p['recall']:.4f})" if p else ""
                lines.append(
                    f"| pgvector HNSW | {graph}, ef_search={run['ef_search']}, huge pages {pages} "
                    f"| {run['recall']:.4f} | {run['select']['p50_ms']:.2f} | {run['select']['p99_ms']:.2f} "
                    f"| {spread(run['transaction'])} | {path} "
                    f"| {pg['copy_s']:.0f} + {built['build_s']:.0f} | {mb(built['index_bytes'])} "
                    f"| {mb(built['memory_bytes'])} |"
                )
    return lines


def build_notes(results: dict[str, Any]) -> list[str]:
    pg, n = results["pgvector"], results["n"]
    lines = ["", "pgvector build s = COPY + CREATE INDEX. Sizes and memory:", ""]
    for built in pg["builds"]:
        lines.append(
            f"- {built.get('element', 'vector')}, m={built['m']}, ef_construction={built['ef_construction']}: CREATE INDEX {built['build_s']:.1f} s; "
            f"index {mb(built['index_bytes'])} MiB ({built['index_bytes'] / n:,.0f} bytes/template), "
            f"table {mb(built['table_bytes'])} MiB, table with all its indexes {mb(built['total_bytes'])} MiB; "
            f"{built['index_buffers']:,} index pages in shared_buffers; server PSS {mb(built['memory_bytes'])} MiB "
            f"(idle {mb(pg['idle_memory_bytes'])} MiB); plan: {built['plan']}; notices: {built['notices'] or 'none'}"
        )
    h = results["embedded"]["hnsw"]
    return lines + [
        f"- exact plan: {pg['exact']['plan']}",
        f"- server settings: {', '.join(f'{k}={v}' for k, v in pg['settings'].items())}",
        "", "Inserts into the built index (fresh templates):", "",
        "| engine | one per call / transaction, rows/s | 1,000 per call / transaction, rows/s |", "|---|---:|---:|",
        f"| facegate HnswIndex (index only) | {h.get('insert_single_rows_s', 0):,.0f} "
        f"| {h.get('insert_batch_rows_s', 0):,.0f} |",
        f"| PostgreSQL faces row, all indexes | {pg['insert_single_rows_s']:,.0f} | {pg['insert_batch_rows_s']:,.0f} |",
    ]


def crossover_table(cross: dict[str, Any]) -> list[str]:
    lines = ["", f"### Exact scan against HNSW by collection size ({cross.get('element', 'vector')}, m={cross['m']}, "
             f"ef_c={cross['ef_construction']}, "
             f"ef_search={cross['ef_search']}; SELECT latency, {cross.get('queries', '')} queries)", "",
             "| collection | rows in table | exact p50 / p99 ms | HNSW p50 / p99 ms | HNSW recall@10 | HNSW plan |",
             "|---:|---:|---:|---:|---:|---|"]
    for where in ("alone", "shared"):
        for r in cross[where]:
            table = r["size"] if where == "alone" else cross["table"]
            lines.append(f"| {r['size']:,} | {table:,} | {spread(r['exact'])} | {spread(r['hnsw'])} "
                         f"| {r['hnsw_recall']:.4f} | {r['hnsw_plan']} |")
    return lines


def writers_table(writers: dict[str, Any]) -> list[str]:
    lines = ["", "### Audited operations per second, writer processes on one installation", "", WRITERS_HEADER]
    for backend, name in (("embedded", "SQLite (embedded)"), ("server", "PostgreSQL (server mode)")):
        rows = writers[backend]
        if isinstance(rows, str):
            lines.append(f"| PostgreSQL | PENDING: {rows} | | | | | | | | |")
            continue
        for r in rows:
            watched = (f"| {r['transactions_per_op']:.1f} | {r['mean_waiting_for_lock']:.2f} |"
                       if "transactions_per_op" in r else "| - | - |")
            lines.append(f"| {name} | {r['operation']} | {r['writers']} | {r['ops']} | {r['ops_s']:.1f} "
                         f"| {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {r['entries_added']} ({r['entries_expected']}) "
                         f"| {'ok' if r['verify_ok'] else 'FAILED'} {watched}")
    return lines


def report(results: dict[str, Any]) -> str:
    lines: list[str] = [str(results["data_table"]), ""] if results.get("data_table") else []
    if results.get("embedded") and results.get("pgvector"):
        lines += search_table(results) + build_notes(results)
        if results["pgvector"].get("crossover"):
            lines += crossover_table(results["pgvector"]["crossover"])
    if results.get("writers"):
        lines += writers_table(results["writers"])
    return "\n".join(lines)


def print_tables(results: dict[str, Any]) -> None:
    print(f"## pgvector against the embedded index ({results['cores']} cores, load average "
          f"{results['load_at_start']:.1f} at start, {results['load_at_end']:.1f} at end, "
          f"{results['minutes']:.0f} min)\n")
    print(report(results))
    print(f"\ncommand: .venv/bin/python {results['command']}".rstrip())
