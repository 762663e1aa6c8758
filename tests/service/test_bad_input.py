"""Bad input over HTTP: each gets its status and stable code, and changes nothing stored
but the one audit entry that records the refusal (under the request id of the answer).

Refusals before any decision (a body that is too large, unreadable or malformed) carry
their code in the entry itself (`rule` request:invalid); refusals after the policy allowed
the operation (an image that does not decode) are recorded by the gate with the error in
the entry's details. Either way the chain still verifies.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.service.server import Server, lfw

COLLECTION = "intake"
SEARCH = f"/v1/collections/{COLLECTION}/search"
INDEX = f"/v1/collections/{COLLECTION}/faces"
JPEG = lfw("Colin_Powell", 2).read_bytes()


@functools.cache
def png(width: int, height: int, colour: int = 128) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def zip_file() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("face.jpg", JPEG)
    return out.getvalue()


def as_json(image: bytes, **fields: Any) -> dict[str, Any]:
    return {"json": {"image": {"bytes": base64.b64encode(image).decode()}, "purpose": "photo_library", **fields}}


def as_upload(image: bytes, **fields: Any) -> dict[str, Any]:
    return {"files": {"image": ("upload.jpg", image, "image/jpeg")}, "data": {"purpose": "photo_library", **fields}}


def sixty_megabytes() -> Iterator[bytes]:
    """A streamed body with no Content-Length: the server must stop reading it at the cap."""
    for _ in range(60):
        yield b"0" * (1024 * 1024)


@dataclass(frozen=True)
class Bad:
    label: str
    path: str
    request: Callable[[], dict[str, Any]]
    status: int
    code: str
    method: str = "POST"


CASES = [
    Bad("truncated JPEG", SEARCH, lambda: as_json(JPEG[: len(JPEG) // 2]), 415, "INVALID_IMAGE"),
    Bad("truncated JPEG, uploaded for enrolment", INDEX, lambda: as_upload(JPEG[:3000], subject="x"), 415,
        "INVALID_IMAGE"),
    Bad("random bytes", SEARCH, lambda: as_json(os.urandom(20_000)), 415, "INVALID_IMAGE"),
    Bad("random bytes, uploaded", SEARCH, lambda: as_upload(os.urandom(20_000)), 415, "INVALID_IMAGE"),
    Bad("a 15000x15000 PNG", SEARCH, lambda: as_json(png(15_000, 15_000)), 413, "IMAGE_TOO_LARGE"),
    Bad("a 15000x15000 PNG for enrolment", INDEX, lambda: as_upload(png(15_000, 15_000)), 413, "IMAGE_TOO_LARGE"),
    Bad("a zip", SEARCH, lambda: as_json(zip_file()), 415, "INVALID_IMAGE"),
    Bad("base64 that is not base64", SEARCH,
        lambda: {"json": {"image": {"bytes": "this is *not* base64!"}, "purpose": "photo_library"}}, 400,
        "INVALID_ARGUMENT"),
    Bad("a 60 MB body (Content-Length)", SEARCH,
        lambda: {"content": b"0" * (60 * 1024 * 1024), "headers": {"content-type": "application/json"}}, 413,
        "REQUEST_TOO_LARGE"),
    Bad("a 60 MB body (streamed)", INDEX,
        lambda: {"content": sixty_megabytes(), "headers": {"content-type": "application/json"}}, 413,
        "REQUEST_TOO_LARGE"),
    Bad("a missing purpose", SEARCH, lambda: {"json": {"image": {"bytes": base64.b64encode(JPEG).decode()}}}, 403,
        "PURPOSE_REQUIRED"),
    Bad("a missing purpose on enrolment", INDEX, lambda: {"files": {"image": ("a.jpg", JPEG, "image/jpeg")}}, 403,
        "PURPOSE_REQUIRED"),
    Bad("a misspelt field", SEARCH, lambda: as_json(JPEG, purpse="photo_library"), 422, "VALIDATION_ERROR"),
    Bad("JSON that does not parse", SEARCH,
        lambda: {"content": b'{"image": {"bytes": "', "headers": {"content-type": "application/json"}}, 422,
        "VALIDATION_ERROR"),
    Bad("max_results of zero", SEARCH, lambda: as_json(JPEG, max_results=0), 422, "VALIDATION_ERROR"),
    Bad("an upload without its image part", SEARCH, lambda: {"files": {"photo": ("a.jpg", JPEG)},
                                                            "data": {"purpose": "photo_library"}}, 422,
        "VALIDATION_ERROR"),
    Bad("a body that is neither JSON nor multipart", SEARCH,
        lambda: {"content": JPEG, "headers": {"content-type": "image/jpeg"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    Bad("an image without a face", SEARCH, lambda: as_json(png(160, 120)), 400, "NO_FACE"),
    Bad("an unknown collection", "/v1/collections/no-such-collection/search", lambda: as_json(JPEG), 404,
        "COLLECTION_NOT_FOUND"),
    Bad("a collection id outside the alphabet", "/v1/collections/bad%20id!/faces", dict, 422,
        "VALIDATION_ERROR", "GET"),
]


@pytest.fixture(scope="module")
def intake(server: Server, keys: dict[str, str]) -> Iterator[httpx.Client]:
    """A collection with two enrolled faces, and a raw HTTP client holding the tenant's key."""
    with server.client(keys["intake"]) as fg:
        fg.create_collection(COLLECTION)
        for n in (1, 3):
            fg.index_faces(COLLECTION, lfw("Colin_Powell", n), subject="colin", purpose="photo_library")
        yield fg.http


def refusal_code(entry: dict[str, Any]) -> str | None:
    """The code an entry records: its own (refused before or by the decision) or the error after an allow."""
    return entry["code"] or json.loads(str(entry["details"])).get("error")


@pytest.mark.parametrize("bad", CASES, ids=[c.label for c in CASES])
def test_bad_input_is_refused_and_changes_nothing_but_the_audit_log(
    bad: Bad, server: Server, intake: httpx.Client
) -> None:
    before = server.counts()
    response = intake.request(bad.method, bad.path, **bad.request())
    body = response.json()
    assert (response.status_code, body["error"]["code"]) == (bad.status, bad.code), body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert set(body) == {"error"} and body["error"]["message"]
    after = server.counts()
    assert after[:2] == before[:2], "faces or subjects changed"
    assert after[2] == before[2] + 1, "not exactly one audit entry"
    [entry] = server.entry_for(response.headers["x-request-id"])
    assert refusal_code(entry) == bad.code and entry["tenant"] == "intake"


def test_refusals_never_echo_the_image(intake: httpx.Client) -> None:
    secret = base64.b64encode(b"\x89PNG not really" * 10).decode()
    response = intake.post(SEARCH, json={"image": {"bytes": secret}, "purpose": "photo_library", "max_results": -1})
    assert response.status_code == 422
    assert secret not in response.text


def test_the_chain_verifies_after_the_refusals(server: Server, keys: dict[str, str], intake: httpx.Client) -> None:
    with server.client(keys["watchdog"]) as auditor:
        verified = auditor.verify_audit()
    assert verified["ok"] is True and verified["first_bad_entry"] is None
