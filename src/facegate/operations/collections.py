"""Collections: create, list, describe, delete (CreateCollection and friends), and sharing.

A collection belongs to the tenant that creates it (the local operator's when the CLI runs
without --tenant). Listing shows what the caller owns or was granted; every other
operation on a collection is checked by the gate (owner or grant, else "no collection").
"""

from __future__ import annotations

from facegate.engine import Facegate
from facegate.gate import Caller, Gated, Outcome
from collections.abc import Sequence

from sqlalchemy.orm import Session

from facegate.errors import ErrorCode, FacegateError
from facegate.governance import LOCAL_OPERATOR, Operation
from facegate.governance.permissions import GRANTABLE_OPERATIONS, expand_operations
from facegate.store import catalog, grants
from facegate.store.catalog import CollectionInfo, CollectionStats
from facegate.store.governance_tables import TenantRow
from facegate.store.grants import Grant


def tenant_name(caller: Caller) -> str:
    """Whose a collection is: the caller's tenant, or the local operator."""
    return caller.tenant or LOCAL_OPERATOR


def create_collection(
    engine: Facegate, caller: Caller, collection_id: str, description: str = "", retention_days: int | None = None,
    keep_thumbnails: bool = False,
) -> Gated[CollectionInfo]:
    """A new, empty collection bound to this engine's template space (`retention_days`:
    faces older than that are erased by `facegate retention apply`; `keep_thumbnails`: each
    face keeps a small sealed crop for reviewers, see docs/governance.md)."""
    return engine.gate.run(
        caller, Operation.CREATE_COLLECTION, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(catalog.create_collection(
            session, collection_id=collection_id, description=description, model_id=engine.model_id,
            template_id=engine.space.template_id, dimension=engine.space.dimension, now=engine.now(),
            owner=tenant_name(caller), retention_days=retention_days, keep_thumbnails=keep_thumbnails,
        ), details={"owner": tenant_name(caller), **({"keep_thumbnails": True} if keep_thumbnails else {})}),
    )


def list_collections(engine: Facegate, caller: Caller) -> Gated[list[CollectionInfo]]:
    """The collections the caller owns or holds a grant on (the local operator included:
    it sees its own, not every tenant's)."""
    return engine.gate.run(
        caller, Operation.LIST,
        commit=lambda session, _d, _p: Outcome(catalog.list_collections(
            session, only=grants.visible_collection_ids(session, tenant_name(caller))
        )),
    )


def describe_collection(engine: Facegate, caller: Caller, collection_id: str) -> Gated[CollectionStats]:
    return engine.gate.run(
        caller, Operation.LIST, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(catalog.describe_collection(session, collection_id=collection_id)),
    )


def delete_collection(engine: Facegate, caller: Caller, collection_id: str) -> Gated[CollectionStats]:
    """Delete a collection with all its faces and subjects, then its index files."""
    gated = engine.gate.run(
        caller, Operation.DELETE_COLLECTION, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(catalog.delete_collection(session, collection_id=collection_id)),
    )
    engine.vectors.drop(collection_id)
    return gated


def _operations(names: Sequence[str]) -> list[str]:
    """Operation names of a grant (`search` means the searches, video included); only shareable ones."""
    try:
        chosen = expand_operations(list(names))
    except ValueError as exc:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, str(exc), field="operations") from None
    if not chosen or not chosen <= GRANTABLE_OPERATIONS:
        known = ", ".join(sorted(["search", *GRANTABLE_OPERATIONS]))
        raise FacegateError(
            ErrorCode.INVALID_ARGUMENT, f"operations to share must be among: {known}", field="operations"
        )
    return sorted(op.value for op in chosen)


def share(
    engine: Facegate, caller: Caller, collection_id: str, grantee: str, operations: Sequence[str],
    purposes: Sequence[str] | None = None,
) -> Gated[list[Grant]]:
    """Grant `grantee` the named operations on a collection the caller owns (operation
    `share`, which only the owner passes), for `purposes` only if given; audited."""

    def commit(session: Session, _d: object, _p: object) -> Outcome[list[Grant]]:
        # checked after the gate: a non-owner learns nothing, and a bad request is audited
        chosen, wanted = _operations(operations), sorted(set(purposes)) if purposes else None
        for purpose in wanted or ():
            if purpose not in engine.policy.rules.purposes:
                raise FacegateError(ErrorCode.PURPOSE_UNKNOWN, f"purpose {purpose!r} is not defined by the policy")
        _grantee(session, grantee, caller)
        made = grants.grant(
            session, collection_id=collection_id, grantee=grantee, operations=chosen, purposes=wanted,
            by=tenant_name(caller), now=engine.now(),
        )
        return Outcome(made, details={"action": "grant", "grantee": grantee, "operations": chosen, "purposes": wanted})

    return engine.gate.run(caller, Operation.SHARE, collection_id=collection_id, commit=commit)


def unshare(
    engine: Facegate, caller: Caller, collection_id: str, grantee: str, operations: Sequence[str] | None = None
) -> Gated[list[str]]:
    """Take back grants (all of `grantee`'s on the collection when no operations are named);
    the next request of the grantee is refused. Audited."""

    def commit(session: Session, _d: object, _p: object) -> Outcome[list[str]]:
        chosen = _operations(operations) if operations else None
        _grantee(session, grantee, caller)
        revoked = grants.revoke(session, collection_id=collection_id, grantee=grantee, operations=chosen)
        return Outcome(revoked, details={"action": "revoke", "grantee": grantee, "operations": revoked})

    return engine.gate.run(caller, Operation.SHARE, collection_id=collection_id, commit=commit)


def _grantee(session: Session, grantee: str, caller: Caller) -> None:
    if grantee == tenant_name(caller):
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "a collection's owner needs no grant", field="tenant")
    if grantee != LOCAL_OPERATOR and session.get(TenantRow, grantee) is None:
        raise FacegateError(ErrorCode.TENANT_NOT_FOUND, f"no tenant named {grantee!r}", tenant=grantee)


def stats_dict(stats: CollectionStats) -> dict[str, object]:
    return {**info_dict(stats.collection), "face_count": stats.face_count, "subject_count": stats.subject_count}


def info_dict(info: CollectionInfo) -> dict[str, object]:
    return {
        "collection_id": info.collection_id,
        "description": info.description,
        "model_id": info.model_id,
        "template_id": info.template_id,
        "dimension": info.dimension,
        "created_at": info.created_at.isoformat(),
        "owner": info.owner,
        "retention_days": info.retention_days,
        "keep_thumbnails": info.keep_thumbnails,
    }
