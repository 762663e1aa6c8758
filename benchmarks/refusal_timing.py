"""How long a refusal of another tenant's collection takes, beside a missing collection's.

    .venv/bin/python benchmarks/refusal_timing.py [--repeats 40]

Tenant B searches tenant A's collection by image, then a collection that does not exist;
both must be refused by the gate's first, short decision, before the probe is decoded or
any index searched, so their latencies must be alike (and far below A's own search, which
analyses the probe). Run in-process on a fresh data directory; medians in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.operations import admin, collections, faces, search
from facegate.settings import Settings

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw"


def timed(engine: Facegate, caller: Caller, collection_id: str, probe: bytes, repeats: int) -> list[float]:
    took = []
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            search.search_image(engine, caller, collection_id, probe)
        except FacegateError as exc:
            assert exc.code is ErrorCode.COLLECTION_NOT_FOUND, exc
        took.append((time.perf_counter() - start) * 1000)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    engine = Facegate(Settings(home=Path(tempfile.mkdtemp(prefix="facegate-refusal-"))))
    for name in ("ngo-a", "ngo-b"):
        admin.new_tenant(engine, Caller(), name, "commercial", ["photo_library"])
    a, b = Caller(tenant="ngo-a", purpose="photo_library"), Caller(tenant="ngo-b", purpose="photo_library")
    collections.create_collection(engine, a, "a-gallery")
    for n in (1, 2):
        faces.index_faces(engine, a, "a-gallery", (LFW / "Tony_Blair" / f"Tony_Blair_{n:04d}.jpg").read_bytes())
    probe = (LFW / "Tony_Blair" / "Tony_Blair_0003.jpg").read_bytes()
    timed(engine, b, "a-gallery", probe, 5)  # warm up
    # interleaved, one of each in turn and each first half the time, so that load from other
    # processes falls on both alike
    foreign: list[float] = []
    missing: list[float] = []
    for i in range(args.repeats):
        for collection_id in ("a-gallery", "zz-missing")[:: 1 if i % 2 else -1]:
            took = timed(engine, b, collection_id, probe, 1)
            (foreign if collection_id == "a-gallery" else missing).extend(took)
    own = timed(engine, a, "a-gallery", probe, max(5, args.repeats // 4))
    for label, took in (("B on A's collection", foreign), ("B on a missing collection", missing),
                        ("A's own search", own)):
        print(f"{label:26s} median {statistics.median(took):7.2f} ms  min {min(took):7.2f}  max {max(took):7.2f}"
              f"  (n={len(took)})")
    engine.close()


if __name__ == "__main__":
    main()
