"""Abuse benchmark of the HTTP service: a flood before authentication, huge images, slow bodies.

    .venv/bin/python benchmarks/abuse_bench.py                      # all three parts, 60 s flood
    .venv/bin/python benchmarks/abuse_bench.py --parts flood --seconds 30

Method (stated so the numbers can be judged):

- The server: `facegate serve --host 127.0.0.1 --workers W` (default 2) on a free loopback
  port, a temporary data directory, default limits (30 unauthenticated requests a minute
  per client address and worker, 8 image requests and 128 MiB of bodies in flight per
  worker, 30 s body deadline) except the per-key rate limit, turned off so that the legitimate
  clients are never limited. A tenant approved for `photo_library`, its key, and a
  collection of the first photo of 10 LFW people, enrolled over HTTP.
- Legitimate clients: 2 threads, each from its own loopback address (127.0.0.21 and .22),
  searching the collection by image (JSON, base64, an LFW photo of an enrolled person)
  in a closed loop. Their latencies are measured alone first (baseline), then beside the
  flood, for the same duration.
- flood: 6 threads in a process of their own, each from its own loopback address
  (127.0.0.11-.16), send GET /v1/collections in a closed loop on one keep-alive
  connection, alternately without a key and with a wrong one. Audit growth: the rows the flood added to `audit_log` (tenant
  unset), counted after the minute windows were closed (the service flushes them every
  5 s once the minute is over), divided by the flood's minutes.
- images: 8 threads post at once one 40-megapixel PNG each (an LFW photo enlarged to
  7300x5475, about 7 MB) to /v1/detect, retrying on 503 after its Retry-After. The
  resident set size (VmRSS) of every worker is sampled every 20 ms: idle (before),
  peak (during), after (2 s after the last answer).
- slow: 50 connections from 127.0.0.31 send an image request's headers with the
  legitimate key, then one body byte a second; meanwhile the legitimate clients search.
  The slow ones are answered 408 REQUEST_TIMEOUT after the body deadline.

Loopback addresses only; every part is bounded in time. The machine is shared: load
averages are printed with each part.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
LFW = REPO.parent / "shared" / "data" / "lfw"
FACEGATE = Path(sys.executable).parent / "facegate"
COLLECTION = "abuse-bench"
PURPOSE = "photo_library"
LEGIT = ("127.0.0.21", "127.0.0.22")
FLOOD = tuple(f"127.0.0.{n}" for n in range(11, 17))
SLOW = "127.0.0.31"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def people(count: int) -> list[tuple[Path, Path]]:
    chosen = []
    for folder in sorted(p for p in LFW.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= 2:
            chosen.append((photos[0], photos[1]))
        if len(chosen) == count:
            break
    return chosen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`facegate serve` in a subprocess, with a tenant, its key and an enrolled collection."""

    def __init__(self, home: Path, workers: int) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
        self.env |= {"FACEGATE_HOME": str(home), "FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}
        self.cli("tenant", "create", "bench", "--sector", "commercial", "--purposes", PURPOSE)
        self.key = str(self.cli("key", "create", "bench")["key"])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (home / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [str(FACEGATE), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline, ready = time.monotonic() + 300, 0
        while ready < workers * 3:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"server not ready: {(home / 'serve.log').read_text()[-2000:]}")
            try:
                ready += httpx.get(f"{self.url}/readyz", timeout=120).status_code == 200
            except httpx.TransportError:
                time.sleep(0.3)

    def cli(self, *args: str) -> dict[str, object]:
        run = subprocess.run([str(FACEGATE), *args, "--json"], env=self.env, capture_output=True, text=True,
                             timeout=300, check=True)
        answer: dict[str, object] = json.loads(run.stdout)
        return answer

    def client(self, address: str, key: str | None = None, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                            transport=httpx.HTTPTransport(local_address=address))

    def workers(self) -> list[int]:
        """PIDs of the uvicorn worker processes (children of the server process)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]

    def audit_rows(self, where: str = "1") -> int:
        with sqlite3.connect(f"file:{self.home / 'catalog.sqlite3'}?mode=ro", uri=True) as db:
            return int(db.execute(f"SELECT count(*) FROM audit_log WHERE {where}").fetchone()[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of the worker processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def legit_load(service: Service, probes: list[bytes], stop: threading.Event) -> tuple[list[float], Counter[int]]:
    """The 2 legitimate clients until `stop`; their latencies (ms) and statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def run(address: str, offset: int) -> None:
        with service.client(address, service.key) as client:
            i = offset
            while not stop.is_set():
                body = {"image": {"bytes": base64.b64encode(probes[i % len(probes)]).decode()}, "purpose": PURPOSE}
                started = time.perf_counter()
                answer = client.post(f"/v1/collections/{COLLECTION}/search", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        latencies.append(elapsed)
                i += 1

    threads = [threading.Thread(target=run, args=(a, n)) for n, a in enumerate(LEGIT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses


def timed_legit(service: Service, probes: list[bytes], seconds: float) -> tuple[list[float], Counter[int]]:
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    return legit_load(service, probes, stop)


def flood_part(service: Service, probes: list[bytes], seconds: float) -> dict[str, object]:
    log(f"baseline: 2 legitimate clients for {seconds:g} s (load {load()})")
    pids = service.workers()
    cpu = cpu_seconds(pids)
    base, base_status = timed_legit(service, probes, seconds)
    base_cpu = cpu_seconds(pids) - cpu
    before = service.audit_rows("tenant IS NULL")
    log(f"flood: 6 clients beside the 2 legitimate ones for {seconds:g} s (load {load()})")
    cpu = cpu_seconds(pids)
    started = time.time()
    flooder = subprocess.Popen(  # a process of its own: its threads do not share the legitimate clients' GIL
        [sys.executable, __file__, "--flood-url", service.url, "--seconds", str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    during, during_status = legit_load(service, probes, stop)
    out, _ = flooder.communicate(timeout=seconds + 120)
    flood_status = Counter({int(k): v for k, v in json.loads(out).items()})
    ended = time.time()
    flood_cpu = cpu_seconds(pids) - cpu
    settle = (int(ended // 60) + 1) * 60 + 8 - time.time()  # the minute closes, then a flush
    log(f"waiting {settle:.0f} s for the last minute windows to be closed and recorded")
    time.sleep(max(0.0, settle))
    grown = service.audit_rows("tenant IS NULL") - before
    minutes = (ended - started) / 60
    return {
        "flood_seconds": round(ended - started, 1), "flood_requests": sum(flood_status.values()),
        "flood_requests_per_s": round(sum(flood_status.values()) / (ended - started), 1),
        "flood_statuses": dict(flood_status), "audit_entries_added": grown,
        "audit_entries_per_flood_minute": round(grown / minutes, 1),
        "legit_baseline": {"requests": len(base), "p50_ms": round(statistics.median(base), 1),
                           "p99_ms": round(percentile(base, 0.99), 1), "statuses": dict(base_status)},
        "legit_during_flood": {"requests": len(during), "p50_ms": round(statistics.median(during), 1),
                               "p99_ms": round(percentile(during, 0.99), 1), "statuses": dict(during_status)},
        "p50_ratio": round(statistics.median(during) / statistics.median(base), 2),
        "workers_cpu_s": {"baseline": round(base_cpu, 1), "flood": round(flood_cpu, 1)},
        # the workers' CPU beyond what the legitimate requests cost at the baseline's rate
        "server_cpu_ms_per_flood_request": round(
            max(0.0, flood_cpu - base_cpu * len(during) / max(1, len(base))) * 1000 / max(1, sum(flood_status.values())),
            2),
        "load_after": load(),
    }


def flood_clients(url: str, seconds: float) -> None:
    """The flooding process: 6 threads, one loopback address each, until `seconds` pass;
    prints the count of each status it got."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def flood(address: str) -> None:
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=url, transport=transport, timeout=60) as client:
            n = 0
            while time.monotonic() < deadline:
                headers = {"Authorization": "Bearer fg_0000000000000000_wrong"} if n % 2 else {}
                status = client.get("/v1/collections", headers=headers).status_code
                with lock:
                    statuses[status] += 1
                n += 1

    threads = [threading.Thread(target=flood, args=(a,)) for a in FLOOD]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(statuses))


def forty_megapixels() -> bytes:
    photo = Image.open(sorted((LFW / "Colin_Powell").glob("*.jpg"))[0]).convert("RGB")
    out = io.BytesIO()
    photo.resize((7300, 5475), Image.Resampling.BICUBIC).save(out, "PNG", compress_level=1)
    return out.getvalue()


def images_part(service: Service, count: int = 8) -> dict[str, object]:
    data = forty_megapixels()
    log(f"images: {count} concurrent 40-megapixel PNGs of {len(data) / 1e6:.1f} MB (load {load()})")
    pids = service.workers()
    idle = {pid: rss_mb(pid) for pid in pids}
    peak = dict(idle)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in pids:
                peak[pid] = max(peak[pid], rss_mb(pid))
            time.sleep(0.02)

    results: list[tuple[int, int, float]] = []  # (final status, 503s met, seconds)

    def post(n: int) -> None:
        started, busy = time.monotonic(), 0
        with service.client(f"127.0.0.{41 + n}", service.key, timeout=600) as client:
            while True:
                answer = client.post("/v1/detect", files={"image": ("big.png", data, "image/png")},
                                     data={"purpose": PURPOSE})
                if answer.status_code != 503:
                    break
                busy += 1
                time.sleep(float(answer.headers.get("Retry-After", "1")))
        results.append((answer.status_code, busy, time.monotonic() - started))

    sampler = threading.Thread(target=sample)
    sampler.start()
    posts = [threading.Thread(target=post, args=(n,)) for n in range(count)]
    for t in posts:
        t.start()
    for t in posts:
        t.join()
    time.sleep(2.0)
    done.set()
    sampler.join()
    after = {pid: rss_mb(pid) for pid in pids}
    return {
        "png_megabytes": round(len(data) / 1e6, 1), "statuses": dict(Counter(s for s, _, _ in results)),
        "overloaded_retries": sum(b for _, b, _ in results),
        "slowest_s": round(max(t for _, _, t in results), 1),
        "workers": [{"pid": pid, "idle_mb": round(idle[pid]), "peak_mb": round(peak[pid]),
                     "after_mb": round(after[pid])} for pid in pids],
        "load_after": load(),
    }


def slow_part(service: Service, probes: list[bytes], connections: int = 50, seconds: float = 40) -> dict[str, object]:
    log(f"slow: {connections} slow-body connections for {seconds:g} s beside the legitimate clients (load {load()})")
    host, port = "127.0.0.1", service.port
    socks = []
    for _ in range(connections):
        sock = socket.create_connection((host, port), timeout=120, source_address=(SLOW, 0))
        sock.sendall((f"POST /v1/detect HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {service.key}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{").encode())
        socks.append(sock)
    stop = threading.Event()
    answers: Counter[str] = Counter()

    def dribble() -> None:
        while not stop.is_set():
            for sock in socks:
                try:
                    sock.sendall(b" ")
                except OSError:
                    pass
            stop.wait(1.0)

    feeder = threading.Thread(target=dribble)
    feeder.start()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    latencies, statuses = legit_load(service, probes, stop)
    feeder.join()
    for sock in socks:
        sock.settimeout(5)
        try:
            head = sock.recv(4096).split(b"\r\n", 1)[0].decode()
            answers[head or "closed"] += 1
        except OSError as exc:
            answers[type(exc).__name__] += 1
        sock.close()
    return {
        "slow_connections": connections, "slow_answers": dict(answers),
        "legit_during": {"requests": len(latencies), "p50_ms": round(statistics.median(latencies), 1),
                         "p99_ms": round(percentile(latencies, 0.99), 1), "statuses": dict(statuses)},
        "load_after": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="flood,images,slow")
    parser.add_argument("--seconds", type=float, default=60.0, help="flood and baseline duration")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flood-url", default=None, help=argparse.SUPPRESS)  # the flooding process
    args = parser.parse_args()
    if args.flood_url is not None:
        flood_clients(args.flood_url, args.seconds)
        return
    with tempfile.TemporaryDirectory(prefix="facegate-abuse-") as tmp:
        home = Path(tmp) / "home"
        log(f"starting facegate serve --workers {args.workers} (load {load()})")
        service = Service(home, args.workers)
        try:
            chosen = people(10)
            with service.client("127.0.0.1", service.key) as admin:
                admin.post("/v1/collections", json={"collection_id": COLLECTION}).raise_for_status()
                for enrolled, _ in chosen:
                    admin.post(f"/v1/collections/{COLLECTION}/faces",
                               files={"image": (enrolled.name, enrolled.read_bytes(), "image/jpeg")},
                               data={"purpose": PURPOSE}).raise_for_status()
            probes = [probe.read_bytes() for _, probe in chosen]
            report: dict[str, object] = {"workers": args.workers, "cores": os.cpu_count()}
            parts = args.parts.split(",")
            if "flood" in parts:
                report["flood"] = flood_part(service, probes, args.seconds)
            if "images" in parts:
                report["images"] = images_part(service)
            if "slow" in parts:
                report["slow"] = slow_part(service, probes)
        finally:
            service.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
