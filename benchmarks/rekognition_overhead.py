"""What the Rekognition door costs beside the JSON API: the same operations, one client.

    .venv/bin/python benchmarks/rekognition_overhead.py            # 200 listings, 30 searches each way
    .venv/bin/python benchmarks/rekognition_overhead.py --calls 50 --searches 10

Method: `facegate serve --workers 1` (rate limit off) on a temporary data directory, one
tenant approved for `photo_library` with a key bound to it; a collection with 5 LFW
faces (Tony Blair 1-3, Colin Powell 1-2). The same client machine then runs, one call at a
time on one connection, after 5 untimed warm-up calls each:

- ListCollections through boto3 (SigV4 signing, `POST /`, the server's signature check)
  against `GET /v1/collections` through `facegate.client` (bearer key);
- SearchFacesByImage (Tony Blair 4) through boto3 against `POST .../search` (JSON, base64).

Wall time per call from the client's side (time.perf_counter), median and 95th
percentile. Client and server share the machine's cores. Output: a markdown table on
stdout, progress on stderr. Needs boto3 (a test dependency).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.service.server import lfw, running_server  # noqa: E402 - the tests' real-server helper

TENANT = ("bench", "commercial", "photo_library", "operator")


def timed(call: Callable[[], object], n: int) -> list[float]:
    for _ in range(5):
        call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def row(name: str, ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {p95:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--searches", type=int, default=30)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="fg-rek-bench-"))
    (home / "models").mkdir()  # the converted-model cache the server links to
    with running_server(home / "data", home / "models", tenants=(TENANT,),
                        settings={"FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}) as server:
        [key] = server.cli_all([["key", "create", "bench", "--purpose", "photo_library"]])
        aws = boto3.client("rekognition", endpoint_url=server.url, region_name="eu-west-1",
                           aws_access_key_id=str(key["aws_access_key_id"]),
                           aws_secret_access_key=str(key["aws_secret_access_key"]),
                           config=Config(retries={"max_attempts": 1, "mode": "standard"}))
        aws.create_collection(CollectionId="bench")
        for person, n in (("Tony_Blair", 1), ("Tony_Blair", 2), ("Tony_Blair", 3), ("Colin_Powell", 1), ("Colin_Powell", 2)):
            aws.index_faces(CollectionId="bench", Image={"Bytes": lfw(person, n).read_bytes()}, MaxFaces=1)
        probe = lfw("Tony_Blair", 4)
        probe_bytes = probe.read_bytes()
        rows = []
        with server.client(str(key["key"])) as fg:
            print("listing ...", file=sys.stderr)
            rows.append(row("ListCollections, boto3 (SigV4, `POST /`)", timed(aws.list_collections, args.calls)))
            rows.append(row("`GET /v1/collections`, bearer key", timed(fg.list_collections, args.calls)))
            print("searching ...", file=sys.stderr)
            rows.append(row("SearchFacesByImage, boto3", timed(
                lambda: aws.search_faces_by_image(CollectionId="bench", Image={"Bytes": probe_bytes}), args.searches)))
            rows.append(row("`POST /v1/collections/bench/search`, JSON", timed(
                lambda: fg.search("bench", probe), args.searches)))
    print("| call | n | median ms | p95 ms |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
