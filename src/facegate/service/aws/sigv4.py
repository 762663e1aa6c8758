"""Signature Version 4, checked the way AWS checks it: canonical request, string to sign,
signing key, and a constant-time comparison.

Pure functions over what arrived on the wire (method, raw path, raw query, headers, body)
and the secret of the access key the request names: the server recomputes the signature
from the bytes it received, so a body or a signed header changed in transit fails. The
signed time must lie within 15 minutes of the server's clock (AWS's window), so a
captured request cannot be replayed later, and the time and the operation
(`X-Amz-Target`) must be among the signed headers, so neither can be changed in transit. Refusals carry AWS's error types and messages.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from facegate.service.aws.errors import AwsError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rekognition"
GOVERNING_HEADERS = ("x-facegate-case-reference", "x-facegate-purpose")  # signed whenever sent
WINDOW = timedelta(minutes=15)
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the Authorization header claims: who signed, for which scope, over which headers."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _incomplete(message: str) -> AwsError:
    return AwsError("IncompleteSignatureException", message, 400)


def parse_authorization(headers: Mapping[str, str]) -> SignedRequest:
    """The signature's claims, or the error AWS gives for a missing or malformed header."""
    header = headers.get("authorization")
    if not header:
        raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
    match = _AUTH.match(header.strip())
    if match is None:
        raise _incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters "
            f"of algorithm {ALGORITHM}"
        )
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise _incomplete("Credential must have the form <key>/<date>/<region>/<service>/aws4_request")
    access_key_id, date, region, service, _ = parts
    signed = tuple(match["signed"].split(";"))
    if "host" not in signed or list(signed) != sorted(signed):
        raise _incomplete("SignedHeaders must be sorted, lower-case, and include 'host'")
    amz_date = headers.get("x-amz-date", "")
    if not amz_date:
        raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")
    if service != SERVICE:
        raise AwsError("InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'", 400)
    # The time and the operation are never left unsigned; nor is a header that governs the
    # request when it is sent (facegate's purpose and case): else a captured request could
    # be replayed within the window under another declared purpose, blamed on the key.
    present = [name for name in GOVERNING_HEADERS if name in headers]
    for needed in ("x-amz-date", "x-amz-target", *present):
        if needed not in signed:
            raise AwsError("InvalidSignatureException", f"The '{needed}' header must be signed", 400)
    return SignedRequest(access_key_id, date, region, service, signed, match["signature"], amz_date)


def check_time(signed: SignedRequest, now: datetime) -> None:
    """Within AWS's 15 minutes of the server clock, and scoped to the same day it was signed."""
    try:
        moment = datetime.strptime(signed.amz_date, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(f"X-Amz-Date must be of the form YYYYMMDDTHHMMSSZ, got {signed.amz_date!r}") from None
    stamp = now.astimezone(UTC).strftime(_TIME_FORMAT)
    if moment < now - WINDOW:
        earliest = (now - WINDOW).strftime(_TIME_FORMAT)
        raise AwsError(
            "InvalidSignatureException",
            f"Signature expired: {signed.amz_date} is now earlier than {earliest} ({stamp} - 15 min.)", 400,
        )
    if moment > now + WINDOW:
        latest = (now + WINDOW).strftime(_TIME_FORMAT)
        raise AwsError(
            "InvalidSignatureException",
            f"Signature not yet current: {signed.amz_date} is still later than {latest} ({stamp} + 15 min.)", 400,
        )
    if signed.date != signed.amz_date[:8]:
        raise AwsError("InvalidSignatureException", "Credential scope date does not match X-Amz-Date", 400)


def _canonical_uri(raw_path: str) -> str:
    """AWS (outside S3) normalises the path and encodes it once more, as botocore signs it."""
    segments: list[str] = []
    for segment in unquote(raw_path or "/").split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and path != "/":
        path += "/"
    return quote(quote(path, safe="/~"), safe="/~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        key, _, value = item.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(
    method: str, raw_path: str, raw_query: str, headers: Mapping[str, list[str]],
    signed_headers: tuple[str, ...], body: bytes,
) -> str:
    """`headers`: every value of each header, by lower-case name, as received."""
    lines = []
    for name in signed_headers:
        values = headers.get(name)
        if values is None:
            raise AwsError("InvalidSignatureException", f"Signed header {name!r} is missing from the request", 400)
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}\n")
    return "\n".join([
        method.upper(), _canonical_uri(raw_path), _canonical_query(raw_query), "".join(lines),
        ";".join(signed_headers), hashlib.sha256(body).hexdigest(),
    ])


def string_to_sign(signed: SignedRequest, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, signed.amz_date, signed.scope, digest])


def signing_key(secret: str, signed: SignedRequest) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (signed.date, signed.region, signed.service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def verify(
    signed: SignedRequest, secret: str, method: str, raw_path: str, raw_query: str,
    headers: Mapping[str, list[str]], body: bytes,
) -> None:
    """InvalidSignatureException unless the signature is the one `secret` makes of this request."""
    canonical = canonical_request(method, raw_path, raw_query, headers, signed.signed_headers, body)
    to_sign = string_to_sign(signed, canonical)
    expected = hmac.new(signing_key(secret, signed), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise AwsError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            400,
        )
