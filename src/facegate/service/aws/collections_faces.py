"""Rekognition's collection, face and user operations, mapped onto facegate's.

One function per AWS operation, named after it (as moto's responses.py keeps them): it
reads the members, calls `facegate.operations` (so the gate decides, ownership applies and
the audit entry is written exactly as for the JSON API), and shapes the answer as
botocore's service model defines it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from facegate.errors import ErrorCode, FacegateError
from facegate.operations import collections, faces
from facegate.service.aws.call import (
    MAX_PAGE, QUALITY, Answer, Call, arn, collection_of, page_token, quality_filter,
)
from facegate.service.aws.errors import AwsError
from facegate.service.aws.shapes import face_detail, stored_face, stored_face_detail
from facegate.vision.image import image_size

# --- collections ---------------------------------------------------------------------------

def create_collection(call: Call) -> Answer:
    collection_id = collection_of(call)
    gated = collections.create_collection(call.engine, call.caller, collection_id)
    return {"StatusCode": 200, "CollectionArn": arn(call, collection_id), "FaceModelVersion": call.model_version}, gated.decision


def describe_collection(call: Call) -> Answer:
    collection_id = collection_of(call)
    gated = collections.describe_collection(call.engine, call.caller, collection_id)
    stats = gated.value
    return {
        "FaceCount": stats.face_count, "UserCount": stats.subject_count,
        "FaceModelVersion": stats.collection.template_id, "CollectionARN": arn(call, collection_id, stats.collection.owner),
        "CreationTimestamp": stats.collection.created_at.timestamp(),
    }, gated.decision


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AwsError("InvalidPaginationTokenException", "NextToken is not a token facegate issued", 400) from None


def list_collections(call: Call) -> Answer:
    """Collections in id order; the token is the last id of the page."""
    size = call.params.integer("MaxResults", 0, MAX_PAGE) or 1000
    token = page_token(call)
    after = _decode(token) if token else ""
    gated = collections.list_collections(call.engine, call.caller)
    rest = [c for c in gated.value if c.collection_id > after]
    page = rest[:size]
    answer: dict[str, Any] = {
        "CollectionIds": [c.collection_id for c in page], "FaceModelVersions": [c.template_id for c in page],
    }
    if len(rest) > size:
        answer["NextToken"] = _encode(page[-1].collection_id)
    return answer, gated.decision


def delete_collection(call: Call) -> Answer:
    gated = collections.delete_collection(call.engine, call.caller, collection_of(call))
    return {"StatusCode": 200}, gated.decision


# --- faces ---------------------------------------------------------------------------------

_UNINDEXED = {ErrorCode.TOO_MANY_FACES.value: "EXCEEDS_MAX_FACES", ErrorCode.LOW_QUALITY.value: "LOW_FACE_QUALITY"}


def index_faces(call: Call) -> Answer:
    p = call.params
    collection_id, image = collection_of(call), p.image("Image")
    external = p.text("ExternalImageId")
    max_faces = p.integer("MaxFaces", 1, MAX_PAGE)
    quality = quality_filter(p.choice("QualityFilter", QUALITY))
    p.texts("DetectionAttributes")
    try:
        gated = faces.index_faces(
            call.engine, call.caller, collection_id, image, external_image_id=external,
            max_faces=max_faces, quality_filter=quality,
        )
    except FacegateError as exc:
        if exc.code is not ErrorCode.NO_FACE:
            raise
        # Rekognition answers an image without faces with no records, not an error (the
        # audit entry records NO_FACE all the same).
        empty = {"FaceRecords": [], "UnindexedFaces": [], "FaceModelVersion": call.model_version}
        return empty, {"decision": None, "code": ErrorCode.NO_FACE.value}
    result, size = gated.value, image_size(image)
    records = [
        {"Face": stored_face(stored, call.model_version), "FaceDetail": stored_face_detail(stored, size)}
        for stored in result.indexed
    ]
    unindexed = [
        {"Reasons": [_UNINDEXED.get(u.reason, "LOW_FACE_QUALITY")], **({"FaceDetail": face_detail(u.face, size)} if u.face else {})}
        for u in result.unindexed
    ]
    return {"FaceRecords": records, "UnindexedFaces": unindexed, "FaceModelVersion": call.model_version}, gated.decision


def list_faces(call: Call) -> Answer:
    p = call.params
    collection_id = collection_of(call)
    wanted = set(p.texts("FaceIds"))
    gated = faces.list_faces(
        call.engine, call.caller, collection_id, subject=p.text("UserId"),
        limit=p.integer("MaxResults", 1, MAX_PAGE) or 1000, next_token=page_token(call),
    )
    page = gated.value
    listed = [stored_face(f, call.model_version) for f in page.items if not wanted or f.face_id in wanted]
    answer: dict[str, Any] = {"Faces": listed, "FaceModelVersion": call.model_version}
    if page.next_token:
        answer["NextToken"] = page.next_token
    return answer, gated.decision


def delete_faces(call: Call) -> Answer:
    face_ids = call.params.texts("FaceIds", required=True)
    gated = faces.delete_faces(call.engine, call.caller, collection_of(call), face_ids)
    return {
        "DeletedFaces": gated.value.deleted,
        "UnsuccessfulFaceDeletions": [{"FaceId": f, "Reasons": ["FACE_NOT_FOUND"]} for f in gated.value.unknown],
    }, gated.decision


# --- users ---------------------------------------------------------------------------------

def create_user(call: Call) -> Answer:
    gated = faces.create_subject(call.engine, call.caller, collection_of(call), call.params.required_text("UserId"))
    return {}, gated.decision


def delete_user(call: Call) -> Answer:
    gated = faces.delete_subject(call.engine, call.caller, collection_of(call), call.params.required_text("UserId"))
    return {}, gated.decision


def list_users(call: Call) -> Answer:
    gated = faces.list_subjects(
        call.engine, call.caller, collection_of(call),
        limit=call.params.integer("MaxResults", 1, 500) or 500, next_token=page_token(call),
    )
    answer: dict[str, Any] = {"Users": [{"UserId": s.subject_id, "UserStatus": "ACTIVE"} for s in gated.value.items]}
    if gated.value.next_token:
        answer["NextToken"] = gated.value.next_token
    return answer, gated.decision


def associate_faces(call: Call) -> Answer:
    p = call.params
    user_id, face_ids = p.required_text("UserId"), p.texts("FaceIds", required=True, most=100)
    p.number("UserMatchThreshold")
    gated = faces.associate_faces(call.engine, call.caller, collection_of(call), user_id, face_ids)
    done = gated.value
    return {
        "AssociatedFaces": [{"FaceId": f} for f in done.associated],
        "UnsuccessfulFaceAssociations": [
            *({"FaceId": f, "UserId": user_id, "Reasons": ["FACE_NOT_FOUND"]} for f in done.unknown),
            *({"FaceId": f, "UserId": user_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]} for f in done.conflicting),
        ],
        "UserStatus": "ACTIVE",
    }, gated.decision


def disassociate_faces(call: Call) -> Answer:
    p = call.params
    user_id, face_ids = p.required_text("UserId"), p.texts("FaceIds", required=True, most=100)
    gated = faces.disassociate_faces(call.engine, call.caller, collection_of(call), user_id, face_ids)
    done = gated.value
    return {
        "DisassociatedFaces": [{"FaceId": f} for f in done.associated],
        "UnsuccessfulFaceDisassociations": [
            *({"FaceId": f, "UserId": user_id, "Reasons": ["FACE_NOT_FOUND"]} for f in done.unknown),
            *({"FaceId": f, "UserId": user_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]} for f in done.conflicting),
        ],
        "UserStatus": "ACTIVE",
    }, gated.decision


# The operations facegate answers, with the gate operation a refusal before the gate is
# recorded under (an unreadable body, a bad signature, a throttled key).
