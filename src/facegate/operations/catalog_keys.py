"""`catalog rekey`: re-seal every template under a new key, audited, resumable.

Two audit entries frame the work: `phase: start` when the target is recorded (so an
interrupted run is on the record), `phase: finish` in the transaction that switches the
catalog's fingerprint. The engine must be built with `rekeying=True` and the key in use
(FACEGATE_TEMPLATE_KEY): the old key opens the templates, the new one seals them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.governance import AuditEntry, Operation, append_entry
from facegate.store import rekey as rekey_store
from facegate.store.catalog import list_collections
from facegate.store.crypto import TemplateCodec
from facegate.store.index_sync import delete_index_files


@dataclass(frozen=True, slots=True)
class RekeyReport:
    resealed: int  # by this run (a resumed run counts only what was left)
    templates: int  # in the catalog, all now under the new key
    from_key: str
    to_key: str
    audit_seq: int

    def to_dict(self) -> dict[str, object]:
        return {"resealed": self.resealed, "templates": self.templates, "from_key": self.from_key,
                "to_key": self.to_key, "audit_seq": self.audit_seq}


def rekey(
    engine: Facegate, caller: Caller, new_key: bytes, progress: Callable[[int, int], None] = lambda d, t: None
) -> RekeyReport:
    """Re-seal every template with `new_key` and make it the catalog's key."""
    old, new = engine.codec, TemplateCodec(new_key)

    def start(session: Session, entry: AuditEntry) -> None:
        rekey_store.begin(session, old, new)
        append_entry(session, entry.with_details(phase="start", from_key=old.fingerprint, to_key=new.fingerprint))

    engine.gate.run_recorded(caller, Operation.CATALOG_REKEY, start)
    resealed = rekey_store.reseal_all(engine.sessions, old, new, progress)
    thumbnails = rekey_store.reseal_thumbnails(engine.sessions, old, new)  # sealed like templates

    def finish(session: Session, entry: AuditEntry) -> RekeyReport:
        states = rekey_store.finish(session, new)
        entry = entry.with_details(phase="finish", from_key=old.fingerprint, to_key=new.fingerprint,
                                   resealed=resealed, templates=sum(states.values()),
                                   **({"thumbnails_resealed": thumbnails} if thumbnails else {}))
        seq = append_entry(session, entry).seq
        directory = engine.vectors.directory  # None in server mode: embeddings were cleared batch by batch
        for collection in list_collections(session) if directory is not None else ():
            delete_index_files(directory, collection.collection_id)  # saved plain indexes hold plain vectors
        return RekeyReport(resealed, sum(states.values()), old.fingerprint, new.fingerprint, seq)

    return engine.gate.run_recorded(caller, Operation.CATALOG_REKEY, finish)
