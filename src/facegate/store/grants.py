"""Who a collection belongs to and what its owner shared: the facts the gate decides on.

A collection belongs to the tenant that created it; its owner may grant another tenant
named operations on it (optionally for named purposes only) and take them back. Grants
are rows read on every request, so a revocation holds from the next request on. The
decision itself (owner or grant, else "no such collection") is the gate's; this module
only stores and reads. Operations are their names here (store/ knows nothing of
governance); none of these functions commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from facegate.store.catalog import as_utc
from facegate.store.tables import CollectionGrantRow, CollectionRow


@dataclass(frozen=True, slots=True)
class Grant:
    collection_id: str
    grantee: str
    operation: str
    purposes: tuple[str, ...] | None  # None: any purpose
    granted_by: str
    granted_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection_id": self.collection_id,
            "grantee": self.grantee,
            "operation": self.operation,
            "purposes": list(self.purposes) if self.purposes is not None else None,
            "granted_by": self.granted_by,
            "granted_at": self.granted_at.isoformat(),
        }


def _grant(row: CollectionGrantRow) -> Grant:
    purposes = tuple(row.purposes) if row.purposes is not None else None
    return Grant(row.collection_id, row.grantee, row.operation, purposes, row.granted_by, as_utc(row.granted_at))


def owner_and_grants(
    session: Session, collection_id: str, tenant: str
) -> tuple[str, list[tuple[str, frozenset[str] | None]]] | None:
    """The owner of a collection and the (operation, purposes) granted to `tenant`; None if
    there is no such collection. Two indexed reads whether the collection exists or not."""
    found = session.execute(
        select(CollectionRow.collection_id, CollectionRow.owner).where(CollectionRow.collection_id == collection_id)
    ).first()
    rows = session.scalars(
        select(CollectionGrantRow).where(
            CollectionGrantRow.collection_id == collection_id, CollectionGrantRow.grantee == tenant
        )
    ).all()
    if found is None:
        return None
    owner = found.owner or "local"  # rows from before owners were backfilled by the migration
    return owner, [(r.operation, frozenset(r.purposes) if r.purposes is not None else None) for r in rows]


def visible_collection_ids(session: Session, tenant: str) -> set[str]:
    """Collections `tenant` owns or holds any grant on."""
    granted = select(CollectionGrantRow.collection_id).where(CollectionGrantRow.grantee == tenant)
    query = select(CollectionRow.collection_id).where(
        or_(CollectionRow.owner == tenant, CollectionRow.collection_id.in_(granted))
    )
    return set(session.scalars(query))


def grant(
    session: Session, *, collection_id: str, grantee: str, operations: Iterable[str],
    purposes: Sequence[str] | None, by: str, now: datetime,
) -> list[Grant]:
    """Grant `operations` (replacing earlier grants of the same operations); all grants of
    `grantee` on the collection afterwards."""
    for operation in sorted(set(operations)):
        session.execute(delete(CollectionGrantRow).where(
            CollectionGrantRow.collection_id == collection_id, CollectionGrantRow.grantee == grantee,
            CollectionGrantRow.operation == operation,
        ))
        session.add(CollectionGrantRow(
            collection_id=collection_id, grantee=grantee, operation=operation,
            purposes=sorted(set(purposes)) if purposes is not None else None, granted_by=by, granted_at=as_utc(now),
        ))
    session.flush()
    return grants_of(session, collection_id, grantee)


def revoke(session: Session, *, collection_id: str, grantee: str, operations: Iterable[str] | None) -> list[str]:
    """Take back `operations` (None: every grant) from `grantee`; the operations revoked."""
    query = select(CollectionGrantRow).where(
        CollectionGrantRow.collection_id == collection_id, CollectionGrantRow.grantee == grantee
    )
    if operations is not None:
        query = query.where(CollectionGrantRow.operation.in_(list(operations)))
    rows = session.scalars(query).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return sorted(r.operation for r in rows)


def grants_of(session: Session, collection_id: str, grantee: str | None = None) -> list[Grant]:
    query = select(CollectionGrantRow).where(CollectionGrantRow.collection_id == collection_id)
    if grantee is not None:
        query = query.where(CollectionGrantRow.grantee == grantee)
    rows = session.scalars(query.order_by(CollectionGrantRow.grantee, CollectionGrantRow.operation))
    return [_grant(r) for r in rows]
