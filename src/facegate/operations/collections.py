"""Collections: create, list, describe, delete (CreateCollection and friends)."""

from __future__ import annotations

from facegate.engine import Facegate
from facegate.gate import Caller, Gated, Outcome
from facegate.governance import Operation
from facegate.store import catalog
from facegate.store.catalog import CollectionInfo, CollectionStats
from facegate.vision.embed import DIMENSION


def create_collection(
    engine: Facegate, caller: Caller, collection_id: str, description: str = "", retention_days: int | None = None
) -> Gated[CollectionInfo]:
    """A new, empty collection bound to this engine's template space (`retention_days`:
    faces older than that are erased by `facegate retention apply`)."""
    return engine.gate.run(
        caller, Operation.CREATE_COLLECTION, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(catalog.create_collection(
            session, collection_id=collection_id, description=description, model_id=engine.model_id,
            template_id=engine.template_id, dimension=DIMENSION, now=engine.now(), retention_days=retention_days,
        )),
    )


def list_collections(engine: Facegate, caller: Caller) -> Gated[list[CollectionInfo]]:
    return engine.gate.run(
        caller, Operation.LIST,
        commit=lambda session, _d, _p: Outcome(catalog.list_collections(session)),
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
        "retention_days": info.retention_days,
    }
