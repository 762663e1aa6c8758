"""Operations fixtures: a user cache directory of each test's own, and server mode's file
contract checked as every server-mode test ends (tests/backend.py)."""

from tests.backend import host_cache, server_mode_writes_no_files  # noqa: F401 - autouse fixtures
