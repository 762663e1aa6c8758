"""Requests signed by botocore's own SigV4 signer, at a moment the test chooses.

The independent reference for facegate's verifier: botocore computes the canonical
request, string to sign and signature; only the signing time is set here (to sign a
request as a client with a wrong clock would), using the signer's own steps.
"""

from __future__ import annotations

import json
from datetime import datetime

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_request(
    url: str, target: str, body: dict[str, object] | bytes, access_key: str, secret_key: str,
    region: str = "eu-west-1", at: datetime | None = None, headers: dict[str, str] | None = None,
) -> AWSRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={
        "X-Amz-Target": f"RekognitionService.{target}",
        "Content-Type": "application/x-amz-json-1.1",
        **(headers or {}),
    })
    signer = SigV4Auth(Credentials(access_key, secret_key), "rekognition", region)
    if at is None:
        signer.add_auth(request)
        return request
    request.context["timestamp"] = at.strftime(SIGV4_TIMESTAMP)
    signer._modify_request_before_signing(request)  # noqa: SLF001 - botocore's own steps, with our clock
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)  # noqa: SLF001
    return request
