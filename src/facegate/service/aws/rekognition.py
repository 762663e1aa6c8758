"""Rekognition's face operations, each mapped onto the facegate operation that does it.

One function per AWS operation, named after it (as moto's responses.py keeps them): it
reads the members, calls `facegate.operations` (so the gate decides, ownership applies
and the audit entry is written exactly as for the JSON API), and shapes the answer as
botocore's service model defines it. Nothing here touches the catalog except to read,
for faces the gate has just returned, the metadata Rekognition's `Face` shape carries.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gated, Limits
from facegate.governance import Decision, Operation
from facegate.operations import collections, faces, search, vision
from facegate.service.aws.errors import AwsError
from facegate.service.aws.params import Params, invalid
from facegate.service.aws.shapes import (
    bounding_box, compared_face, face_detail, percent, stored_face, stored_face_detail,
)
from facegate.store.faces import StoredFace, by_face_ids
from facegate.vision.image import image_size
from facegate.vision.types import QualityFilter

QUALITY = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")
MAX_PAGE = 4096


@dataclass(frozen=True, slots=True)
class Call:
    engine: Facegate
    caller: Caller
    region: str
    params: Params

    @property
    def model_version(self) -> str:
        return self.engine.template_id


Answer = tuple[dict[str, Any], Decision | None]
Handler = Callable[[Call], Answer]


def _quality(value: str | None) -> QualityFilter:
    """AUTO is facegate's default filter (LOW), as Rekognition's AUTO is its own default."""
    return QualityFilter.LOW if value in (None, "AUTO") else QualityFilter(value)


def _collection(call: Call) -> str:
    return call.params.required_text("CollectionId")


def _arn(call: Call, collection_id: str) -> str:
    return f"arn:aws:rekognition:{call.region}:{call.caller.tenant}:collection/{collection_id}"


def _stored(call: Call, collection_id: str, face_ids: list[str]) -> dict[str, StoredFace]:
    """Catalog metadata of faces the gate has just returned to this caller (box, image id)."""
    with call.engine.sessions.begin() as session:
        return by_face_ids(session, collection_id, face_ids)


def _face(call: Call, stored: dict[str, StoredFace], face_id: str, subject: str | None, external: str | None) -> dict[str, Any]:
    found = stored.get(face_id)
    if found is not None:
        return stored_face(found, call.model_version)
    out: dict[str, Any] = {"FaceId": face_id}  # deleted meanwhile: what the search knew
    if external is not None:
        out["ExternalImageId"] = external
    if subject is not None:
        out["UserId"] = subject
    return out


def _limits(call: Call, threshold: str, count: str) -> Limits:
    """The caller's threshold (facegate's 0-100 similarity) and count may only tighten the purpose's."""
    return Limits(threshold=call.params.number(threshold), max_results=call.params.integer(count, 1, MAX_PAGE))


def _page_token(call: Call) -> str | None:
    return call.params.text("NextToken")


# --- collections ---------------------------------------------------------------------------

def create_collection(call: Call) -> Answer:
    collection_id = _collection(call)
    gated = collections.create_collection(call.engine, call.caller, collection_id)
    return {"StatusCode": 200, "CollectionArn": _arn(call, collection_id), "FaceModelVersion": call.model_version}, gated.decision


def describe_collection(call: Call) -> Answer:
    collection_id = _collection(call)
    gated = collections.describe_collection(call.engine, call.caller, collection_id)
    stats = gated.value
    return {
        "FaceCount": stats.face_count, "UserCount": stats.subject_count,
        "FaceModelVersion": stats.collection.template_id, "CollectionARN": _arn(call, collection_id),
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
    token = _page_token(call)
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
    gated = collections.delete_collection(call.engine, call.caller, _collection(call))
    return {"StatusCode": 200}, gated.decision


# --- faces ---------------------------------------------------------------------------------

_UNINDEXED = {ErrorCode.TOO_MANY_FACES.value: "EXCEEDS_MAX_FACES", ErrorCode.LOW_QUALITY.value: "LOW_FACE_QUALITY"}


def index_faces(call: Call) -> Answer:
    p = call.params
    collection_id, image = _collection(call), p.image("Image")
    external = p.text("ExternalImageId")
    max_faces = p.integer("MaxFaces", 1, MAX_PAGE)
    quality = _quality(p.choice("QualityFilter", QUALITY))
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
        return {"FaceRecords": [], "UnindexedFaces": [], "FaceModelVersion": call.model_version}, None
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
    collection_id = _collection(call)
    wanted = set(p.texts("FaceIds"))
    gated = faces.list_faces(
        call.engine, call.caller, collection_id, subject=p.text("UserId"),
        limit=p.integer("MaxResults", 1, MAX_PAGE) or 1000, next_token=_page_token(call),
    )
    page = gated.value
    listed = [stored_face(f, call.model_version) for f in page.items if not wanted or f.face_id in wanted]
    answer: dict[str, Any] = {"Faces": listed, "FaceModelVersion": call.model_version}
    if page.next_token:
        answer["NextToken"] = page.next_token
    return answer, gated.decision


def delete_faces(call: Call) -> Answer:
    face_ids = call.params.texts("FaceIds", required=True)
    gated = faces.delete_faces(call.engine, call.caller, _collection(call), face_ids)
    return {
        "DeletedFaces": gated.value.deleted,
        "UnsuccessfulFaceDeletions": [{"FaceId": f, "Reasons": ["FACE_NOT_FOUND"]} for f in gated.value.unknown],
    }, gated.decision


# --- search --------------------------------------------------------------------------------

def _face_matches(call: Call, collection_id: str, gated: Gated[search.SearchResult]) -> list[dict[str, Any]]:
    hits = gated.value.matches
    stored = _stored(call, collection_id, [h.face_id for h in hits])
    return [
        {"Similarity": round(h.similarity, 4), "Face": _face(call, stored, h.face_id, h.subject, h.external_id)}
        for h in hits
    ]


def search_faces(call: Call) -> Answer:
    collection_id, face_id = _collection(call), call.params.required_text("FaceId")
    gated = search.search_face(call.engine, call.caller, collection_id, face_id, _limits(call, "FaceMatchThreshold", "MaxFaces"))
    return {
        "SearchedFaceId": face_id, "FaceMatches": _face_matches(call, collection_id, gated),
        "FaceModelVersion": call.model_version,
    }, gated.decision


def _no_face(exc: FacegateError) -> FacegateError:
    if exc.code is ErrorCode.NO_FACE:
        return FacegateError(ErrorCode.NO_FACE, "There are no faces in the image. Should be at least 1.")
    return exc


def search_faces_by_image(call: Call) -> Answer:
    p = call.params
    collection_id, image = _collection(call), p.image("Image")
    p.choice("QualityFilter", QUALITY)
    limits = _limits(call, "FaceMatchThreshold", "MaxFaces")
    try:
        gated = search.search_image(call.engine, call.caller, collection_id, image, limits)
    except FacegateError as exc:
        raise _no_face(exc) from None
    probe = gated.value.searched_face
    answer: dict[str, Any] = {"FaceMatches": _face_matches(call, collection_id, gated), "FaceModelVersion": call.model_version}
    if probe is not None:
        box = bounding_box(probe.box, image_size(image))
        if box:
            answer["SearchedFaceBoundingBox"] = box
        answer["SearchedFaceConfidence"] = percent(probe.confidence)
    return answer, gated.decision


def _user_matches(result: search.SearchResult) -> list[dict[str, Any]]:
    return [
        {"Similarity": round(s.similarity, 4), "User": {"UserId": s.subject, "UserStatus": "ACTIVE"}}
        for s in result.subjects
    ]


def search_users(call: Call) -> Answer:
    p = call.params
    collection_id = _collection(call)
    user_id, face_id = p.text("UserId"), p.text("FaceId")
    if (user_id is None) == (face_id is None):
        raise invalid("Give exactly one of UserId and FaceId")
    limits = _limits(call, "UserMatchThreshold", "MaxUsers")
    if user_id is not None:
        gated = search.search_subject(call.engine, call.caller, collection_id, user_id, limits)
        searched: dict[str, Any] = {"SearchedUser": {"UserId": user_id}}
    else:
        gated = search.search_face(call.engine, call.caller, collection_id, face_id or "", limits)
        searched = {"SearchedFace": {"FaceId": face_id}}
    return {"UserMatches": _user_matches(gated.value), "FaceModelVersion": call.model_version, **searched}, gated.decision


def search_users_by_image(call: Call) -> Answer:
    p = call.params
    collection_id, image = _collection(call), p.image("Image")
    p.choice("QualityFilter", QUALITY)
    try:
        gated = search.search_image(
            call.engine, call.caller, collection_id, image, _limits(call, "UserMatchThreshold", "MaxUsers")
        )
    except FacegateError as exc:
        raise _no_face(exc) from None
    answer: dict[str, Any] = {"UserMatches": _user_matches(gated.value), "FaceModelVersion": call.model_version,
                              "UnsearchedFaces": []}
    if gated.value.searched_face is not None:
        answer["SearchedFace"] = {"FaceDetail": face_detail(gated.value.searched_face, image_size(image))}
    return answer, gated.decision


# --- detect and compare --------------------------------------------------------------------

ATTRIBUTES = ("DEFAULT", "ALL", "AGE_RANGE", "BEARD", "EMOTIONS", "EYE_DIRECTION", "EYEGLASSES", "EYES_OPEN",
              "GENDER", "MOUTH_OPEN", "MUSTACHE", "FACE_OCCLUDED", "SMILE", "SUNGLASSES")


def detect_faces(call: Call) -> Answer:
    """Attributes=["ALL"] is accepted; facegate estimates no age, gender or emotion, by design."""
    image = call.params.image("Image")
    for attribute in call.params.texts("Attributes"):
        if attribute not in ATTRIBUTES:
            raise invalid(f"Unknown attribute {attribute!r}")
    gated = vision.detect(call.engine, call.caller, image)
    size = image_size(image)
    return {"FaceDetails": [face_detail(f, size) for f in gated.value]}, gated.decision


def compare_faces(call: Call) -> Answer:
    p = call.params
    source, target = p.image("SourceImage"), p.image("TargetImage")
    p.choice("QualityFilter", QUALITY)
    limits = Limits(threshold=p.number("SimilarityThreshold"))
    try:
        gated = vision.compare(call.engine, call.caller, source, target, limits)
    except FacegateError as exc:
        raise _no_face(exc) from None
    result, target_size = gated.value, image_size(target)
    matched = [(f, m) for f, m in result.target_faces if m.match]
    unmatched = [f for f, m in result.target_faces if not m.match]
    return {
        "SourceImageFace": {
            **({"BoundingBox": b} if (b := bounding_box(result.source_face.box, image_size(source))) else {}),
            "Confidence": percent(result.source_face.confidence),
        },
        "FaceMatches": [{"Similarity": round(m.similarity, 4), "Face": compared_face(f, target_size)} for f, m in matched],
        "UnmatchedFaces": [compared_face(f, target_size) for f in unmatched],
    }, gated.decision


# --- users ---------------------------------------------------------------------------------

def create_user(call: Call) -> Answer:
    gated = faces.create_subject(call.engine, call.caller, _collection(call), call.params.required_text("UserId"))
    return {}, gated.decision


def delete_user(call: Call) -> Answer:
    gated = faces.delete_subject(call.engine, call.caller, _collection(call), call.params.required_text("UserId"))
    return {}, gated.decision


def list_users(call: Call) -> Answer:
    gated = faces.list_subjects(
        call.engine, call.caller, _collection(call),
        limit=call.params.integer("MaxResults", 1, 500) or 500, next_token=_page_token(call),
    )
    answer: dict[str, Any] = {"Users": [{"UserId": s.subject_id, "UserStatus": "ACTIVE"} for s in gated.value.items]}
    if gated.value.next_token:
        answer["NextToken"] = gated.value.next_token
    return answer, gated.decision


def associate_faces(call: Call) -> Answer:
    p = call.params
    user_id, face_ids = p.required_text("UserId"), p.texts("FaceIds", required=True, most=100)
    p.number("UserMatchThreshold")
    gated = faces.associate_faces(call.engine, call.caller, _collection(call), user_id, face_ids)
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
    gated = faces.disassociate_faces(call.engine, call.caller, _collection(call), user_id, face_ids)
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
OPERATIONS: dict[str, tuple[Handler, Operation]] = {
    "CreateCollection": (create_collection, Operation.CREATE_COLLECTION),
    "DescribeCollection": (describe_collection, Operation.LIST),
    "ListCollections": (list_collections, Operation.LIST),
    "DeleteCollection": (delete_collection, Operation.DELETE_COLLECTION),
    "IndexFaces": (index_faces, Operation.INDEX),
    "ListFaces": (list_faces, Operation.LIST),
    "DeleteFaces": (delete_faces, Operation.DELETE),
    "SearchFaces": (search_faces, Operation.SEARCH_FACE),
    "SearchFacesByImage": (search_faces_by_image, Operation.SEARCH_IMAGE),
    "CompareFaces": (compare_faces, Operation.COMPARE),
    "DetectFaces": (detect_faces, Operation.DETECT),
    "CreateUser": (create_user, Operation.CREATE_SUBJECT),
    "DeleteUser": (delete_user, Operation.DELETE),
    "ListUsers": (list_users, Operation.LIST),
    "AssociateFaces": (associate_faces, Operation.ASSOCIATE),
    "DisassociateFaces": (disassociate_faces, Operation.ASSOCIATE),
    "SearchUsers": (search_users, Operation.SEARCH_SUBJECT),
    "SearchUsersByImage": (search_users_by_image, Operation.SEARCH_IMAGE),
}
