"""Cost of the audit log's integrity work on a real SQLite catalog.

Method: append N search entries (format 2: salted redactable digest) in one transaction,
then time, once each, `verify` (streaming), `verify_naive` (recomputes the chain), signing
a checkpoint (reads every entry hash, builds the RFC 9162 Merkle root, signs with Ed25519),
an inclusion proof of the entry at N/3, and a retention run that redacts every entry.
Wall-clock seconds on this machine (2 shared cores, one process). Prints a markdown table.

    .venv/bin/python benchmarks/audit_bench.py --entries 20000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from facegate.governance import default_policy
from facegate.governance.audit import AuditEntry, MatchRef, append_entry
from facegate.governance.audit_verify import verify, verify_naive
from facegate.governance.checkpoints import create_checkpoint, inclusion_proof
from facegate.governance.retention import apply_retention
from facegate.store.db import open_engine, session_factory, sqlite_url
from facegate.store.migrations import migrate

START = datetime(2021, 1, 1, tzinfo=UTC)


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        time=START + timedelta(seconds=i), operation="search_image", decision="allow", rule="purpose:photo_library",
        policy_version="sha256:0123456789abcdef", tenant="bench", purpose="photo_library", probe_sha256=f"{i:064x}",
        results=(MatchRef(f"face-{i}", "subject", 90.0),), threshold=83.0,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=20000)
    n = parser.parse_args().entries
    timings: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(sqlite_url(Path(folder)))
        migrate(engine)
        sessions = session_factory(engine)
        t = time.perf_counter()
        with sessions.begin() as session:
            for i in range(n):
                append_entry(session, entry(i))
        timings.append((f"append {n} entries (one transaction)", time.perf_counter() - t))
        with sessions() as session:
            for name, check in (("verify", verify), ("verify_naive", verify_naive)):
                t = time.perf_counter()
                ok = check(session).ok
                timings.append((name, time.perf_counter() - t))
                if not ok:
                    raise SystemExit(f"{name}: the fresh chain does not verify")
        with sessions.begin() as session:
            t = time.perf_counter()
            checkpoint = create_checkpoint(session, Ed25519PrivateKey.generate(), START + timedelta(days=1))
            timings.append(("sign a checkpoint (Merkle root over all entries)", time.perf_counter() - t))
        with sessions() as session:
            t = time.perf_counter()
            inclusion_proof(session, max(1, n // 3), checkpoint)
            timings.append(("inclusion proof of one entry", time.perf_counter() - t))
        record = AuditEntry(time=START + timedelta(days=400), operation="retention", decision="allow",
                            rule="role:admin", policy_version="bench", tenant="local")  # fmt: skip
        with sessions.begin() as session:
            t = time.perf_counter()
            run = apply_retention(session, default_policy(), at=START + timedelta(days=400), record=record)
            timings.append((f"retention: redact {len(run.redacted)} entries", time.perf_counter() - t))
        with sessions() as session:
            t = time.perf_counter()
            ok = verify(session).ok
            timings.append(("verify after redaction", time.perf_counter() - t))
            if not ok:
                raise SystemExit("the redacted chain does not verify")
        engine.dispose()
    print(f"audit integrity, {n} entries, {os.cpu_count()} cores (shared)\n")
    print("| step | seconds |\n|---|---:|")
    for name, seconds in timings:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
