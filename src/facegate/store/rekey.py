"""Re-sealing every template under a new key, in short transactions that a crash cannot spoil.

A rekey first records its target (`catalog_settings.rekey_target`): from then on no other
process opens the catalog (store/template_key.py) until it is finished. Each batch reads
templates in row order and re-seals those not yet under the new key, in its own
transaction; a blob already sealed with the new key is skipped, so a run that was killed
half-way resumes where it stopped and never seals twice. The switch of the recorded
fingerprint, the end of the target and the audit entry commit together, only once no
template is left under the old key.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from facegate.errors import ErrorCode, FacegateError
from facegate.store import embeddings
from facegate.store.catalog_meta import REKEY_TARGET, TEMPLATE_KEY, read_setting, write_setting
from facegate.store.crypto import TemplateCodec, fingerprint_of_key_id, sealed_key_id
from facegate.store.governance_tables import ReviewRow
from facegate.store.tables import FaceRow
from facegate.store.template_key import template_states

BATCH = 256
_PLAIN = TemplateCodec(None)


def begin(session: Session, old: TemplateCodec, new: TemplateCodec) -> None:
    """Record the target, or check that an interrupted run was heading to the same key."""
    if new.fingerprint == old.fingerprint:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "the new template key is the key in use")
    target = read_setting(session, REKEY_TARGET)
    if target is not None and target != new.fingerprint:
        raise FacegateError(
            ErrorCode.TEMPLATE_KEY_MISMATCH,
            f"an interrupted rekey was heading to {target}, not to the key given: finish it with that key",
            rekey_target=target,
        )
    write_setting(session, REKEY_TARGET, new.fingerprint)


def reseal_all(
    sessions: sessionmaker[Session], old: TemplateCodec, new: TemplateCodec,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Re-seal every template not yet under `new`, one committed batch at a time; how many.

    Plain templates (left by the old bug beside sealed ones) are sealed too: they need no key.
    """
    resealed, after = 0, 0
    with sessions() as session:
        total = int(session.scalar(select(func.count()).select_from(FaceRow)) or 0)
    done = 0
    while True:
        with sessions.begin() as session:
            rows = session.execute(
                select(FaceRow.row_id, FaceRow.template).where(FaceRow.row_id > after)
                .order_by(FaceRow.row_id).limit(BATCH)
            ).all()
            changed = []
            for row_id, blob in rows:
                if new.seals(blob):
                    continue
                template = _open(old, blob)
                session.execute(update(FaceRow).where(FaceRow.row_id == row_id).values(template=new.encode(template)))
                changed.append((row_id, template))
            embeddings.write(session, new, changed)  # server mode: no plaintext copy beside a sealed blob
            resealed += len(changed)
        if not rows:
            return resealed
        after = rows[-1][0]
        done += len(rows)
        progress(done, total)


def _open(old: TemplateCodec, blob: bytes) -> np.ndarray:
    key_id = sealed_key_id(blob)
    if key_id is None:
        return _PLAIN.decode(blob)
    if old.seals(blob):
        return old.decode(blob)
    raise FacegateError(
        ErrorCode.TEMPLATE_KEY_MISMATCH,
        f"a template is sealed with {fingerprint_of_key_id(key_id)}, neither the key in use nor the new one: "
        "it cannot be re-sealed without that key",
    )


def reseal_thumbnails(sessions: sessionmaker[Session], old: TemplateCodec, new: TemplateCodec) -> int:
    """Re-seal kept face thumbnails and leads' probe crops as templates are (same batches,
    same resumption: a blob already under `new` is skipped); how many."""
    resealed = 0
    for key, column in ((FaceRow.row_id, FaceRow.thumbnail), (ReviewRow.review_id, ReviewRow.probe_thumbnail)):
        after = 0
        while True:
            with sessions.begin() as session:
                rows = session.execute(
                    select(key, column).where(key > after, column.is_not(None)).order_by(key).limit(BATCH)
                ).all()
                for row_id, blob in rows:
                    if new.seals(blob):
                        continue
                    session.execute(update(key.class_).where(key == row_id).values(
                        {column.key: new.seal_thumbnail(_open_thumbnail(old, blob))}
                    ))
                    resealed += 1
            if not rows:
                break
            after = rows[-1][0]
    return resealed


def _open_thumbnail(old: TemplateCodec, blob: bytes) -> bytes:
    key_id = sealed_key_id(blob)
    if key_id is None:
        return _PLAIN.open_thumbnail(blob)
    if old.seals(blob):
        return old.open_thumbnail(blob)
    raise FacegateError(
        ErrorCode.TEMPLATE_KEY_MISMATCH,
        f"a thumbnail is sealed with {fingerprint_of_key_id(key_id)}, neither the key in use nor the new one",
    )


def finish(session: Session, new: TemplateCodec) -> dict[str, int]:
    """In the transaction of the audit entry: switch the fingerprint once every template is
    under `new`; the states found, for the entry."""
    states = template_states(session)
    left = {f: n for f, n in states.items() if f != new.fingerprint}
    if left:
        raise FacegateError(
            ErrorCode.TEMPLATE_KEY_MISMATCH,
            f"{sum(left.values())} templates are still under another key; run the rekey again",
            left=left,
        )
    write_setting(session, TEMPLATE_KEY, new.fingerprint)
    write_setting(session, REKEY_TARGET, None)
    return states

