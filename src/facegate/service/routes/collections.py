"""Collections: create, list, describe, delete (Rekognition's CreateCollection and friends)."""

from __future__ import annotations

from typing import Any

from facegate.governance import Operation
from facegate.operations import collections as ops
from facegate.service.admission import gated
from facegate.service.deps import CallerDep, EngineDep
from facegate.service.responses import CollectionCreated, CollectionDeleted, CollectionDescribed, CollectionList
from facegate.service.routes import api_router
from facegate.service.schemas import CollectionIdPath, CreateCollectionRequest

router = api_router("/v1/collections", "collections")


@router.post("", status_code=201, response_model=CollectionCreated,
             openapi_extra=gated(Operation.CREATE_COLLECTION))
def create_collection(body: CreateCollectionRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    """Create an empty collection, bound to the template space of the model in use."""
    done = ops.create_collection(engine, caller, body.collection_id, body.description, body.retention_days)
    return {**ops.info_dict(done.value), "decision": done.decision.to_dict()}


@router.get("", response_model=CollectionList, openapi_extra=gated(Operation.LIST))
def list_collections(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    done = ops.list_collections(engine, caller)
    return {"collections": [ops.info_dict(c) for c in done.value], "decision": done.decision.to_dict()}


@router.get("/{collection_id}", response_model=CollectionDescribed, openapi_extra=gated(Operation.LIST))
def describe_collection(collection_id: CollectionIdPath, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    """A collection with its face and subject counts."""
    done = ops.describe_collection(engine, caller, collection_id)
    return {**ops.stats_dict(done.value), "decision": done.decision.to_dict()}


@router.delete("/{collection_id}", response_model=CollectionDeleted,
               openapi_extra=gated(Operation.DELETE_COLLECTION))
def delete_collection(collection_id: CollectionIdPath, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    """Delete a collection with every face and subject in it, from catalog and index."""
    done = ops.delete_collection(engine, caller, collection_id)
    return {"deleted": ops.stats_dict(done.value), "decision": done.decision.to_dict()}
