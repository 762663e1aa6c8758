"""Rekognition's searches, CompareFaces and DetectFaces, mapped onto facegate's.

Thresholds (`FaceMatchThreshold`, `SimilarityThreshold`, `UserMatchThreshold`) are read on
facegate's similarity scale and passed as `Limits`, which the gate may only tighten the
purpose's limits with. Matched faces are shown with the catalog metadata Rekognition's
`Face` shape carries, read for the faces the gate has just returned.
"""

from __future__ import annotations

from typing import Any

from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Gated, Limits
from facegate.operations import search, vision
from facegate.service.aws.call import QUALITY, Answer, Call, collection_of, limits_of
from facegate.service.aws.params import invalid
from facegate.service.aws.shapes import bounding_box, compared_face, face_detail, percent, stored_face
from facegate.store.faces import StoredFace, by_face_ids
from facegate.vision.image import image_size

# --- search --------------------------------------------------------------------------------

def _stored(call: Call, collection_id: str, face_ids: list[str]) -> dict[str, StoredFace]:
    """Catalog metadata of faces the gate has just returned to this caller (box, image id)."""
    with call.engine.read_sessions.begin() as session:
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


def _face_matches(call: Call, collection_id: str, gated: Gated[search.SearchResult]) -> list[dict[str, Any]]:
    hits = gated.value.matches
    stored = _stored(call, collection_id, [h.face_id for h in hits])
    return [
        {"Similarity": round(h.similarity, 4), "Face": _face(call, stored, h.face_id, h.subject, h.external_image_id)}
        for h in hits
    ]


def search_faces(call: Call) -> Answer:
    collection_id, face_id = collection_of(call), call.params.required_text("FaceId")
    gated = search.search_face(call.engine, call.caller, collection_id, face_id, limits_of(call, "FaceMatchThreshold", "MaxFaces"))
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
    collection_id, image = collection_of(call), p.image("Image")
    p.choice("QualityFilter", QUALITY)
    limits = limits_of(call, "FaceMatchThreshold", "MaxFaces")
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
    collection_id = collection_of(call)
    user_id, face_id = p.text("UserId"), p.text("FaceId")
    if (user_id is None) == (face_id is None):
        raise invalid("Give exactly one of UserId and FaceId")
    limits = limits_of(call, "UserMatchThreshold", "MaxUsers")
    if user_id is not None:
        gated = search.search_subject(call.engine, call.caller, collection_id, user_id, limits)
        searched: dict[str, Any] = {"SearchedUser": {"UserId": user_id}}
    else:
        gated = search.search_face(call.engine, call.caller, collection_id, face_id or "", limits)
        searched = {"SearchedFace": {"FaceId": face_id}}
    return {"UserMatches": _user_matches(gated.value), "FaceModelVersion": call.model_version, **searched}, gated.decision


def search_users_by_image(call: Call) -> Answer:
    p = call.params
    collection_id, image = collection_of(call), p.image("Image")
    p.choice("QualityFilter", QUALITY)
    try:
        gated = search.search_image(
            call.engine, call.caller, collection_id, image, limits_of(call, "UserMatchThreshold", "MaxUsers")
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
