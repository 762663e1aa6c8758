"""Load benchmark of the HTTP service: concurrent clients searching a 10,000-face collection.

    .venv/bin/python benchmarks/load_bench.py                         # 4 clients, 2 workers, 30 s
    .venv/bin/python benchmarks/load_bench.py --clients 1 2 4 8 --seconds 20

Method (stated so the numbers can be judged):

1. Real faces: the first photo of each of the first `--people` LFW people (sorted by name)
   who have at least two photos, analysed by facegate's pipeline on both cores. The second
   photo of each is a probe: a different photo of someone in the gallery.
2. The collection: each real face is enrolled `--faces / --people` times, once as analysed
   and then as near-duplicates whose template is moved by Gaussian noise (sigma 0.02 per
   dimension, re-normalised: about 0.97 cosine from the original, like re-uploads of one
   photo); box, landmarks and quality are the original's. Enrolment goes through
   `operations.faces.index_analysed` as the local operator, 200 faces per call, so the
   collection is gated, audited and indexed exactly as any enrolment; it is done before
   the server starts and is not timed.
3. The server: `facegate serve --host 127.0.0.1 --workers W` in a subprocess on a free
   loopback port (rate limit off), with a tenant approved for `photo_library` and its key.
   Each worker answers /readyz and a few warm-up searches before the clock starts.
4. The load: C client threads (one httpx connection each) post search-by-image requests
   (JSON, base64 image; `--probe face` searches by an enrolled face id instead, which
   leaves face analysis out) in a closed loop for `--seconds`, probes round robin. An
   answer counts as an error unless it is 200 with a `matches` list.

Output: a markdown table (throughput, latency percentiles, errors) on stdout, progress on
stderr. Bounded: loopback only, at most 600 s per row; the data directory is a temporary
one unless `--data-dir` is given (then it is reused when it already holds the collection).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.operations import admin
from facegate.operations.collections import create_collection, describe_collection, list_collections
from facegate.operations.faces import index_analysed, list_faces
from facegate.settings import Settings
from facegate.vision.parallel import analyze_files
from facegate.vision.types import Face, QualityFilter

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"
COLLECTION = "load-bench"
PURPOSE = "photo_library"
NOISE = 0.02
BATCH = 200
FACEGATE = Path(sys.executable).parent / "facegate"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def people(count: int) -> list[tuple[Path, Path]]:
    """(enrolled photo, probe photo) of the first `count` LFW people with two photos or more."""
    chosen = []
    for folder in sorted(p for p in LFW.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= 2:
            chosen.append((photos[0], photos[1]))
        if len(chosen) == count:
            return chosen
    raise SystemExit(f"only {len(chosen)} LFW people with two photos under {LFW}")


def build_collection(engine: Facegate, pairs: list[tuple[Path, Path]], total: int) -> int:
    """Enrol `total` faces grown from the real faces of `pairs`; the number enrolled."""
    found = analyze_files([enrolled for enrolled, _ in pairs], engine.config, workers=2, max_faces=1)
    real: list[Face] = [r.faces[0] for r in found if r.faces]
    log(f"analysed {len(pairs)} photos: {len(real)} faces")
    create_collection(engine, Caller(), COLLECTION, "load benchmark: LFW faces and near-duplicates")
    rng = np.random.default_rng(2020)
    copies = [
        face if copy == 0 else dataclasses.replace(face, template=_nudged(face.template, rng))
        for copy in range(-(-total // len(real)))
        for face in real
    ][:total]
    for start in range(0, len(copies), BATCH):
        batch = copies[start:start + BATCH]
        digest = hashlib.sha256(f"load-bench batch {start}".encode()).hexdigest()
        index_analysed(engine, Caller(purpose=PURPOSE), COLLECTION, digest, lambda b=batch: (b, (0, 0)),
                       quality_filter=QualityFilter.NONE, refresh=False)
    engine.vectors.refresh(COLLECTION)
    return len(copies)


def _nudged(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    moved = template + rng.normal(0.0, NOISE, template.shape).astype(np.float32)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def prepare(home: Path, pairs: list[tuple[Path, Path]], total: int) -> tuple[str, list[str], str]:
    """The collection (built once per data directory), a tenant's key, some face ids, the index kind."""
    engine = Facegate(Settings(home=home))
    try:
        held = {c.collection_id for c in list_collections(engine, Caller()).value}
        if COLLECTION not in held:
            log(f"building a {total}-face collection in {home}")
            build_collection(engine, pairs, total)
        name = f"load-bench-{os.getpid()}"
        admin.new_tenant(engine, Caller(), name, "commercial", [PURPOSE])
        key = admin.new_key(engine, Caller(), name).key
        face_ids = [f.face_id for f in list_faces(engine, Caller(), COLLECTION, limit=50).value.items]
        faces = describe_collection(engine, Caller(), COLLECTION).value.face_count
        kind = engine.vectors.vectors(COLLECTION).index.kind
        log(f"collection {COLLECTION}: {faces} faces, {kind} index")
        return key, face_ids, kind
    finally:
        engine.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "FACEGATE_HOME": str(home), "FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}
    args = [str(FACEGATE), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=(home / "serve.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline, ready = time.monotonic() + 300, 0
    while ready < workers:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start: {(home / 'serve.log').read_text()[-2000:]}")
        try:
            ready += httpx.get(f"{url}/readyz", timeout=300).status_code == 200
        except httpx.TransportError:
            time.sleep(0.3)
    return server, url


@dataclasses.dataclass
class Row:
    clients: int
    seconds: float
    latencies: list[float]
    errors: int

    def cells(self) -> list[str]:
        lat = np.asarray(self.latencies) * 1000 if self.latencies else np.zeros(1)
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        return [str(self.clients), str(len(self.latencies) + self.errors), f"{len(self.latencies) / self.seconds:.2f}",
                f"{p50:.0f}", f"{p90:.0f}", f"{p99:.0f}", f"{lat.max():.0f}", str(self.errors)]


def load(url: str, key: str, requests: list[tuple[str, dict[str, object]]], clients: int, seconds: float) -> Row:
    """`clients` threads in a closed loop for `seconds`; latencies of good answers, errors counted."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at: list[float] = []

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
            start.wait()
            n = offset
            while time.monotonic() < stop_at[0]:
                path, body = requests[n % len(requests)]
                n += 1
                began = time.perf_counter()
                try:
                    answer = http.post(path, json=body)
                    good = answer.status_code == 200 and isinstance(answer.json().get("matches"), list)
                    problem = "" if good else f"{answer.status_code} {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                took = time.perf_counter() - began
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append(took)

    threads = [threading.Thread(target=client, args=(i * 7,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at.append(time.monotonic() + seconds)
    start.wait()
    for t in threads:
        t.join()
    for problem in errors[:5]:
        log(f"error: {problem}")
    return Row(clients, seconds, latencies, len(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[4], help="concurrent clients, one row each")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each row (at most 600)")
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=200, help="real LFW faces the collection grows from")
    parser.add_argument("--probe", choices=["image", "face"], default="image")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse this data directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not all(0 < c <= 64 for c in args.clients):
        parser.error("--seconds must be in (0, 600] and --clients in 1..64")
    with tempfile.TemporaryDirectory(prefix="facegate-load-") as scratch:
        home = args.data_dir or Path(scratch)
        pairs = people(args.people)
        key, face_ids, kind = prepare(home, pairs, args.faces)
        if args.probe == "image":
            probes = [base64.b64encode(probe.read_bytes()).decode() for _, probe in pairs]
            requests = [(f"/v1/collections/{COLLECTION}/search", {"image": {"bytes": b}, "purpose": PURPOSE})
                        for b in probes]
        else:
            requests = [(f"/v1/collections/{COLLECTION}/faces/{f}/search", {"purpose": PURPOSE}) for f in face_ids]
        server, url = start_server(home, args.workers)
        try:
            load(url, key, requests[:8], args.workers * 2, 3.0)  # warm-up, not reported
            rows = []
            for clients in args.clients:
                log(f"{clients} clients for {args.seconds:.0f} s ...")
                rows.append(load(url, key, requests, clients, args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=60)
    cores = os.cpu_count()
    load_avg = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"search by {args.probe}, {args.faces} faces ({kind} index), {args.workers} workers, "
          f"{cores} cores, {args.seconds:.0f} s per row, load average after {load_avg}\n")
    header = ["clients", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps([dict(zip(header, r.cells())) for r in rows], indent=2))
    if any(r.errors for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
