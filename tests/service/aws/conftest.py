"""One real server for the Rekognition protocol tests, on the 2020 moratorium example policy.

`facegate serve` runs in a subprocess (real uvicorn); tenants and keys are made with the
CLI as an administrator would, each key printed with its AWS credentials. Every test
works in collections of its own, so the modules share the server in any order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.service.server import EXAMPLE_POLICY, Server, running_server

CASE = "CASE-2026-0117"
RATE_LIMIT = 120  # requests a minute per key: above any test's pace, reachable by the throttle test
MAX_IMAGE_BYTES = 2_000_000  # small enough for the ImageTooLargeException test to send
TENANTS = (
    ("archive", "commercial", "photo_library", "operator"),
    ("metro-police", "law_enforcement", "criminal_investigation,victim_identification", "operator"),
    ("polaris", "nonprofit", "victim_identification", "operator"),
)
# name -> (tenant, key create arguments)
KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "archive": ("archive", ("--purpose", "photo_library")),
    "archive-free": ("archive", ()),
    "archive-pages": ("archive", ("--purpose", "photo_library")),
    "archive-cli": ("archive", ("--purpose", "photo_library")),
    "archive-example": ("archive", ("--purpose", "photo_library")),
    "archive-errors": ("archive", ("--purpose", "photo_library")),
    "archive-throttle": ("archive", ("--purpose", "photo_library")),
    "police-investigation": ("metro-police", ("--purpose", "criminal_investigation", "--case-reference", CASE)),
    "police-victims": ("metro-police", ("--purpose", "victim_identification", "--case-reference", CASE)),
    "polaris": ("polaris", ("--purpose", "victim_identification", "--case-reference", CASE)),
    "revoked": ("archive", ("--purpose", "photo_library")),
    # keys naming their holders, for the tenant-boundary tests (archive owns, polaris intrudes)
    "archive-held": ("archive", ("--purpose", "photo_library", "--holder", "Ada (archivist)")),
    "polaris-held": ("polaris", ("--purpose", "victim_identification", "--case-reference", CASE, "--holder", "Mallory")),
}


@pytest.fixture(scope="session")
def aws_server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("rekognition")
    settings = {"FACEGATE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT), "FACEGATE_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES)}
    with running_server(home, model_cache, policy=EXAMPLE_POLICY, tenants=TENANTS, settings=settings) as server:
        yield server


@pytest.fixture(scope="session")
def credentials(aws_server: Server) -> dict[str, dict[str, Any]]:
    """Each key of KEYS as `facegate key create --json` printed it (AWS credentials included)."""
    names = list(KEYS)
    made = aws_server.cli_all([["key", "create", KEYS[n][0], *KEYS[n][1]] for n in names])
    found = dict(zip(names, made, strict=True))
    aws_server.cli_all([["key", "revoke", str(found["revoked"]["key_id"])]])
    return found


ClientFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def rekognition(aws_server: Server, credentials: dict[str, dict[str, Any]]) -> ClientFactory:
    """`rekognition("archive")`: the real boto3 client, with only endpoint_url pointing at facegate
    (no retries, so each error is seen once as the server sent it)."""

    def make(name: str, region: str = "eu-west-1", **overrides: Any) -> Any:
        cred = credentials[name]
        return boto3.client(
            "rekognition", endpoint_url=aws_server.url, region_name=region,
            aws_access_key_id=overrides.get("access_key", cred["aws_access_key_id"]),
            aws_secret_access_key=overrides.get("secret_key", cred["aws_secret_access_key"]),
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    return make
