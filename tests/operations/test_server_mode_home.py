"""Server mode writes nothing but model caches to FACEGATE_HOME (the contract of issue 14).

A working day through the engine on real photos: tenants and keys, a collection, faces
enrolled one by one and from a manifest (in worker processes), searches, a comparison, an
erasure, the audit chain verified and signed, retention applied, an evaluation run. In
server mode the data directory then holds the `models` cache entry and nothing else; run
embedded, the same day leaves the catalog and its files there, so the check can fail.

Evaluation templates are a host cache: in the data directory when embedded, in the user
cache directory (private) in server mode.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance.checkpoints import generate_key
from facegate.operations import admin, audit, bulk, collections, console, faces, retention, search, vision
from facegate.operations.evaluation import evaluate_identification
from facegate.settings import Settings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ME = Caller()


def photo(lfw: Path, person: str, n: int) -> Path:
    return lfw / person / f"{person}_{n:04d}.jpg"


def manifest(lfw: Path, tmp_path: Path, people: tuple[str, ...], numbers: tuple[int, ...]) -> Path:
    out = tmp_path / f"manifest-{len(people)}-{len(numbers)}.csv"
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject"])
        for person in people:
            for n in numbers:
                writer.writerow([str(photo(lfw, person, n)), person.lower()])
    return out


def test_a_working_day_writes_nothing_but_model_caches_to_home(settings: Settings, lfw: Path, tmp_path: Path) -> None:
    signing = tmp_path / "signing.pem"  # kept outside the data directory, as an operator would
    generate_key(signing)
    clock = [START]
    engine = Facegate(settings.model_copy(update={"audit_signing_key": signing}), clock=lambda: clock[0])

    admin.new_tenant(engine, ME, "ngo", "nonprofit", ["photo_library"], ["operator", "auditor"])
    made = admin.new_key(engine, ME, "ngo", holder="ana")
    assert made.key and made.key_id
    user = console.signed_in(engine, console.sign_in(engine, made.key, "r1").token)
    assert user.session.tenant == "ngo"

    collections.create_collection(engine, ME, "people", retention_days=30)
    for person in ("Tony_Blair", "Colin_Powell"):
        done = faces.index_faces(engine, ME, "people", photo(lfw, person, 1).read_bytes(), subject=person.lower())
        assert len(done.value.indexed) == 1
    report = bulk.index_manifest(engine, ME, "people", manifest(lfw, tmp_path, ("Laura_Bush",), (1, 2)), workers=2)
    assert len(report.indexed) == 2

    found = search.search_image(engine, ME, "people", photo(lfw, "Colin_Powell", 5).read_bytes())
    assert found.value.matches and found.value.matches[0].subject == "colin_powell"
    compared = vision.compare(engine, ME, photo(lfw, "Tony_Blair", 1).read_bytes(),
                              photo(lfw, "Tony_Blair", 3).read_bytes())
    assert compared.value.to_dict()["match"] is True

    faces.erase_subject(engine, ME, "people", "colin_powell")
    again = search.search_image(engine, ME, "people", photo(lfw, "Colin_Powell", 5).read_bytes())
    assert all(m.subject != "colin_powell" for m in again.value.matches)

    assert audit.verify_chain(engine, ME).ok
    signed = audit.checkpoint(engine, ME)
    assert audit.chain_state(engine, Caller(tenant="ngo")).checkpoint["seq"] == signed["seq"]

    clock[0] = START + timedelta(days=31)
    run = retention.apply(engine, ME)
    assert run.erased_faces == 3  # the collection's 30 days are over: every face left
    assert search.search_image(engine, ME, "people", photo(lfw, "Tony_Blair", 3).read_bytes()).value.matches == []

    evaluate_identification(engine, ME, manifest(lfw, tmp_path, ("Tony_Blair", "Laura_Bush"), (1, 2, 3)), workers=1)
    assert audit.verify_chain(engine, ME).ok
    console.sign_out(engine, user, "r9")
    engine.close()

    left = sorted(p.name for p in settings.home.iterdir())
    if settings.server_mode:
        assert left == ["models"], f"server mode wrote to FACEGATE_HOME: {left}"
    else:  # the same day, embedded, keeps its state in the data directory: the check above can fail
        assert {"catalog.sqlite3", "credentials.kek", "evaluation-cache", "models"} <= set(left)


def test_evaluation_templates_are_a_host_cache_in_server_mode(
    engine: Facegate, lfw: Path, tmp_path: Path, host_cache: Path
) -> None:
    evaluate_identification(engine, ME, manifest(lfw, tmp_path, ("Tony_Blair", "Colin_Powell"), (1, 2)), workers=1)
    on_host = host_cache / "facegate" / "evaluation-cache"
    in_home = engine.settings.home / "evaluation-cache"
    if engine.settings.server_mode:
        assert (on_host / "templates.sqlite").is_file() and not in_home.exists()
        assert on_host.stat().st_mode & 0o777 == 0o700  # biometric templates: the owner's alone
    else:
        assert (in_home / "templates.sqlite").is_file() and not on_host.exists()
