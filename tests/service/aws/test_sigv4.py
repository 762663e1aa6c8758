"""facegate's SigV4 verifier against botocore's signer, the independent reference.

Requests signed by botocore (varied paths, queries, headers, bodies) verify; the same
request with one byte changed, a different secret, or outside AWS's 15-minute window
does not, with AWS's error types and messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from facegate.service.aws import sigv4
from facegate.service.aws.errors import AwsError
from tests.service.aws.signing import signed_request

KEY, SECRET = "AKFGTESTTESTTESTTEST", "k8N-uHaUh6a_jqHICgyh6_e3lxMWZS01n4gAIkzo"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def _check(request, secret: str = SECRET, now: datetime = NOW, body: bytes | None = None) -> None:  # type: ignore[no-untyped-def]
    headers = {k.lower(): v for k, v in request.headers.items()}
    url = urlsplit(request.url)
    signed = sigv4.parse_authorization(headers)
    sigv4.check_time(signed, now)
    values = {name: [headers[name]] for name in signed.signed_headers if name in headers}
    if "host" not in values:
        values["host"] = [url.netloc]
    sigv4.verify(signed, secret, request.method, url.path or "/", url.query,
                 values, request.body if body is None else body)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8123/",
    "http://127.0.0.1:8123/?b=2&a=1&a=0",
    "http://localhost:9000/prefix/with%20space/",
    "http://127.0.0.1:8123/a/./b/../c",
])
@pytest.mark.parametrize("extra", [{}, {"X-Facegate-Purpose": "photo_library", "X-Facegate-Case-Reference": "CASE  42 "}])
def test_botocore_signatures_verify(url: str, extra: dict[str, str]) -> None:
    request = signed_request(url, "ListCollections", {"MaxResults": 2}, KEY, SECRET, at=NOW, headers=extra)
    _check(request)


def test_a_changed_body_or_secret_does_not_verify() -> None:
    request = signed_request("http://127.0.0.1:8123/", "DetectFaces", {"Image": {"Bytes": "AAAA"}}, KEY, SECRET, at=NOW)
    _check(request)
    with pytest.raises(AwsError) as bad_body:
        _check(request, body=request.body.replace(b"AAAA", b"AAAB"))
    assert bad_body.value.error_type == "InvalidSignatureException"
    assert "does not match the signature you provided" in bad_body.value.message
    with pytest.raises(AwsError) as bad_secret:
        _check(request, secret=SECRET[:-1] + "x")
    assert bad_secret.value.error_type == "InvalidSignatureException"


def test_the_fifteen_minute_window() -> None:
    old = signed_request("http://127.0.0.1:8123/", "ListCollections", {}, KEY, SECRET, at=NOW - timedelta(minutes=16))
    with pytest.raises(AwsError) as expired:
        _check(old)
    assert (expired.value.error_type, expired.value.status) == ("InvalidSignatureException", 400)
    assert expired.value.message.startswith("Signature expired: 20261201T144400Z is now earlier than 20261201T144500Z")
    future = signed_request("http://127.0.0.1:8123/", "ListCollections", {}, KEY, SECRET, at=NOW + timedelta(minutes=16))
    with pytest.raises(AwsError) as early:
        _check(future)
    assert early.value.message.startswith("Signature not yet current")
    _check(signed_request("http://127.0.0.1:8123/", "ListCollections", {}, KEY, SECRET, at=NOW - timedelta(minutes=14)))


@pytest.mark.parametrize(("header", "error"), [
    (None, "MissingAuthenticationTokenException"),
    ("Bearer fg_x", "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=K/20261201/eu-west-1/rekognition/aws4_request, Signature=" + "0" * 64,
     "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=K/20261201/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, "
     "Signature=" + "0" * 64, "InvalidSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=K/20261201/eu-west-1/rekognition/aws4_request, SignedHeaders=host;x-amz-date, "
     "Signature=" + "0" * 64, "InvalidSignatureException"),  # the operation left unsigned
])
def test_malformed_authorization(header: str | None, error: str) -> None:
    headers = {"x-amz-date": "20261201T150000Z"}
    if header is not None:
        headers["authorization"] = header
    with pytest.raises(AwsError) as refused:
        sigv4.parse_authorization(headers)
    assert refused.value.error_type == error


@pytest.mark.parametrize("header", ["X-Facegate-Purpose", "X-Facegate-Case-Reference"])
def test_a_governing_header_added_after_signing_is_refused(header: str) -> None:
    """A captured request cannot be replayed under another purpose or case: those headers,
    when sent, must be covered by the signature."""
    request = signed_request("http://127.0.0.1:8123/", "DetectFaces", {"Image": {"Bytes": "AAAA"}}, KEY, SECRET, at=NOW)
    _check(request)
    request.headers[header] = "victim_identification"
    with pytest.raises(AwsError) as unsigned:
        _check(request)
    assert unsigned.value.error_type == "InvalidSignatureException"
    assert unsigned.value.message == f"The '{header.lower()}' header must be signed"
