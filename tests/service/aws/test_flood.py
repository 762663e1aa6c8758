"""A flood of unsigned or badly signed requests at the Rekognition door (`POST /`) is held
to the per-address limit and recorded once per address and minute, exactly like a flood of
bad bearer keys at the JSON API (tests/service/test_abuse.py): both doors draw from the
same bucket of a client address and write to the same aggregated window.

Each flood comes from a loopback address of its own, so 127.0.0.1 (the other tests'
address) keeps its whole bucket.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from tests.service.aws.signing import signed_request
from tests.service.server import Server

PER_ADDRESS = 30  # FACEGATE_UNAUTHENTICATED_PER_MINUTE's default, which the shared server keeps


def client_from(address: str) -> httpx.Client:
    return httpx.Client(timeout=60, transport=httpx.HTTPTransport(local_address=address))


def entries_of(server: Server, address: str) -> list[dict[str, Any]]:
    return [e for e in server.entries() if json.loads(str(e["details"])).get("client") == address]


def test_a_flood_of_bad_signatures_is_throttled_and_recorded_once_per_minute(
    aws_server: Server, credentials: dict[str, dict[str, Any]]
) -> None:
    address = f"127.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 2}"
    cred = credentials["archive"]
    before = aws_server.counts()
    entries_before = aws_server.counts()[2]
    answers = []
    with client_from(address) as client:
        for i in range(PER_ADDRESS + 20):
            if i % 3 == 0:  # no signature at all
                answer = client.post(aws_server.url + "/", content=b"{}", headers={
                    "X-Amz-Target": "RekognitionService.ListCollections", "Content-Type": "application/x-amz-json-1.1",
                })
            elif i % 3 == 1:  # a signature made with the wrong secret
                forged = signed_request(aws_server.url + "/", "ListCollections", {}, cred["aws_access_key_id"], "wrong")
                answer = client.post(forged.url, content=forged.body, headers=dict(forged.headers.items()))
            else:  # a bad bearer key at the JSON API, from the same address
                answer = client.get(aws_server.url + "/v1/collections", headers={"Authorization": "Bearer fg_0_wrong"})
            answers.append(answer)
        kinds = [(a.status_code, a.json()["__type"] if "__type" in a.json() else a.json()["error"]["code"]) for a in answers]
        assert set(kinds[:PER_ADDRESS]) == {
            (403, "MissingAuthenticationTokenException"), (400, "InvalidSignatureException"), (401, "UNAUTHENTICATED"),
        }
        # Over the limit: the AWS door answers ThrottlingException (as Rekognition does, 500,
        # with Retry-After), the JSON API 429, both before any signature or key is checked.
        assert set(kinds[PER_ADDRESS:]) == {(500, "ThrottlingException"), (429, "RATE_LIMITED")}
        throttled = next(a for a in answers[PER_ADDRESS:] if a.status_code == 500)
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.headers["content-type"] == "application/x-amz-json-1.1"
        assert json.loads(throttled.headers["x-facegate-decision"])["code"] == "RATE_LIMITED"
        assert throttled.headers["x-amzn-requestid"]
        # A valid signature from the flooding address waits too: the address is refused first.
        good = signed_request(aws_server.url + "/", "ListCollections", {}, cred["aws_access_key_id"],
                              cred["aws_secret_access_key"])
        held = client.post(good.url, content=good.body, headers=dict(good.headers.items()))
        assert (held.status_code, held.json()["__type"]) == (500, "ThrottlingException")

    mine = entries_of(aws_server, address)
    entries_after = aws_server.counts()[2]
    assert entries_after - entries_before == len(mine) <= 2  # 2 only if a minute ended mid-flood
    first = mine[0]
    assert json.loads(str(first["details"]))["aggregated"] == "open"
    assert (first["tenant"], first["decision"], first["code"]) == (None, "deny", "UNAUTHENTICATED")
    assert first["request_id"] == answers[0].headers["x-amzn-requestid"]
    assert aws_server.counts()[:2] == before[:2]
    # Another address is served as ever.
    good = signed_request(aws_server.url + "/", "ListCollections", {}, cred["aws_access_key_id"], cred["aws_secret_access_key"])
    assert httpx.post(good.url, content=good.body, headers=dict(good.headers.items())).status_code == 200
