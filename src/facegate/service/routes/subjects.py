"""Subjects (Rekognition's users): create, associate faces, list, and erase (right to erasure)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from facegate.governance import Operation
from facegate.operations import faces as ops
from facegate.service.admission import gated
from facegate.service.deps import CallerDep, EngineDep, TenantDep
from facegate.service.responses import FacesAssociated, SubjectCreated, SubjectErased, SubjectList
from facegate.service.routes import api_router
from facegate.service.schemas import AssociateFacesRequest, CollectionIdPath, CreateSubjectRequest, SubjectPath
from facegate.store.subjects import SubjectInfo

router = api_router("/v1/collections/{collection_id}/subjects", "subjects")


def subject_dict(info: SubjectInfo) -> dict[str, Any]:
    return {"subject": info.subject_id, "face_count": info.face_count, "attributes": dict(info.attributes),
            "created_at": info.created_at.isoformat()}


@router.post("", status_code=201, response_model=SubjectCreated, openapi_extra=gated(Operation.CREATE_SUBJECT))
def create_subject(collection_id: CollectionIdPath, body: CreateSubjectRequest, engine: EngineDep,
                   tenant: TenantDep) -> dict[str, Any]:
    caller = tenant.caller(body.purpose, body.case_reference)
    done = ops.create_subject(engine, caller, collection_id, body.subject, body.attributes)
    return {**subject_dict(done.value), "decision": done.decision.to_dict()}


@router.get("", response_model=SubjectList, openapi_extra=gated(Operation.LIST))
def list_subjects(
    collection_id: CollectionIdPath, engine: EngineDep, caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_token: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    done = ops.list_subjects(engine, caller, collection_id, limit=limit, next_token=next_token)
    return {"subjects": [subject_dict(s) for s in done.value.items], "next_token": done.value.next_token,
            "decision": done.decision.to_dict()}


@router.post("/{subject}/faces", response_model=FacesAssociated, openapi_extra=gated(Operation.ASSOCIATE))
def associate_faces(collection_id: CollectionIdPath, subject: SubjectPath, body: AssociateFacesRequest,
                    engine: EngineDep, tenant: TenantDep) -> dict[str, Any]:
    """Attach enrolled faces to a subject; faces of another subject are left as they are."""
    caller = tenant.caller(body.purpose, body.case_reference)
    done = ops.associate_faces(engine, caller, collection_id, subject, body.face_ids)
    a = done.value
    return {"associated": a.associated, "unknown": a.unknown, "conflicting": a.conflicting,
            "decision": done.decision.to_dict()}


@router.delete("/{subject}", response_model=SubjectErased, openapi_extra=gated(Operation.ERASE))
def erase_subject(collection_id: CollectionIdPath, subject: SubjectPath, engine: EngineDep,
                  caller: CallerDep) -> dict[str, Any]:
    """Right to erasure: the subject and every face of it leave catalog and index together."""
    done = ops.erase_subject(engine, caller, collection_id, subject)
    return {"erased": done.value.subject_id, "face_ids": done.value.face_ids, "decision": done.decision.to_dict()}
