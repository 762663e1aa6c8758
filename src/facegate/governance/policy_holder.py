"""The policy in force, re-read when its file changes, never replaced by a broken one.

A governance officer edits the policy of a running service. A cheap `stat` on each access
notices the change; the file is hashed and, if its content really changed, validated. A
file that fails validation is refused with a warning (code, line and field only) and the
previous policy stays in force: a typo must not open the gate or close it for everyone.
The first load is strict for the CLI. A service worker is given a `PolicyArchive` (the
catalog's `policy_versions`): every policy that loads cleanly is kept there by version,
and a worker that (re)starts while the file is broken decides with the last good one
loaded from the same file (in server mode, not another host's policy file unless none of
its own was ever kept) instead of answering POLICY_INVALID to every caller; `stale` then
says why, for /readyz.
Archive writes run in a thread of their own: `current()` is called inside the gate's
write transaction, and SQLite has one writer.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Protocol

from facegate.errors import ErrorCode, FacegateError
from facegate.governance.policy import Policy
from facegate.governance.policy_loading import default_policy, load_policy, parse_policy

logger = logging.getLogger(__name__)

_Stamp = tuple[int, int]  # (mtime_ns, size)


class PolicyArchive(Protocol):
    """Where clean policies are kept by version (the catalog's `policy_versions`)."""

    def keep(self, policy: Policy, content: bytes) -> None: ...

    def last_good(self, source: str) -> tuple[bytes, str] | None:
        """(content, source) of the policy most recently in force, if any: the one last
        loaded from `source` (this holder's file) if there is one."""


class PolicyHolder:
    """Hands out the current policy; `path=None` means the built-in default, never reloaded."""

    def __init__(self, path: Path | None, archive: PolicyArchive | None = None) -> None:
        self._path = path
        self._archive = archive
        self._lock = threading.Lock()
        self.stale: str | None = None  # why the file in force is not the file on disk
        if path is None:
            self._policy = default_policy()
            self._stamp: _Stamp | None = None
            self._seen_sha256 = self._policy.sha256
            return
        self._stamp = self._stat(path)
        try:
            self._policy = load_policy(path)  # FILE_NOT_FOUND or POLICY_INVALID, with line and field
        except FacegateError as exc:
            kept = archive.last_good(str(path)) if archive is not None else None
            if kept is None:
                raise
            self._policy = parse_policy(kept[0], source=kept[1])
            self.stale = _why(exc)
            self._seen_sha256 = ""  # whatever the file holds next is read again
            logger.error("policy file %s refused (%s); serving the last good %s", path, self.stale,
                         self._policy.version)
            return
        self._seen_sha256 = self._policy.sha256
        self._keep(self._policy, path.read_bytes())

    def _keep(self, policy: Policy, content: bytes) -> None:
        if self._archive is not None:
            threading.Thread(target=self._archive.keep, args=(policy, content), name="facegate-policy-keep").start()

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
            self.stale = _why(exc)
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
            self.stale = _why(exc)
            return
        logger.info("policy reloaded from %s: %s -> %s", path, self._policy.version, policy.version)
        self._policy = policy
        self.stale = None
        self._keep(policy, data)


def _why(exc: OSError | FacegateError) -> str:
    """A refusal in one line: the code with line and field, never the file's content."""
    if isinstance(exc, OSError):
        return f"{ErrorCode.FILE_NOT_FOUND.value}: {exc.strerror}"
    where = ", ".join(f"{k} {exc.details[k]}" for k in ("line", "field") if exc.details.get(k) is not None)
    return f"{exc.code.value}{f' at {where}' if where else ''}"
