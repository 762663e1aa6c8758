"""Which template key a catalog is sealed with, checked before a process writes anything.

A process given the wrong FACEGATE_TEMPLATE_KEY (or none, or one where the catalog is
plain) used to store new faces under that key: the catalog then held templates that the
correctly keyed service could not open. Now the catalog records the key's fingerprint
(`catalog_settings.template_key`, never the key) and every process compares its own before
its first write:

- `check` reads only (the catalog file stays byte-for-byte as it was when it refuses). On a
  catalog from before the fingerprint existed it derives the fingerprint from the
  templates themselves: each sealed blob names its key id, a plain blob names none.
- `claim` records the fingerprint of a catalog that has none yet: at creation, or an old
  catalog with no templates. Templates that disagree among themselves (plain beside
  sealed, or two keys: what the old bug left behind) are claimed for the configured key
  only if some templates are already sealed with it; `facegate catalog rekey` then
  re-seals the plain ones.
- `ensure_writable` repeats the comparison inside each transaction that stores templates,
  so a long-running process cannot write under a key that a rekey has since replaced.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.store.catalog_meta import REKEY_TARGET, TEMPLATE_KEY, insert_setting_once, read_setting
from facegate.store.crypto import MAGIC, PLAINTEXT, TemplateCodec, fingerprint_of_key_id

log = logging.getLogger(__name__)

# Each template's state in one pass: empty for plain, else its key id (SQL both backends speak).
_STATES = text(
    "SELECT CASE WHEN substr(template, 1, 4) = :magic THEN substr(template, 5, 8) ELSE :plain END AS state, "
    "count(*) FROM faces GROUP BY state"
)


def template_states(conn: Connection | Session) -> dict[str, int]:
    """Fingerprint -> number of templates stored in that state."""
    if isinstance(conn, Connection) and not conn.dialect.has_table(conn, "faces"):
        return {}
    rows = conn.execute(_STATES, {"magic": MAGIC, "plain": b""}).all()
    return {(fingerprint_of_key_id(bytes(s)) if s else PLAINTEXT): int(n) for s, n in rows}


def _describe(fingerprint: str) -> str:
    return "no key (plain templates)" if fingerprint == PLAINTEXT else f"key {fingerprint}"


def mismatch(expected: str, configured: str, hint: str = "") -> FacegateError:
    return FacegateError(
        ErrorCode.TEMPLATE_KEY_MISMATCH,
        f"the catalog's templates are sealed with {_describe(expected)}, this process has "
        f"{_describe(configured)} (FACEGATE_TEMPLATE_KEY); nothing was written{hint}",
        catalog_key=expected, configured_key=configured,
    )


def expected_fingerprint(conn: Connection | Session) -> str | None:
    """The recorded fingerprint, else the one the templates agree on, else None (no
    templates, or templates in several states)."""
    recorded = read_setting(conn, TEMPLATE_KEY)
    if recorded is not None:
        return recorded
    states = template_states(conn)
    return next(iter(states)) if len(states) == 1 else None


def check(engine: Engine, codec: TemplateCodec, *, rekeying: bool = False) -> None:
    """Refuse (TEMPLATE_KEY_MISMATCH) a process whose key does not open this catalog; reads only.

    `rekeying`: the caller is `catalog rekey`, which may resume an interrupted re-seal."""
    with engine.connect() as conn:
        target = read_setting(conn, REKEY_TARGET)
        expected = expected_fingerprint(conn)
        states = template_states(conn) if expected is None else {}
        conn.rollback()
    if target is not None and not rekeying:
        raise FacegateError(
            ErrorCode.TEMPLATE_KEY_MISMATCH,
            f"a rekey to {target} was interrupted: finish it with `facegate catalog rekey` "
            "before anything else uses this catalog; nothing was written",
            rekey_target=target,
        )
    if expected is not None and expected != codec.fingerprint:
        raise mismatch(expected, codec.fingerprint)
    if expected is None and states and codec.fingerprint not in states:
        found = ", ".join(f"{n} with {_describe(f)}" for f, n in sorted(states.items()))
        raise mismatch(next(iter(sorted(states))), codec.fingerprint, f" (templates found: {found})")


def claim(engine: Engine, codec: TemplateCodec) -> None:
    """Record this process's key for a catalog that has no fingerprint yet (under the write lock)."""
    with engine.begin() as conn:
        if read_setting(conn, TEMPLATE_KEY) is not None:
            return
        states = template_states(conn)
        if len(states) > 1:
            others = sum(n for f, n in states.items() if f != codec.fingerprint)
            log.warning(
                "%d templates are not sealed with the configured key; `facegate catalog rekey` re-seals "
                "plain ones", others,
            )
        recorded = insert_setting_once(conn, TEMPLATE_KEY, codec.fingerprint)
    if recorded != codec.fingerprint:  # another process claimed it first, with another key
        raise mismatch(recorded, codec.fingerprint)


def ensure_writable(session: Session, codec: TemplateCodec) -> None:
    """Inside a write transaction: the catalog still expects this process's key."""
    if read_setting(session, REKEY_TARGET) is not None:
        raise FacegateError(
            ErrorCode.TEMPLATE_KEY_MISMATCH, "templates are being re-sealed (catalog rekey): try again after it"
        )
    recorded = read_setting(session, TEMPLATE_KEY)
    if recorded is not None and recorded != codec.fingerprint:
        raise mismatch(recorded, codec.fingerprint)


def record_from_templates(conn: Connection) -> None:
    """Migration step 4: an existing catalog's fingerprint, read from its templates when
    they agree; with none, or with disagreeing ones, the first process to open it claims."""
    states = template_states(conn)
    if len(states) == 1:
        insert_setting_once(conn, TEMPLATE_KEY, next(iter(states)))
