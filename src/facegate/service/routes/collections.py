"""Collections: create, list, describe, delete (Rekognition's CreateCollection and friends),
and the owner's grants to other tenants (`PUT`/`DELETE /v1/collections/{id}/grants/{tenant}`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from facegate.governance import Operation
from facegate.operations import collections as ops
from facegate.service.admission import gated
from facegate.service.deps import CallerDep, EngineDep, TenantDep
from facegate.service.responses import (
    CollectionCreated, CollectionDeleted, CollectionDescribed, CollectionList, GrantsOut, GrantsRevoked,
)
from facegate.service.routes import api_router
from facegate.service.schemas import CollectionIdPath, CreateCollectionRequest, GrantRequest, TenantPath

router = api_router("/v1/collections", "collections")


@router.post("", status_code=201, response_model=CollectionCreated,
             openapi_extra=gated(Operation.CREATE_COLLECTION))
def create_collection(body: CreateCollectionRequest, engine: EngineDep, tenant: TenantDep) -> dict[str, Any]:
    """Create an empty collection, bound to the template space of the model in use."""
    caller = tenant.caller(body.purpose, body.case_reference)
    done = ops.create_collection(engine, caller, body.collection_id, body.description, body.retention_days,
                                 keep_thumbnails=body.keep_thumbnails)
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


@router.put("/{collection_id}/grants/{tenant}", response_model=GrantsOut, openapi_extra=gated(Operation.SHARE))
def share(collection_id: CollectionIdPath, tenant: TenantPath, body: GrantRequest, engine: EngineDep,
          owner: TenantDep) -> dict[str, Any]:
    """Owner only: grant `tenant` the named operations (for the named purposes only, if given).

    Grants of the same operations are replaced; the policy's collection rules still apply.
    """
    caller = owner.caller(body.purpose, body.case_reference)
    done = ops.share(engine, caller, collection_id, tenant, body.operations, body.purposes)
    return {"grants": [g.to_dict() for g in done.value], "decision": done.decision.to_dict()}


@router.delete("/{collection_id}/grants/{tenant}", response_model=GrantsRevoked,
               openapi_extra=gated(Operation.SHARE))
def unshare(
    collection_id: CollectionIdPath, tenant: TenantPath, engine: EngineDep, caller: CallerDep,
    operations: Annotated[list[str] | None, Query(max_length=16, description="Only these; omitted: all.")] = None,
) -> dict[str, Any]:
    """Owner only: take grants back; the tenant's next request is refused."""
    done = ops.unshare(engine, caller, collection_id, tenant, operations)
    return {"revoked": done.value, "decision": done.decision.to_dict()}
