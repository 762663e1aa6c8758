"""What the API answers: response models, published in the OpenAPI document.

Routes return the plain dicts the core already produces (`to_dict()` of faces, matches,
decisions); FastAPI checks each against its `response_model` here, so the published
schema and the bytes on the wire cannot drift apart. Templates never appear in any of
them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DecisionOut(BaseModel):
    """The policy's decision: the rule that decided, the policy version and the limits in force."""

    decision: Literal["allow", "deny"]
    code: str | None = Field(description="Why a denial denied (MORATORIUM, PURPOSE_NOT_APPROVED, ...).")
    rule: str = Field(examples=["purpose:victim_identification"])
    reason: str
    policy_version: str
    max_fmr: float | None
    threshold: float | None = Field(description="Similarity threshold derived from max_fmr (matching operations).")
    max_results: int | None
    review_required: bool
    fmr_holds_for: Literal["population", "every_group"] | None = Field(
        default=None, description="Whom max_fmr is promised to (matching operations); docs/fairness.md.")
    certified_fmr: float | None = Field(
        default=None, description="The rate the threshold holds: max_fmr, or the lowest rate every group "
        "supports when the policy accepts it.")
    limiting_group: str | None = Field(default=None, description="The group whose threshold is the highest.")
    calibration: str | None = Field(default=None, description="The calibration(s) that derived the threshold.")


class ErrorDetail(BaseModel):
    """Stable `code` (see docs/api.md), a message for people, the request id of the audit entry,
    and details that depend on the code (`field`, `rule`, `policy_version`, `decision`, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(examples=["MORATORIUM"])
    message: str
    request_id: str | None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Gated(BaseModel):
    decision: DecisionOut


class CollectionOut(BaseModel):
    collection_id: str
    description: str
    model_id: str
    template_id: str = Field(description="The template space (model + recipe) every face in it belongs to.")
    dimension: int
    created_at: str
    owner: str = Field(description="The tenant the collection belongs to.")
    retention_days: int | None = Field(default=None, description="Faces older than this are erased.")
    keep_thumbnails: bool = Field(
        default=False, description="Each face keeps a small sealed crop for reviewers (opt-in, biometric data)."
    )


class CollectionStatsOut(CollectionOut):
    face_count: int
    subject_count: int


class CollectionCreated(CollectionOut, Gated):
    pass


class CollectionDescribed(CollectionStatsOut, Gated):
    pass


class CollectionList(Gated):
    collections: list[CollectionOut]


class CollectionDeleted(Gated):
    deleted: CollectionStatsOut


class BoxOut(BaseModel):
    left: int
    top: int
    width: int
    height: int


class PointOut(BaseModel):
    x: int
    y: int


class QualityOut(BaseModel):
    face_size: int
    sharpness: float
    brightness: float
    yaw: float
    roll: float
    level: str


class FaceOut(BaseModel):
    """A face found in an image: box, landmarks and quality (never the template)."""

    box: BoxOut
    confidence: float
    landmarks: list[PointOut]
    quality: QualityOut


class StoredFaceOut(BaseModel):
    face_id: str
    collection_id: str
    subject: str | None
    external_image_id: str | None
    box: BoxOut
    confidence: float
    quality: dict[str, float | int | str]
    landmarks: list[PointOut]
    image_sha256: str
    created_at: str


class UnindexedOut(BaseModel):
    reason: str = Field(examples=["LOW_QUALITY", "EXCEEDS_MAX_FACES"])
    face: FaceOut | None = None
    message: str | None = None


class FacesIndexed(Gated):
    indexed: list[StoredFaceOut]
    unindexed: list[UnindexedOut]
    already_indexed: bool = Field(description="The same image and external id were enrolled before.")
    image_sha256: str


class FaceList(Gated):
    faces: list[StoredFaceOut]
    next_token: str | None


class FaceDeleted(Gated):
    deleted: list[str]


class SubjectOut(BaseModel):
    subject: str
    face_count: int
    attributes: dict[str, str]
    created_at: str


class SubjectCreated(SubjectOut, Gated):
    pass


class SubjectList(Gated):
    subjects: list[SubjectOut]
    next_token: str | None


class FacesAssociated(Gated):
    associated: list[str]
    unknown: list[str]
    conflicting: list[str] = Field(description="Faces of another subject, left as they are.")


class SubjectErased(Gated):
    erased: str
    face_ids: list[str]


class Estimates(BaseModel):
    estimated_fmr: float = Field(description="Share of different-person pairs that score this high or higher.")
    estimated_fmr_worst_group: float | None = Field(
        default=None,
        description="The same share among pairs of two different people of one group, for the group where it "
        "is highest (upper confidence bound of the shipped group calibration); null without one.",
    )
    worst_group: str | None = Field(default=None, description="That group, e.g. race=Asian.")


class MatchOut(Estimates):
    face_id: str
    subject: str | None
    external_image_id: str | None
    similarity: float = Field(description="0-100; higher is more alike.")


class SubjectMatchOut(Estimates):
    subject: str
    similarity: float
    votes: int


class Leads(Gated):
    investigative_leads: bool = Field(description="True when the purpose requires human review.")
    notice: str | None = Field(description="What a lead is and is not, when the purpose requires review.")


class SearchResults(Leads):
    matches: list[MatchOut]
    subjects: list[SubjectMatchOut]
    threshold: float
    searched_face: FaceOut | None = None


class TargetFaceOut(FaceOut, Estimates):
    target_index: int = Field(description="Position of the face in target_faces.")
    similarity: float
    threshold: float
    match: bool


class Comparison(Leads, Estimates):
    """CompareFaces: the headline fields are those of the best-matching target face."""

    similarity: float = Field(description="Similarity of the best-matching target face.")
    threshold: float
    match: bool = Field(description="True when the best target face is at or above the threshold.")
    best_target_index: int = Field(description="Position of the best-matching face in target_faces.")
    source_face: FaceOut
    target_faces: list[TargetFaceOut] = Field(description="Every face of the target image, in detection order.")
    matches: list[TargetFaceOut] = Field(description="Target faces at or above the threshold, best first.")
    unmatched: list[TargetFaceOut] = Field(description="Target faces below the threshold, best first.")


class Detection(Gated):
    faces: list[FaceOut]


class AnchorOut(BaseModel):
    seq: int
    entry_hash: str


class GrantOut(BaseModel):
    collection_id: str
    grantee: str
    operation: str
    purposes: list[str] | None = Field(description="Purposes the grant is limited to; null: any.")
    granted_by: str
    granted_at: str


class GrantsOut(Gated):
    grants: list[GrantOut] = Field(description="Every grant the tenant now holds on the collection.")


class GrantsRevoked(Gated):
    revoked: list[str] = Field(description="The operations taken back.")


class ReviewOut(BaseModel):
    """An investigative lead: a search result awaiting (or after) a reviewer's verdict."""

    review_id: int
    status: Literal["pending", "confirmed", "rejected"]
    case_reference: str | None
    face_id: str
    subject: str | None
    similarity: float
    estimated_fmr: float | None
    estimated_fmr_worst_group: float | None = Field(
        default=None, description="The false-match rate of this similarity in the group where it is highest."
    )
    worst_group: str | None = Field(default=None, description="That group, e.g. race=Asian.")
    purpose: str | None
    tenant: str
    audit_seq: int
    searcher_key_id: str | None
    searcher_holder: str | None
    created_at: str
    reviewer: str | None
    reviewer_holder: str | None
    note: str
    decided_at: str | None
    notice: str


class ReviewList(BaseModel):
    reviews: list[ReviewOut]
    next_after_id: int | None = Field(description="Pass as after_id for the next page; null at the end.")


class ReviewDecided(ReviewOut):
    pass


class ChainVerified(BaseModel):
    """The shape of `facegate audit verify --json`."""

    ok: bool
    entries: int
    first_bad_entry: int | None
    problem: str | None
    kind: str | None
    head: AnchorOut | None
    redactions: dict[str, Any] = Field(description="Redacted entries: `count` and seq `ranges` [[first, last], ...].")
    checkpoint: dict[str, Any] | None = Field(
        None, description="The signed checkpoint the log was checked against, when one was kept "
        "(FACEGATE_CHECKPOINT_DIR: `file` is its name): `seq`, `head`, `signed_at`, `checkpoint_hash`, `public_key`.",
    )


class ConsistencyProofOut(BaseModel):
    """A Merkle consistency proof between two signed checkpoints (`facegate audit prove-consistency --json`)."""

    first: dict[str, Any] = Field(description="The earlier tree: `seq`, `merkle_root`.")
    second: dict[str, Any] = Field(description="The later tree: `seq`, `merkle_root`.")
    path: list[str] = Field(description="PROOF(first, second) of RFC 9162 §2.1.4.1, hex.")
    checkpoints: list[dict[str, Any]] = Field(description="The two signed checkpoints, earlier first.")


class CheckpointOut(BaseModel):
    """A signed checkpoint of the audit log (`facegate audit checkpoint --json`)."""

    type: str
    seq: int
    head: str | None
    merkle_root: str
    signed_at: str
    previous: str | None
    signature: str
    public_key: str
    checkpoint_hash: str


class AuditPage(BaseModel):
    entries: list[dict[str, Any]] = Field(description="Entries as hashed, with prev_hash and entry_hash.")
    next_after_seq: int | None = Field(description="Pass as after_seq for the next page; null at the end.")


class TallyOut(BaseModel):
    requests: int
    allowed: int
    denied: int


class TransparencyReportOut(BaseModel):
    since: str | None
    until: str | None
    total: TallyOut
    by_sector: dict[str, TallyOut]
    by_purpose: dict[str, TallyOut]
    by_operation: dict[str, TallyOut]
    by_month: dict[str, TallyOut]
    by_decision: dict[str, int]
    denials_by_code: dict[str, int]
    denials_by_rule: dict[str, int]
    policy_versions: dict[str, int]
    reviews: dict[str, int]
    head: AnchorOut | None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    backend: Literal["sqlite", "postgresql"] = Field(
        description="Where the state lives: sqlite (the data directory) or postgresql (server mode)."
    )
    checks: dict[str, str] = Field(description="Each check: ok, or what failed.")
    audit_signing: str = Field(description="ok, or why audit checkpoints are not signed (the service is still ready).")
