"""Abuse against a real server (`facegate serve`, uvicorn, one worker): floods before
authentication, slow and abandoned bodies, busy analysis slots, oversized images, odd
bodies and tokens. Each answer is checked for its exact status and code, and the audit
log for what it keeps.

Each flood comes from a loopback address of its own (127.0.x.y): the per-address limit
then never touches the other tests' requests, which come from 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.service.server import Server, lfw, running_server

COLLECTION = "abuse"
PER_ADDRESS = 5
BODY_TIMEOUT = 2.0
BUDGET = 24 * 1024 * 1024
JPEG = lfw("Colin_Powell", 2).read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("abuse")
    settings = {
        "FACEGATE_UNAUTHENTICATED_PER_MINUTE": str(PER_ADDRESS), "FACEGATE_RATE_LIMIT_PER_MINUTE": "0",
        "FACEGATE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT), "FACEGATE_MAX_CONCURRENT_ANALYSES": "1",
        "FACEGATE_MAX_BODY_BYTES_IN_FLIGHT": str(BUDGET),
    }
    tenants = (("abuser", "commercial", "photo_library", "operator"),)
    with running_server(home, model_cache, settings=settings, tenants=tenants) as running:
        running.client(running.keys["abuser"]).create_collection(COLLECTION)
        yield running


@pytest.fixture()
def address() -> str:
    """A loopback source address no other test uses."""
    return f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 2}"


def http(server: Server, address: str = "127.0.0.1", key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60,
                        transport=httpx.HTTPTransport(local_address=address))


def entries(server: Server, where: str = "TRUE", **params: object) -> list[dict[str, object]]:
    return server.entries(where, **params)


def entries_of(server: Server, address: str) -> list[dict[str, object]]:
    """The entries that name `address` as the refused client (aggregated refusals)."""
    return [e for e in entries(server) if json.loads(str(e["details"])).get("client") == address]


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def wait_for(condition, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    """Poll until `condition()` is truthy (the server writes in its own time); its value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)
    return value


def test_an_unauthenticated_flood_is_refused_before_auth_and_recorded_once_per_minute(
    server: Server, address: str
) -> None:
    before = len(entries(server))
    with http(server, address) as flood, http(server, address, "fg_0123456789abcdef_wrong") as wrong:
        answers = [error((flood if i % 2 else wrong).get("/v1/collections")) for i in range(40)]
        assert answers[:PER_ADDRESS] == [(401, "UNAUTHENTICATED")] * PER_ADDRESS
        assert set(answers[PER_ADDRESS:]) == {(429, "RATE_LIMITED")}
        limited = flood.get("/v1/collections")
        assert int(limited.headers["Retry-After"]) >= 1 and limited.status_code == 429
    mine = entries_of(server, address)
    assert 1 <= len(mine) <= 2  # 2 only if a minute ended mid-flood
    # Nothing else was written meanwhile but the closing counts of other addresses' minutes
    # (earlier tests' floods, flushed in the background whenever their minute ends).
    others = [e for e in entries(server)[before:] if e not in mine]
    assert all(json.loads(str(e["details"])).get("aggregated") == "closed" for e in others), others
    assert json.loads(str(mine[0]["details"]))["aggregated"] == "open"
    assert (mine[0]["tenant"], mine[0]["decision"], mine[0]["code"]) == (None, "deny", "UNAUTHENTICATED")
    with http(server, key=server.keys["abuser"]) as legit:  # another address is served as ever
        assert legit.get("/v1/collections").status_code == 200


def test_authenticated_denials_stay_one_entry_each(server: Server) -> None:
    with http(server, key=server.keys["abuser"]) as client:
        ids = []
        for _ in range(3):  # no purpose: denied by the policy, each on the record
            response = client.post("/v1/detect", json={"image": {"bytes": base64.b64encode(JPEG).decode()}})
            assert error(response) == (403, "PURPOSE_REQUIRED")
            ids.append(response.headers["x-request-id"])
    assert [len(server.entry_for(rid)) for rid in ids] == [1, 1, 1]


def test_a_page_token_of_many_digits_is_400(server: Server) -> None:
    token = base64.urlsafe_b64encode(b"r" + b"9" * 40).decode().rstrip("=")
    with http(server, key=server.keys["abuser"]) as client:
        response = client.get(f"/v1/collections/{COLLECTION}/faces", params={"next_token": token})
    assert error(response) == (400, "INVALID_ARGUMENT")


def test_a_json_body_with_another_media_type_is_415(server: Server) -> None:
    body = json.dumps({"collection_id": "never-made"}).encode()
    with http(server, key=server.keys["abuser"]) as client:
        for media in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": media} if media else {}
            response = client.post("/v1/collections", content=body, headers=headers)
            assert error(response) == (415, "UNSUPPORTED_MEDIA_TYPE"), media
            [entry] = server.entry_for(response.headers["x-request-id"])
            assert entry["code"] == "UNSUPPORTED_MEDIA_TYPE"
        image = {"image": {"bytes": base64.b64encode(JPEG).decode()}, "purpose": "photo_library"}
        response = client.post("/v1/detect", content=json.dumps(image), headers={"Content-Type": "text/plain"})
        assert error(response) == (415, "UNSUPPORTED_MEDIA_TYPE")
        assert client.get("/v1/collections/never-made").status_code == 404


def test_a_repeated_form_field_is_400(server: Server) -> None:
    with http(server, key=server.keys["abuser"]) as client:
        response = client.post(
            "/v1/detect", files={"image": ("a.jpg", JPEG, "image/jpeg")},
            data={"purpose": ["photo_library", "research"]},
        )
    assert error(response) == (400, "INVALID_ARGUMENT")
    assert "'purpose' is given more than once" in response.json()["error"]["message"]


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(server: Server) -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, "PNG")  # 64 megapixels in a few kilobytes
    assert len(out.getvalue()) < 100_000
    with http(server, key=server.keys["abuser"]) as client:
        response = client.post("/v1/detect", files={"image": ("big.png", out.getvalue(), "image/png")},
                               data={"purpose": "photo_library"})
    assert error(response) == (413, "IMAGE_TOO_LARGE")
    assert "8000x8000" in response.json()["error"]["message"]


def _partial(server: Server, path: str, key: str, length: int, sent: bytes,
             media: str = "application/json") -> socket.socket:
    """A request whose body announces `length` bytes and sends only `sent` (a slow client)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: {media}\r\nContent-Length: {length}\r\n\r\n")
    sock.sendall(head.encode() + sent)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, object], dict[str, str]]:
    """The answer to a `_partial` request, read until the server closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), json.loads(body), headers


def test_a_body_that_does_not_arrive_in_time_is_408(server: Server) -> None:
    started = time.monotonic()
    with _partial(server, "/v1/detect", server.keys["abuser"], 10_000, b'{"image": ') as sock:
        status, body, headers = _answer(sock)
    assert (status, body["error"]["code"]) == (408, "REQUEST_TIMEOUT")
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 20
    assert headers["connection"] == "close"
    [entry] = server.entry_for(str(body["error"]["request_id"]))
    assert (entry["code"], entry["tenant"]) == ("REQUEST_TIMEOUT", "abuser")


def test_a_client_that_goes_away_mid_body_leaves_an_audit_entry_not_a_traceback(server: Server) -> None:
    before = len(entries(server, "code = 'CLIENT_DISCONNECTED'"))
    sock = _partial(server, "/v1/detect", server.keys["abuser"], 100_000, b'{"image": {"bytes": "AAAA')
    sock.close()
    [entry] = wait_for(lambda: entries(server, "code = 'CLIENT_DISCONNECTED'")[before:])
    assert (entry["tenant"], entry["decision"], entry["operation"]) == ("abuser", "deny", "detect")
    assert "Traceback" not in server.log.read_text()


def _large_png() -> bytes:
    """About 20 megapixels of a real face: seconds of analysis on a shared core."""
    photo = Image.open(lfw("Colin_Powell", 1)).convert("RGB")
    out = io.BytesIO()
    photo.resize((4500, 4500), Image.Resampling.BICUBIC).save(out, "PNG", compress_level=1)
    return out.getvalue()


def test_a_worker_with_every_analysis_slot_busy_answers_503_with_retry_after(server: Server) -> None:
    large = _large_png()
    assert len(large) < BUDGET // 2
    with http(server, key=server.keys["abuser"]) as client, ThreadPoolExecutor(1) as pool:
        def small() -> httpx.Response:
            return client.post("/v1/detect", files={"image": ("a.jpg", JPEG, "image/jpeg")},
                               data={"purpose": "photo_library"})

        def meet_a_busy_slot() -> tuple[httpx.Response, Future[httpx.Response]] | None:
            """Probes while the large one runs; None if none met it busy (a probe may hold the
            slot just when the large body is in, and the large one is refused: try again)."""
            running = pool.submit(client.post, "/v1/detect", files={"image": ("big.png", large, "image/png")},
                                  data={"purpose": "photo_library"})
            while not running.done():
                # a probe that is refused as soon as it has a slot (not an image) holds it for a
                # few milliseconds; spaced a tenth of a second apart, the large one almost always
                # finds the slot free when its body is in, and its analysis lasts seconds
                time.sleep(0.1)
                probe = client.post("/v1/detect", files={"image": ("x.jpg", b"not an image", "image/jpeg")},
                                    data={"purpose": "photo_library"})
                if probe.status_code == 503:
                    return probe, running
                assert error(probe) == (415, "INVALID_IMAGE")
            return None

        response, running = next(filter(None, (meet_a_busy_slot() for _ in range(10))))
        assert error(response) == (503, "OVERLOADED") and response.headers["Retry-After"] == "1"
        assert "image analyses of this worker are busy" in response.json()["error"]["message"]
        assert client.get("/v1/collections").status_code == 200  # other work goes on
        assert running.result().status_code == 200 and running.result().json()["faces"]
        served = small()
        assert served.status_code == 200 and len(served.json()["faces"]) == 1


def test_bodies_in_flight_are_bounded_per_worker_and_slow_ones_hold_only_what_they_sent(server: Server) -> None:
    held = BUDGET - 64 * 1024  # the next body of 300 kB does not fit; it has 2 s (the body deadline)
    hog = _partial(server, "/v1/detect", server.keys["abuser"], BUDGET + 1024, b"{" + b" " * (held - 1))
    try:
        with http(server, key=server.keys["abuser"]) as client:
            def refused() -> httpx.Response | None:
                answer = client.post("/v1/detect", files={"image": ("a.jpg", JPEG * 20, "image/jpeg")},
                                     data={"purpose": "photo_library"})
                return answer if answer.status_code == 503 else None

            response = wait_for(refused)
            assert error(response) == (503, "OVERLOADED") and response.headers["Retry-After"] == "1"
            assert "bytes of bodies already" in response.json()["error"]["message"]
            small = client.post("/v1/collections", json={"collection_id": "budget-ok"})
            assert small.status_code == 201  # small bodies still fit
    finally:
        hog.close()


def test_the_data_directory_and_catalog_are_private(server: Server) -> None:
    assert server.home.stat().st_mode & 0o777 == 0o700
    assert (server.home / "catalog.sqlite3").stat().st_mode & 0o777 == 0o600
