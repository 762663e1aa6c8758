"""The code -> status map, the docs that state it, and the per-key token bucket (no server)."""

from __future__ import annotations

import re
from pathlib import Path

from facegate.errors import ErrorCode
from facegate.service.app import create_app
from facegate.service.errors import STATUS
from facegate.service.ratelimit import RateLimiter
from facegate.settings import Settings
from tests.service.server import REPO

ERRORS_DOC = REPO / "docs" / "errors.md"
API_DOC = REPO / "docs" / "api.md"


def test_every_code_has_a_status_and_only_server_faults_are_500() -> None:
    assert set(STATUS) == set(ErrorCode)
    server_faults = {ErrorCode.INTERNAL, ErrorCode.UNKNOWN_MODEL, ErrorCode.TEMPLATE_KEY_MISMATCH,
                     ErrorCode.AUDIT_CHAIN_BROKEN, ErrorCode.CREDENTIALS_KEY_INVALID,
                     ErrorCode.VIDEO_JOB_INTERRUPTED,
                     ErrorCode.INVALID_SETTINGS,  # the server's own configuration
                     ErrorCode.DATABASE_EXTENSION_MISSING, ErrorCode.DATABASE_NOT_EMPTY}  # its database's
    assert {code for code, status in STATUS.items() if status == 500} == server_faults
    # 503, try again: an overloaded worker, an installation that cannot sign checkpoints, a
    # database server (server mode) that does not answer
    assert {code for code, status in STATUS.items() if status > 500} == {
        ErrorCode.OVERLOADED, ErrorCode.AUDIT_SIGNING_KEY_MISSING, ErrorCode.AUDIT_SIGNING_KEY_INVALID,
        ErrorCode.DATABASE_UNAVAILABLE,
    }


def test_docs_errors_table_states_the_status_the_service_answers() -> None:
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", ERRORS_DOC.read_text(), re.MULTILINE)
    documented = {code: int(status) for code, status in rows}
    assert documented == {code.value: status for code, status in STATUS.items()}


def test_every_endpoint_is_in_docs_api(tmp_path: Path) -> None:
    text = API_DOC.read_text()
    paths = create_app(Settings(home=tmp_path)).openapi()["paths"]
    missing = [f"{method.upper()} {path}" for path, methods in paths.items() for method in methods
               if f"`{method.upper()} {path}`" not in text]
    assert not missing, f"endpoints missing from docs/api.md: {missing}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_limit_passes_then_waits_for_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock)  # one token a second, bursts of 60
    assert [limiter.take("k1") for _ in range(60)] == [0] * 60
    assert limiter.take("k1") == 1  # the next token in a second
    assert limiter.take("k2") == 0  # other keys have their own bucket
    clock.now += 0.5
    assert limiter.take("k1") == 1
    clock.now += 0.6
    assert limiter.take("k1") == 0
    clock.now += 3600
    assert [limiter.take("k1") for _ in range(60)] == [0] * 60  # refilled, never beyond the burst
    assert limiter.take("k1") > 0


def test_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(0, FakeClock())
    assert not limiter.enabled
    assert all(limiter.take("k") == 0 for _ in range(10_000))
