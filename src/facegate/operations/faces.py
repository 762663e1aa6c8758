"""Enrolling and managing faces and subjects: IndexFaces, ListFaces, DeleteFaces, and
Rekognition's users (CreateUser, AssociateFaces, ListUsers) plus erasure."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gated, Outcome
from facegate.operations.scoring import stored_offsets
from facegate.governance import Operation
from facegate.store import faces as store_faces
from facegate.store import subjects as store_subjects
from facegate.store.catalog import Page, get_collection
from facegate.store.faces import FaceDeletion, StoredFace
from facegate.store.subjects import Association, Erasure, SubjectInfo
from facegate.vision.quality import passes
from facegate.vision.types import Box, Face, QualityFilter

DEFAULT_QUALITY_FILTER = QualityFilter.LOW


@dataclass(frozen=True, slots=True)
class Unindexed:
    """A face (or a whole image) not enrolled, and why: a stable reason code."""

    reason: str  # an ErrorCode value: NO_FACE, LOW_QUALITY, TOO_MANY_FACES, INVALID_IMAGE, ...
    face: Face | None = None
    message: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"reason": self.reason}
        if self.face is not None:
            out["face"] = self.face.to_dict()
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class IndexResult:
    indexed: list[StoredFace]
    unindexed: list[Unindexed]
    image_sha256: str
    already_indexed: bool = False  # the same image and external id were enrolled before
    notes: dict[str, object] = field(default_factory=dict)


def select_faces(
    faces: Sequence[Face], max_faces: int | None, quality_filter: QualityFilter
) -> tuple[list[Face], list[Unindexed]]:
    """Rekognition's rules: the largest `max_faces` faces that pass the quality filter."""
    keep: list[Face] = []
    dropped: list[Unindexed] = []
    for face in faces:  # largest first
        if not passes(face.quality, quality_filter):
            dropped.append(Unindexed(ErrorCode.LOW_QUALITY.value, face))
        elif max_faces is not None and len(keep) >= max_faces:
            dropped.append(Unindexed(ErrorCode.TOO_MANY_FACES.value, face))
        else:
            keep.append(face)
    return keep, dropped


# A box the caller gives selects the detected face it overlaps most, if it overlaps enough.
MIN_BOX_OVERLAP = 0.3

NOT_SUBJECT_MESSAGE = (
    "another person's face: a subject labels one face per image "
    "(ask for index_unlabelled to enrol it without a subject)"
)


def overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, 0..1."""
    width = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    height = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)


def subject_face(faces: Sequence[Face], size: tuple[int, int], box: Box | None) -> int:
    """Which of `faces` a subject label names: the one at the caller's `box`, or else the
    one nearest the photo's centre (a portrait is centred on its person; a bystander
    nearer the camera may well be larger, so "largest" would label the wrong person)."""
    if box is not None:
        best = max(range(len(faces)), key=lambda i: overlap(faces[i].box, box))
        if overlap(faces[best].box, box) < MIN_BOX_OVERLAP:
            raise FacegateError(
                ErrorCode.NO_FACE, f"no face found at subject_box {box.to_dict()}", field="subject_box"
            )
        return best
    centre = (size[0] / 2, size[1] / 2)
    return min(range(len(faces)), key=lambda i: math.dist(faces[i].box.centre, centre))


def index_faces(
    engine: Facegate,
    caller: Caller,
    collection_id: str,
    image: bytes,
    *,
    subject: str | None = None,
    external_image_id: str | None = None,
    max_faces: int | None = None,
    quality_filter: QualityFilter = DEFAULT_QUALITY_FILTER,
    subject_box: Box | None = None,
    index_unlabelled: bool = False,
) -> Gated[IndexResult]:
    """Detect and enrol the faces of one image (idempotent for the same image and id).

    With a `subject`, only the subject's face is labelled (see `index_analysed`)."""
    return index_analysed(
        engine, caller, collection_id, hashlib.sha256(image).hexdigest(),
        lambda: engine.analyze_sized(image, thumbnails=keeps_thumbnails(engine, collection_id)),
        subject=subject, external_image_id=external_image_id, max_faces=max_faces,
        quality_filter=quality_filter, subject_box=subject_box, index_unlabelled=index_unlabelled,
    )


def keeps_thumbnails(engine: Facegate, collection_id: str) -> bool:
    """Whether faces of this collection keep a thumbnail (asked after the gate admitted the
    caller; the commit checks the collection again before storing any)."""
    with engine.sessions() as session:
        return get_collection(session, collection_id=collection_id).keep_thumbnails


def index_analysed(
    engine: Facegate,
    caller: Caller,
    collection_id: str,
    image_sha256: str,
    analyse: Callable[[], tuple[list[Face], tuple[int, int]]],
    *,
    subject: str | None = None,
    external_image_id: str | None = None,
    max_faces: int | None = None,
    quality_filter: QualityFilter = DEFAULT_QUALITY_FILTER,
    subject_box: Box | None = None,
    index_unlabelled: bool = False,
    refresh: bool = True,
) -> Gated[IndexResult]:
    """Enrol faces that `analyse` finds, with the image's (width, height) (bulk enrolment
    analyses in worker processes).

    A subject labels ONE face: the one at `subject_box`, or else the central one. The other
    faces of the photo are not enrolled (`unindexed`, reason NOT_SUBJECT_FACE) unless
    `index_unlabelled`, when they are enrolled without a subject. Without a subject every
    face is enrolled, as Rekognition's IndexFaces does.

    The faces, their change-log rows and the audit entry commit in one transaction; the
    in-memory index follows after the commit (`refresh=False` lets a bulk run do it once).
    """
    if subject_box is not None and subject is None:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, "subject_box selects the subject's face: give a subject",
                            field="subject_box")

    def commit(  # type: ignore[no-untyped-def]
        session, _decision, analysed: tuple[list[Face], tuple[int, int]]
    ) -> Outcome[IndexResult]:
        found, size = analysed
        before = store_faces.find_indexed_image(
            session, collection_id=collection_id, image_sha256=image_sha256, external_image_id=external_image_id
        )
        if before:
            result = IndexResult(list(before), [], image_sha256, already_indexed=True)
            return Outcome(result, details={"already_indexed": len(before)})
        if not found:
            raise FacegateError(ErrorCode.NO_FACE, "no face found in the image")
        labelled: list[Face] = []
        others: list[Face] = list(found)
        dropped: list[Unindexed] = []
        if subject is not None:
            chosen = others.pop(subject_face(found, size, subject_box))
            labelled, dropped = select_faces([chosen], None, quality_filter)
            if not index_unlabelled:
                dropped += [Unindexed(ErrorCode.NOT_SUBJECT_FACE.value, f, NOT_SUBJECT_MESSAGE) for f in others]
                others = []
        rest, rest_dropped = select_faces(
            others, None if max_faces is None else max(0, max_faces - len(labelled)), quality_filter
        )
        dropped += rest_dropped
        store: dict[str, Any] = dict(
            collection_id=collection_id, image_sha256=image_sha256, external_image_id=external_image_id,
            template_id=engine.template_id, codec=engine.codec, now=engine.now(), image_size=size,
        )
        stored = (
            store_faces.add_faces(
                session, faces=labelled, subject_id=subject, score_offsets=stored_offsets(engine, labelled), **store
            ) if labelled else []
        )
        stored += store_faces.add_faces(
            session, faces=rest, subject_id=None, score_offsets=stored_offsets(engine, rest), **store
        )
        details: dict[str, object] = {"indexed": [f.face_id for f in stored], "unindexed": [u.reason for u in dropped]}
        if subject is not None:
            details["subject"] = subject
        return Outcome(IndexResult(stored, dropped, image_sha256), details=details)

    gated = engine.gate.run(
        caller, Operation.INDEX, collection_id=collection_id, probe_sha256=image_sha256,
        prepare=lambda _d: analyse(), commit=commit,
    )
    if refresh:
        engine.vectors.refresh(collection_id)
    return gated


def list_faces(
    engine: Facegate, caller: Caller, collection_id: str, *,
    subject: str | None = None, limit: int = 100, next_token: str | None = None,
) -> Gated[Page[StoredFace]]:
    return engine.gate.run(
        caller, Operation.LIST, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(store_faces.list_faces(
            session, collection_id=collection_id, subject_id=subject, limit=limit, next_token=next_token
        )),
    )


def delete_faces(engine: Facegate, caller: Caller, collection_id: str, face_ids: Sequence[str]) -> Gated[FaceDeletion]:
    def commit(session, _d, _p) -> Outcome[FaceDeletion]:  # type: ignore[no-untyped-def]
        deletion = store_faces.delete_faces(session, collection_id=collection_id, face_ids=face_ids)
        return Outcome(deletion, details={"deleted": deletion.deleted, "unknown": deletion.unknown})

    gated = engine.gate.run(caller, Operation.DELETE, collection_id=collection_id, commit=commit)
    engine.vectors.refresh(collection_id)
    return gated


def create_subject(
    engine: Facegate, caller: Caller, collection_id: str, subject: str, attributes: dict[str, str] | None = None
) -> Gated[SubjectInfo]:
    return engine.gate.run(
        caller, Operation.CREATE_SUBJECT, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(store_subjects.create_subject(
            session, collection_id=collection_id, subject_id=subject, attributes=attributes or {}, now=engine.now()
        ), details={"subject": subject}),
    )


def associate_faces(
    engine: Facegate, caller: Caller, collection_id: str, subject: str, face_ids: Sequence[str]
) -> Gated[Association]:
    return engine.gate.run(
        caller, Operation.ASSOCIATE, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(store_subjects.associate_faces(
            session, collection_id=collection_id, subject_id=subject, face_ids=face_ids
        ), details={"subject": subject, "face_ids": list(face_ids)}),
    )


def disassociate_faces(
    engine: Facegate, caller: Caller, collection_id: str, subject: str, face_ids: Sequence[str]
) -> Gated[Association]:
    """Detach faces from a subject (DisassociateFaces), decided as the `associate` operation."""
    return engine.gate.run(
        caller, Operation.ASSOCIATE, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(store_subjects.disassociate_faces(
            session, collection_id=collection_id, subject_id=subject, face_ids=face_ids
        ), details={"action": "disassociate", "subject": subject, "face_ids": list(face_ids)}),
    )


def delete_subject(engine: Facegate, caller: Caller, collection_id: str, subject: str) -> Gated[Erasure]:
    """Remove a subject but keep its faces (DeleteUser), decided as the `delete` operation."""

    def commit(session, _d, _p) -> Outcome[Erasure]:  # type: ignore[no-untyped-def]
        removed = store_subjects.delete_subject(session, collection_id=collection_id, subject_id=subject)
        return Outcome(removed, details={"action": "delete_subject", "subject": subject,
                                         "unassociated_faces": len(removed.face_ids)})

    return engine.gate.run(caller, Operation.DELETE, collection_id=collection_id, commit=commit)


def list_subjects(
    engine: Facegate, caller: Caller, collection_id: str, *, limit: int = 100, next_token: str | None = None
) -> Gated[Page[SubjectInfo]]:
    return engine.gate.run(
        caller, Operation.LIST, collection_id=collection_id,
        commit=lambda session, _d, _p: Outcome(store_subjects.list_subjects(
            session, collection_id=collection_id, limit=limit, next_token=next_token
        )),
    )


def erase_subject(engine: Facegate, caller: Caller, collection_id: str, subject: str) -> Gated[Erasure]:
    """Right to erasure: the subject and all its faces leave catalog and index together."""

    def commit(session, _d, _p) -> Outcome[Erasure]:  # type: ignore[no-untyped-def]
        erasure = store_subjects.erase_subject(session, collection_id=collection_id, subject_id=subject)
        return Outcome(erasure, details={"subject": subject, "faces": len(erasure.face_ids)})

    gated = engine.gate.run(caller, Operation.ERASE, collection_id=collection_id, commit=commit)
    engine.vectors.refresh(collection_id)
    return gated
