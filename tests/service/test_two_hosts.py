"""Two hosts, one installation: two `facegate serve` processes on different ports, each with
a data directory of its own, and ONE PostgreSQL database (server mode).

What one host writes, the other sees at once: a face enrolled through A is found through B,
a subject erased through B is gone from A. Writers on both hosts at once keep one audit
chain (one entry per request, `audit verify` ok), the Rekognition protocol works through
either host (both open AWS secret keys with the one shared credentials key file), and
neither data directory ever holds anything but the models. A database that stops
answering is a 503 DATABASE_UNAVAILABLE from both hosts (and a one-line CLI error), never
a traceback, and never shows the database password; once it answers again, so do they.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import psycopg
import pytest
from botocore.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

from facegate.client import FacegateClient, FacegateHTTPError
from facegate.store.sealing import write_new_kek
from tests.service.aws.signing import signed_request
from tests.service.server import FACEGATE, Server, lfw, running_server
from tests.video.scenes import Appearance, render

PASSWORD = "s3cret-not-for-logs"  # put into the URL where it has none (the test server trusts local roles)
TENANTS = (("press", "commercial", "photo_library", "operator"),)
PURPOSE = "photo_library"


@dataclass
class Hosts:
    a: Server
    b: Server
    database_url: str
    key_file: Path

    @property
    def password(self) -> str:
        return str(make_url(self.database_url).password)

    def client(self, host: Server) -> FacegateClient:
        return host.client(self.a.keys["press"])


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, model_cache: Path,
          postgres_url_factory: Callable[..., str]) -> Iterator[Hosts]:
    """Host A and host B (one worker each) on one database and one credentials key file; the
    tenant and its key are made through A's CLI while both load their models."""
    root = tmp_path_factory.mktemp("two-hosts")
    url = make_url(postgres_url_factory())
    if not url.password:
        url = url.set(password=PASSWORD)
    database_url = url.render_as_string(hide_password=False)
    key_file = root / "credentials.kek"
    write_new_kek(key_file)
    settings = {"FACEGATE_CREDENTIALS_KEY_FILE": str(key_file), "FACEGATE_RATE_LIMIT_PER_MINUTE": "0",
                "FACEGATE_UNAUTHENTICATED_PER_MINUTE": "0"}
    with ExitStack() as stack:
        a = stack.enter_context(running_server(root / "host-a", model_cache, settings=settings, tenants=TENANTS,
                                               database_url=database_url, wait=False))
        b = stack.enter_context(running_server(root / "host-b", model_cache, settings=settings,
                                               database_url=database_url, wait=False))
        a.wait_ready()
        b.wait_ready()
        b.keys = a.keys
        yield Hosts(a, b, database_url, key_file)


def only_models(*servers: Server) -> None:
    """Server mode writes nothing under FACEGATE_HOME but the model cache."""
    for server in servers:
        assert [p.name for p in server.home.iterdir()] == ["models"], server.home


def subjects_found(fg: FacegateClient, collection: str, person: str, n: int) -> list[str]:
    found = fg.search(collection, lfw(person, n), purpose=PURPOSE, max_results=10)
    return [m["subject"] for m in found["matches"]]


def test_start_up_names_the_database_without_its_password(hosts: Hosts) -> None:
    for host in (hosts.a, hosts.b):
        log = host.log.read_text()
        [line] = [line for line in log.splitlines() if line.startswith("database ")]
        assert line.startswith(f"database {make_url(hosts.database_url).render_as_string(hide_password=True)};")
        assert "***" in line and "data directory" not in log and hosts.password not in log
        ready = httpx.get(f"{host.url}/readyz", timeout=60).json()
        assert (ready["status"], ready["backend"], ready["checks"]["database"]) == ("ready", "postgresql", "ok")


def test_enrolled_through_one_host_found_through_the_other_and_erased_everywhere(hosts: Hosts) -> None:
    name = "two-hosts-erasure"
    people = {"tony": "Tony_Blair", "colin": "Colin_Powell", "gerhard": "Gerhard_Schroeder"}
    with hosts.client(hosts.a) as a, hosts.client(hosts.b) as b:
        a.create_collection(name)
        enrolled: dict[str, list[str]] = {}
        for subject, person in people.items():
            for n in (1, 2):
                answer = a.index_faces(name, lfw(person, n), subject=subject, purpose=PURPOSE, max_faces=1)
                enrolled.setdefault(subject, []).extend(f["face_id"] for f in answer["indexed"])
        # at once, through the other host: no index to rebuild, no cache to expire
        for subject, person in people.items():
            assert subjects_found(b, name, person, 4)[0] == subject
        assert b.describe_collection(name)["face_count"] == 6
        erased = b.erase_subject(name, "tony")
        assert sorted(erased["face_ids"]) == sorted(enrolled["tony"])
        # gone at once through the first host: no match, no listing, no face to search by
        assert "tony" not in subjects_found(a, name, "Tony_Blair", 4)
        assert {f["subject"] for f in a.list_faces(name, limit=100)["faces"]} == {"colin", "gerhard"}
        with pytest.raises(FacegateHTTPError) as gone:
            a.search_face(name, enrolled["tony"][0], purpose=PURPOSE)
        assert gone.value.status == 404
        # and the single face deleted through A is gone from B
        assert a.delete_face(name, enrolled["gerhard"][0])["deleted"] == [enrolled["gerhard"][0]]
        assert enrolled["gerhard"][0] not in {f["face_id"] for f in b.list_faces(name, limit=100)["faces"]}
    only_models(hosts.a, hosts.b)


def test_concurrent_audited_writes_from_both_hosts_keep_one_chain(hosts: Hosts) -> None:
    """Enrolments and searches fired at both hosts at once, from four threads: each request
    answers 200 and leaves exactly one entry, the chain's numbers run without a gap, and
    `facegate audit verify` passes with as many entries as there are in the database."""
    name = "two-hosts-concurrent"
    before = hosts.a.counts()[2]
    request_ids: list[str] = []
    lock = threading.Lock()

    def note(fg: FacegateClient) -> None:
        with lock:
            request_ids.append(fg.last_request_id or "")

    with hosts.client(hosts.a) as a:
        a.create_collection(name)
        note(a)
    with hosts.client(hosts.b) as b:
        b.index_faces(name, lfw("Tony_Blair", 1), subject="tony", purpose=PURPOSE, max_faces=1)
        note(b)
    start = threading.Barrier(4)
    writing = threading.Event()
    writing.set()
    searches: list[int] = []

    def enrol(host: Server, person: str, subject: str) -> list[str]:
        faces = []
        with hosts.client(host) as fg:
            start.wait(timeout=60)
            for n in (1, 2, 3):
                answer = fg.index_faces(name, lfw(person, n), subject=subject, purpose=PURPOSE, max_faces=1)
                note(fg)
                faces += [f["face_id"] for f in answer["indexed"]]
        return faces

    def search(host: Server) -> None:
        done = 0
        with hosts.client(host) as fg:
            start.wait(timeout=60)
            while writing.is_set():
                assert subjects_found(fg, name, "Tony_Blair", 4)[0] == "tony"
                note(fg)
                done += 1
        searches.append(done)

    with ThreadPoolExecutor(max_workers=4) as pool:
        writers = [pool.submit(enrol, hosts.a, "Hugo_Chavez", "hugo"), pool.submit(enrol, hosts.b, "Jean_Chretien", "jean")]
        readers = [pool.submit(search, hosts.a), pool.submit(search, hosts.b)]
        indexed = [face for work in writers for face in work.result(timeout=600)]
        writing.clear()
        for work in readers:
            work.result(timeout=300)
    assert len(indexed) == 6 and min(searches) >= 1  # every reader overlapped the writers
    entries = [e for rid in request_ids for e in hosts.a.entry_for(rid)]
    assert len(entries) == len(request_ids) == 2 + 6 + sum(searches)  # one entry per request
    assert hosts.b.counts()[2] - before == len(request_ids)  # and nothing else written
    assert {e["tenant"] for e in entries} == {"press"}
    seqs = [e["seq"] for e in hosts.a.entries()]
    assert seqs == list(range(1, len(seqs) + 1))  # one chain, whichever host appended
    stored = hosts.b.counts()[2]
    verified = hosts.b.cli("audit", "verify")
    assert verified["ok"] is True and verified["first_bad_entry"] is None
    assert verified["entries"] == stored  # everything in the database, checked through the other host's CLI
    with hosts.client(hosts.b) as b:
        found = b.search(name, lfw("Hugo_Chavez", 5), purpose=PURPOSE)
        assert found["matches"][0]["subject"] == "hugo" and found["matches"][0]["face_id"] in indexed


def test_rekognition_protocol_through_either_host(hosts: Hosts) -> None:
    """A key made with one host's CLI signs requests to both: each host opens the sealed AWS
    secret with the shared credentials key file."""
    made = hosts.a.cli("key", "create", "press", "--purpose", PURPOSE)

    def rekognition(host: Server) -> Any:
        return boto3.client(
            "rekognition", endpoint_url=host.url, region_name="eu-west-1",
            aws_access_key_id=str(made["aws_access_key_id"]), aws_secret_access_key=str(made["aws_secret_access_key"]),
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    a, b = rekognition(hosts.a), rekognition(hosts.b)
    cid = "two-hosts-rekognition"
    b.create_collection(CollectionId=cid)
    [record] = b.index_faces(CollectionId=cid, Image={"Bytes": lfw("Serena_Williams", 1).read_bytes()},
                             ExternalImageId="serena-1", MaxFaces=1)["FaceRecords"]
    face_id = record["Face"]["FaceId"]
    found = a.search_faces_by_image(CollectionId=cid, Image={"Bytes": lfw("Serena_Williams", 2).read_bytes()})
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [face_id]
    assert len(hosts.b.entry_for(found["ResponseMetadata"]["RequestId"])) == 1
    assert a.delete_faces(CollectionId=cid, FaceIds=[face_id])["DeletedFaces"] == [face_id]
    again = b.search_faces_by_image(CollectionId=cid, Image={"Bytes": lfw("Serena_Williams", 2).read_bytes()})
    assert again["FaceMatches"] == []
    only_models(hosts.a, hosts.b)


def test_a_video_search_submitted_through_one_host_is_answered_through_the_other(
    hosts: Hosts, tmp_path: Path
) -> None:
    """The job and its upload live in the database: whichever host's runner takes it, the
    other host reports it, and neither keeps the upload on its disk."""
    name = "two-hosts-footage"
    video = render(tmp_path / "clip.mp4", [Appearance(lfw("Colin_Powell", 1), 0.5, 2.5, (40, 10), (60, 10))],
                   3.0, (360, 270))
    with hosts.client(hosts.a) as a, hosts.client(hosts.b) as b:
        a.create_collection(name)
        a.index_faces(name, lfw("Colin_Powell", 2), subject="colin", purpose=PURPOSE, max_faces=1)
        job_id = a.start_video_search(name, video, purpose=PURPOSE, fps=2)["job_id"]
        deadline = time.monotonic() + 240
        while (job := b.get_video_search(job_id))["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "succeeded", job
        assert [s["subject"] for s in job["results"]["subjects"]] == ["colin"]
        assert a.get_video_search(job_id)["audit_seq"] == job["audit_seq"]
    only_models(hosts.a, hosts.b)


def test_each_data_directory_holds_only_the_models(hosts: Hosts) -> None:
    with hosts.client(hosts.a) as a, hosts.client(hosts.b) as b:
        a.list_collections()
        b.list_collections()
    only_models(hosts.a, hosts.b)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                           autocommit=True)


def test_a_database_that_stops_answering_is_database_unavailable_and_never_shows_the_password(
    hosts: Hosts, postgres_admin_url: str
) -> None:
    """The database refuses every connection and drops the open ones (as a stopped server
    would): both hosts answer 503 DATABASE_UNAVAILABLE (the Rekognition door its
    InternalServerError), /readyz says so, the CLI exits 1 with the code; no answer, log
    line or message shows the password. Once it answers again, both hosts serve at once."""
    database = str(make_url(hosts.database_url).database)
    url = make_url(hosts.database_url)
    where = str(url.host or url.query.get("host"))  # the server's address (a socket directory here)
    with hosts.client(hosts.a) as a:
        a.create_collection("two-hosts-outage")
        a.index_faces("two-hosts-outage", lfw("Colin_Powell", 1), subject="colin", purpose=PURPOSE, max_faces=1)
    made = hosts.a.cli("key", "create", "press", "--purpose", PURPOSE)
    headers = {"Authorization": f"Bearer {hosts.a.keys['press']}"}
    probe = {"image": {"bytes": base64.b64encode(lfw("Colin_Powell", 3).read_bytes()).decode()}, "purpose": PURPOSE}
    with _admin(postgres_admin_url) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(database)))
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
            for host in (hosts.a, hosts.b):
                ready = httpx.get(f"{host.url}/readyz", timeout=60)
                assert ready.status_code == 503 and ready.json()["backend"] == "postgresql"
                assert ready.json()["checks"]["database"].startswith("DATABASE_UNAVAILABLE: "), ready.json()
                answers = [
                    httpx.get(f"{host.url}/v1/collections", headers=headers, timeout=60),
                    httpx.post(f"{host.url}/v1/collections/two-hosts-outage/search", headers=headers, json=probe,
                               timeout=60),
                    httpx.post(f"{host.url}/v1/collections", headers=headers, json={"collection_id": "never"},
                               timeout=60),
                    # a refusal too (no key): it is answered only once it is on the record
                    httpx.get(f"{host.url}/v1/collections", timeout=60),
                ]
                for answer in answers:
                    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "DATABASE_UNAVAILABLE"), \
                        answer.text
                signed = signed_request(f"{host.url}/", "ListCollections", {}, str(made["aws_access_key_id"]),
                                        str(made["aws_secret_access_key"]))
                aws = httpx.post(signed.url, content=signed.body, headers=dict(signed.headers.items()), timeout=60)
                assert (aws.status_code, aws.json()["__type"]) == (500, "InternalServerError"), aws.text
                assert json.loads(aws.headers["x-facegate-decision"])["code"] == "DATABASE_UNAVAILABLE"
                for answer in [ready, *answers, aws]:
                    assert hosts.password not in answer.text and "Traceback" not in answer.text
                    # where the database is (host, user, name) is for the log, not for any client
                    assert database not in answer.text and where not in answer.text, answer.text
            for as_json in (True, False):
                run = subprocess.run([str(FACEGATE), "collection", "list", *(["--json"] if as_json else [])],
                                     env=hosts.a.env(), capture_output=True, text=True, timeout=180, check=False)
                assert run.returncode == 1 and "DATABASE_UNAVAILABLE" in run.stdout + run.stderr, run.stderr
                assert hosts.password not in run.stdout + run.stderr and "Traceback" not in run.stderr
                if as_json:
                    assert json.loads(run.stdout)["error"]["code"] == "DATABASE_UNAVAILABLE"
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(database)))
    for host in (hosts.a, hosts.b):
        with hosts.client(host) as fg:
            assert subjects_found(fg, "two-hosts-outage", "Colin_Powell", 3) == ["colin"]
        assert httpx.get(f"{host.url}/readyz", timeout=60).status_code == 200
        log = host.log.read_text()
        assert "DATABASE_UNAVAILABLE" in log and hosts.password not in log and "Traceback" not in log
        assert database in log  # the operator learns where and why
