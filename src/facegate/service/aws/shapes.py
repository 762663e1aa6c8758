"""facegate's answers in Rekognition's shapes (BoundingBox, FaceDetail, Face, ...).

Rekognition gives boxes and landmarks as fractions of the image's width and height, and
confidences on 0-100. What facegate does not estimate (age, gender, emotions, pitch,
smile, glasses, ...) is left out, never invented: every such member is optional in the
service model, so clients see it absent (see docs/rekognition.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from facegate.store.faces import StoredFace
from facegate.vision.types import Box, Face

# dlib's five points, in its order: the eye on the image's right (outer, inner corner),
# the eye on the image's left (outer, inner corner), the base of the nose. Rekognition
# names eyes from the viewer's side, as facegate's own tests check on a frontal photo.
LANDMARK_TYPES = ("rightEyeRight", "rightEyeLeft", "leftEyeLeft", "leftEyeRight", "nose")

Size = tuple[int, int]


def image_id(image_sha256: str) -> str:
    """The same image always gets the same ImageId: its SHA-256 shaped as a UUID."""
    return str(uuid.UUID(hex=image_sha256[:32]))


def percent(confidence: float) -> float:
    """Detector scores are 0-1; Rekognition's confidences 0-100."""
    return round(min(100.0, max(0.0, confidence * 100.0 if confidence <= 1.0 else confidence)), 4)


def bounding_box(box: Box, size: Size | None) -> dict[str, float]:
    """Fractions of the image; without its size (faces enrolled before facegate kept it)
    the box cannot be expressed that way and is left out by the callers."""
    width, height = size or (0, 0)
    if width < 1 or height < 1:
        return {}
    return {
        "Width": round(box.width / width, 6), "Height": round(box.height / height, 6),
        "Left": round(box.left / width, 6), "Top": round(box.top / height, 6),
    }


def _with_box(box: Box, size: Size | None) -> dict[str, Any]:
    found = bounding_box(box, size)
    return {"BoundingBox": found} if found else {}


def _detail(
    box: Box, landmarks: tuple[tuple[int, int], ...], quality: dict[str, Any], confidence: float, size: Size | None
) -> dict[str, Any]:
    width, height = size or (0, 0)
    points = (
        [{"Type": kind, "X": round(x / width, 6), "Y": round(y / height, 6)}
         for kind, (x, y) in zip(LANDMARK_TYPES, landmarks, strict=False)]
        if width and height else []
    )
    return {
        **_with_box(box, size),
        "Landmarks": points,
        "Pose": {"Roll": float(quality.get("roll", 0.0)), "Yaw": float(quality.get("yaw", 0.0))},
        # Brightness: mean grey level as a percentage; Sharpness: the variance of the
        # Laplacian, which facegate's quality filter uses, clipped to Rekognition's 0-100.
        "Quality": {
            "Brightness": round(float(quality.get("brightness", 0.0)) / 2.55, 2),
            "Sharpness": round(min(100.0, float(quality.get("sharpness", 0.0))), 2),
        },
        "Confidence": percent(confidence),
    }


def face_detail(face: Face, size: Size | None) -> dict[str, Any]:
    """FaceDetail of a face just analysed: box, landmarks, pose (roll, yaw), quality, confidence."""
    return _detail(face.box, face.landmarks, dict(face.quality.to_dict()), face.confidence, size)


def stored_face_detail(face: StoredFace, size: Size | None) -> dict[str, Any]:
    """FaceDetail of a face as enrolled (IndexFaces' FaceRecords)."""
    return _detail(face.box, face.landmarks, dict(face.quality), face.confidence, face.image_size or size)


def compared_face(face: Face, size: Size | None) -> dict[str, Any]:
    detail = face_detail(face, size)
    return {k: detail[k] for k in ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality") if k in detail}


def stored_face(face: StoredFace, model_version: str) -> dict[str, Any]:
    """Face: what IndexFaces stored (ExternalImageId included) and whose it is (UserId)."""
    out: dict[str, Any] = {
        "FaceId": face.face_id,
        **_with_box(face.box, face.image_size),
        "ImageId": image_id(face.image_sha256),
        "Confidence": percent(face.confidence),
        "IndexFacesModelVersion": model_version,
    }
    if face.external_image_id is not None:
        out["ExternalImageId"] = face.external_image_id
    if face.subject is not None:
        out["UserId"] = face.subject
    return out
