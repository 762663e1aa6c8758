"""The policy in force, re-read when its file changes, never replaced by a broken one.

A governance officer edits the policy of a running service. A cheap `stat` on each access
notices the change; the file is hashed and, if its content really changed, validated. A
file that fails validation is refused with a warning (code, line and field only) and the
previous policy stays in force: a typo must not open the gate or close it for everyone.
The first load is strict: a service does not start on a broken policy.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from facegate.errors import FacegateError
from facegate.governance.policy import Policy
from facegate.governance.policy_loading import default_policy, load_policy, parse_policy

logger = logging.getLogger(__name__)

_Stamp = tuple[int, int]  # (mtime_ns, size)


class PolicyHolder:
    """Hands out the current policy; `path=None` means the built-in default, never reloaded."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        if path is None:
            self._policy = default_policy()
            self._stamp: _Stamp | None = None
        else:
            self._stamp = self._stat(path)
            self._policy = load_policy(path)
        self._seen_sha256 = self._policy.sha256

    @property
    def path(self) -> Path | None:
        return self._path

    @staticmethod
    def _stat(path: Path) -> _Stamp | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Policy:
        """The policy to decide with now, after picking up a valid change to the file."""
        if self._path is None:
            return self._policy
        stamp = self._stat(self._path)
        if stamp == self._stamp:
            return self._policy
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._reload(self._path)
            return self._policy

    def _reload(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            logger.warning(
                "policy file %s unreadable (%s); keeping %s", path, exc.strerror, self._policy.version
            )
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._seen_sha256:
            return
        self._seen_sha256 = digest
        try:
            policy = parse_policy(data, source=str(path))
        except FacegateError as exc:
            logger.warning(
                "policy file %s refused (%s at line %s, field %s); keeping %s",
                path,
                exc.code.value,
                exc.details.get("line"),
                exc.details.get("field"),
                self._policy.version,
            )
            return
        logger.info("policy reloaded from %s: %s -> %s", path, self._policy.version, policy.version)
        self._policy = policy
