"""What callers send: the request bodies of the HTTP API, with examples.

Split by direction (as the FastAPI template splits `UserCreate` from `UserPublic`): these
are inputs, validated strictly; `service.responses` holds what the API answers. Names and
fields follow Rekognition where it has them (`image.bytes`, `max_faces`, `quality_filter`,
`external_image_id`), and facegate's governance where it does not: every face operation
declares a `purpose`, with a `case_reference` where the policy demands one.

Image endpoints take JSON (the image base64 in `image.bytes`) or multipart form data (the
image as a file part named like the JSON field, the other fields as form fields); the
`*Params` models are the fields both carry, the `*Request` models the JSON body.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from facegate.vision.types import QualityFilter

# Ids end up in file names, URLs and the audit log. A leading dot is refused here so that
# "." and ".." can never be a path segment, and collection ids stop at 128 characters: the
# index file of a collection is named after it, and a file name has at most 255 bytes
# (the catalog enforces the same limit).
COLLECTION_ID = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$"
SUBJECT_ID = r"^[A-Za-z0-9_\-:][A-Za-z0-9_.\-:]{0,254}$"
FACE_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

B64_EXAMPLE = "/9j/4AAQSkZJRgABAQAAAQABAAD/"  # the first bytes of a JPEG, base64


class Strict(BaseModel):
    """Unknown fields are refused: a misspelt `purpose` must not pass as a missing one."""

    model_config = ConfigDict(extra="forbid")


class ImageIn(Strict):
    bytes: str = Field(
        description="The image file (JPEG, PNG, WebP, BMP or GIF), base64-encoded.",
        json_schema_extra={"format": "byte"},
        examples=[B64_EXAMPLE],
    )


class Purposeful(Strict):
    """Why the caller asks: decided by the policy and written to the audit log."""

    purpose: str | None = Field(
        default=None, max_length=64,
        description="Declared purpose (e.g. victim_identification). Required for face operations: "
        "without it the policy answers 403 PURPOSE_REQUIRED.",
        examples=["victim_identification"],
    )
    case_reference: str | None = Field(
        default=None, max_length=255, description="Case the request serves, where the purpose requires one.",
        examples=["CASE-2026-0042"],
    )


class Matching(Purposeful):
    """Limits a caller may ask for: never looser than the purpose allows."""

    mode: Literal["post_event", "live"] = Field(
        default="post_event", description="post_event (a stored photo) or live (a camera stream)."
    )
    max_fmr: float | None = Field(
        default=None, gt=0, lt=1, description="Highest estimated false-match rate accepted.", examples=[1e-5]
    )
    threshold: float | None = Field(
        default=None, ge=0, le=100, description="Lowest similarity accepted (0-100)."
    )


class CreateCollectionRequest(Purposeful):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"collection_id": "victims-2026", "purpose": "victim_identification", "case_reference": "CASE-2026-0042"},
    ]})

    collection_id: str = Field(pattern=COLLECTION_ID, max_length=128)
    description: str = Field(default="", max_length=1000)
    retention_days: int | None = Field(
        default=None, ge=1, le=36500, description="Erase faces this many days after enrolment."
    )
    keep_thumbnails: bool = Field(
        default=False, strict=True,
        description="Keep a small face crop (JPEG, sealed with the template key) per face, and the probe's "
                    "with each lead, for reviewers. Biometric data, erased with the face.",
    )


class BoxIn(Strict):
    """A face's box in pixels, as `detect` reports it."""

    left: int = Field(ge=0)
    top: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        """A form field carries text: "left,top,width,height"."""
        if isinstance(value, str):
            parts = [p for p in re.split(r"[,x\s]+", value.strip()) if p]
            return dict(zip(("left", "top", "width", "height"), parts)) if len(parts) == 4 else {"left": value}
        return value


class IndexFacesParams(Purposeful):
    subject: str | None = Field(
        default=None, pattern=SUBJECT_ID, max_length=255,
        description="Subject (one person) of the photo. It labels ONE face: the one at `subject_box`, or else "
        "the face nearest the photo's centre; the others are not indexed (NOT_SUBJECT_FACE) unless "
        "`index_unlabelled`.", examples=["person-17"],
    )
    subject_box: BoxIn | None = Field(
        default=None, description="Which face is the subject's, by its box (multipart: \"left,top,width,height\")."
    )
    index_unlabelled: bool = Field(
        default=False, description="With a subject, also enrol the photo's other faces, without a subject."
    )
    external_image_id: str | None = Field(
        default=None, max_length=255, description="Your id for the image.", examples=["ad-88412.jpg"]
    )
    max_faces: int | None = Field(default=None, ge=1, le=100, description="Enrol at most the N largest faces.")
    quality_filter: QualityFilter = Field(default=QualityFilter.LOW, description="Drop faces below this quality.")
    consent_reference: str | None = Field(
        default=None, max_length=255, description="Consent record, where the collection requires one."
    )


class IndexFacesRequest(IndexFacesParams):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "image": {"bytes": B64_EXAMPLE}, "subject": "person-17", "external_image_id": "ad-88412.jpg",
        "purpose": "victim_identification", "case_reference": "CASE-2026-0042",
    }]})

    image: ImageIn


class SearchParams(Matching):
    max_results: int | None = Field(
        default=None, ge=1, le=1000, description="At most this many matches (capped by the purpose)."
    )


class SearchByImageRequest(SearchParams):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "image": {"bytes": B64_EXAMPLE}, "purpose": "victim_identification",
        "case_reference": "CASE-2026-0042", "max_results": 5, "max_fmr": 1e-5,
    }]})

    image: ImageIn


class SearchRequest(SearchParams):
    """Search by an enrolled face or by a subject: the probe is already stored."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "purpose": "victim_identification", "case_reference": "CASE-2026-0042", "max_results": 5,
    }]})


class CompareParams(Matching):
    pass


class CompareRequest(CompareParams):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "source_image": {"bytes": B64_EXAMPLE}, "target_image": {"bytes": B64_EXAMPLE},
        "purpose": "identity_verification",
    }]})

    source_image: ImageIn
    target_image: ImageIn


class DetectParams(Purposeful):
    pass


class DetectRequest(DetectParams):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "image": {"bytes": B64_EXAMPLE}, "purpose": "photo_library",
    }]})

    image: ImageIn


class CreateSubjectRequest(Purposeful):
    model_config = ConfigDict(json_schema_extra={"examples": [{"subject": "person-17"}]})

    subject: str = Field(pattern=SUBJECT_ID, max_length=255)
    attributes: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=255)]] = Field(
        default_factory=dict, max_length=32, description="Free labels kept with the subject (never biometric)."
    )


class AssociateFacesRequest(Purposeful):
    face_ids: list[Annotated[str, Field(pattern=FACE_ID)]] = Field(
        min_length=1, max_length=1000, examples=[["5f0c4a1e-8a56-4a8f-9f1e-0d2b8c3e4f5a"]]
    )


# Who asks and why, on requests without a body (GET, DELETE): a moratorium may exempt any
# operation by purpose, so every route takes them; POST routes take them in the body.
PurposeQuery = Annotated[str | None, Query(max_length=64, description="Declared purpose (see POST bodies).")]
CaseReferenceQuery = Annotated[str | None, Query(max_length=255, description="Case the request serves.")]
class GrantRequest(Purposeful):
    """What an owner opens to another tenant on one collection (with why, like every body)."""

    operations: list[Annotated[str, Field(max_length=32)]] = Field(
        min_length=1, max_length=16,
        description="Operations to grant: search (the searches, video_search included), search_image, "
        "search_face, search_subject, video_search, list, index, delete, erase, create_subject, associate.",
        examples=[["search", "list"]],
    )
    purposes: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=32, description="Only for these purposes (face operations); omitted: any.",
        examples=[["victim_identification"]],
    )


class ReviewVerdictRequest(Purposeful):
    """A reviewer's verdict on a lead (with the purpose and case it is decided under)."""

    verdict: Literal["confirmed", "rejected"]
    note: str = Field(default="", max_length=2000, description="Why: kept with the lead and in the audit log.")


# Path parameters, validated like the bodies that name the same things.
CollectionIdPath = Annotated[str, Path(pattern=COLLECTION_ID, max_length=128, description="Collection id.")]
SubjectPath = Annotated[str, Path(pattern=SUBJECT_ID, max_length=255, description="Subject id.")]
FaceIdPath = Annotated[str, Path(pattern=FACE_ID, description="Face id (a UUID).")]
TenantPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Tenant name.")]

# RFC 3339 date-time with a zone, exactly what the OpenAPI `date-time` format means.
DATE_TIME = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
TimeQuery = Annotated[str | None, Query(
    pattern=DATE_TIME, json_schema_extra={"format": "date-time"},
    description="RFC 3339 time with zone, e.g. 2026-01-01T00:00:00Z.",
)]
