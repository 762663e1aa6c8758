"""1:N search: by image (SearchFacesByImage), by enrolled face (SearchFaces) and by
subject (SearchUsers: a subject's faces vote for the subjects they match).

Threshold and result count come from the decision, i.e. from the purpose's maximum
false-match rate through the calibration, tightened by the caller if asked; results of
purposes that need human review are investigative leads, never identifications.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gated, Limits, Outcome
from facegate.governance import Decision, MatchRef, Operation
from facegate.governance.leads import LEAD_NOTICE, lead_fields
from facegate.operations.scoring import Estimates, estimates, scored_search
from facegate.store.catalog import CollectionInfo, ensure_template, get_collection
from facegate.store.faces import sealed_thumbnail
from facegate.store.templates import templates_of
from facegate.store.collection_indexes import FaceMatch
from facegate.vision.types import Face


@dataclass(frozen=True, slots=True)
class FaceHit:
    face_id: str
    subject: str | None
    external_image_id: str | None
    similarity: float
    estimates: Estimates

    @property
    def estimated_fmr(self) -> float:
        return self.estimates.estimated_fmr

    def to_dict(self) -> dict[str, object]:
        return {
            "face_id": self.face_id,
            "subject": self.subject,
            "external_image_id": self.external_image_id,
            "similarity": round(self.similarity, 4),
            **self.estimates.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SubjectHit:
    subject: str
    similarity: float  # best face of the subject
    estimates: Estimates
    votes: int  # probe faces x subject faces that passed the threshold

    @property
    def estimated_fmr(self) -> float:
        return self.estimates.estimated_fmr

    def to_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "similarity": round(self.similarity, 4),
            **self.estimates.to_dict(),
            "votes": self.votes,
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: list[FaceHit]
    subjects: list[SubjectHit]
    threshold: float
    review_required: bool
    searched_face: Face | None = None  # the probe face, for a search by image

    def notice(self) -> str | None:
        return LEAD_NOTICE if self.review_required else None

    def to_dict(self) -> dict[str, object]:
        """The answer of every search, the same over CLI, HTTP and Python."""
        return {
            "matches": [m.to_dict() for m in self.matches],
            "subjects": [s.to_dict() for s in self.subjects],
            "threshold": round(self.threshold, 4),
            **lead_fields(self.review_required),
            "searched_face": self.searched_face.to_dict() if self.searched_face is not None else None,
        }


def _hits(engine: Facegate, matches: list[tuple[FaceMatch, float]]) -> list[FaceHit]:
    """Scored matches (normalized when on) as hits with both FMR estimates."""
    return [
        FaceHit(m.face.face_id, m.face.subject, m.face.external_image_id, s, estimates(engine, s))
        for m, s in matches
    ]


def _vote(engine: Facegate, per_probe: list[list[FaceHit]], exclude: str | None, limit: int) -> list[SubjectHit]:
    best: dict[str, float] = {}
    votes: dict[str, int] = defaultdict(int)
    for hits in per_probe:
        for hit in hits:
            if hit.subject is None or hit.subject == exclude:
                continue
            votes[hit.subject] += 1
            best[hit.subject] = max(best.get(hit.subject, 0.0), hit.similarity)
    ranked = sorted(best, key=lambda s: (-votes[s], -best[s]))[:limit]
    return [SubjectHit(s, best[s], estimates(engine, best[s]), votes[s]) for s in ranked]


def _limits(engine: Facegate, decision: Decision) -> tuple[float, int]:
    threshold = decision.threshold if decision.threshold is not None else engine.calibration.default_threshold
    return threshold, decision.max_results or 10


def _search(
    engine: Facegate, collection_id: str, probes: np.ndarray, decision: Decision,
    exclude_rows: frozenset[int] = frozenset(), exclude_subject: str | None = None,
) -> tuple[list[FaceHit], list[SubjectHit]]:
    threshold, max_results = _limits(engine, decision)
    found = scored_search(
        engine, collection_id, probes, threshold=threshold, max_results=max_results, exclude_rows=exclude_rows
    )
    per_probe = [_hits(engine, matches) for matches in found]
    merged: dict[str, FaceHit] = {}
    for hits in per_probe:
        for hit in hits:
            if exclude_subject is not None and hit.subject == exclude_subject:
                continue
            if hit.face_id not in merged or merged[hit.face_id].similarity < hit.similarity:
                merged[hit.face_id] = hit
    matches = sorted(merged.values(), key=lambda h: -h.similarity)[:max_results]
    return matches, _vote(engine, per_probe, exclude_subject, max_results)


def search_templates(
    engine: Facegate, collection_id: str, probes: np.ndarray, decision: Decision
) -> tuple[list[FaceHit], list[SubjectHit]]:
    """Matches of templates an operation made itself (a video's tracks) under `decision`."""
    return _search(engine, collection_id, probes, decision)


def threshold_of(engine: Facegate, decision: Decision) -> float:
    """The similarity threshold a search under `decision` applies."""
    return _limits(engine, decision)[0]


def bound_model(engine: Facegate, collection_id: str) -> CollectionInfo:
    """Refuse a search of a collection whose templates another model or recipe made
    (MODEL_MISMATCH): their similarities would mean nothing. The collection, else. (A read:
    a snapshot without the write lock, as every read of a search.)"""
    with engine.read_sessions.begin() as session:
        collection = get_collection(session, collection_id=collection_id)
    ensure_template(collection, engine.template_id)
    return collection


def _outcome(result: SearchResult, probe_thumbnail: bytes | None = None) -> Outcome[SearchResult]:
    refs = [MatchRef(h.face_id, h.subject, h.similarity) for h in result.matches]
    return Outcome(result, results=refs, details={"subjects": [s.subject for s in result.subjects]},
                   probe_thumbnail=probe_thumbnail)


def search_image(
    engine: Facegate, caller: Caller, collection_id: str, image: bytes, limits: Limits = Limits()
) -> Gated[SearchResult]:
    """Search the largest face of `image` in a collection."""
    digest = hashlib.sha256(image).hexdigest()

    def prepare(decision: Decision) -> SearchResult:
        collection = bound_model(engine, collection_id)  # an unknown or foreign collection costs no analysis
        # The probe's crop goes with the leads of a collection that keeps thumbnails, nowhere else.
        faces = engine.analyze(image, max_faces=1, thumbnails=collection.keep_thumbnails and decision.review_required)
        if not faces:
            raise FacegateError(ErrorCode.NO_FACE, "no face found in the probe image")
        probe = faces[0]
        matches, subjects = _search(engine, collection_id, probe.template[None, :], decision)
        threshold, _ = _limits(engine, decision)
        return SearchResult(matches, subjects, threshold, decision.review_required, probe)

    return engine.gate.run(
        caller, Operation.SEARCH_IMAGE, collection_id=collection_id, limits=limits, probe_sha256=digest,
        prepare=prepare, commit=lambda _s, _d, result: _outcome(result, _sealed_probe(engine, result)),
    )


def _sealed_probe(engine: Facegate, result: SearchResult) -> bytes | None:
    """The probe's thumbnail as the leads keep it (sealed like templates), if one was made."""
    crop = None if result.searched_face is None else result.searched_face.thumbnail
    return None if crop is None else engine.codec.seal_thumbnail(crop)


def _search_enrolled(
    engine: Facegate, collection_id: str, decision: Decision, *,
    face_ids: list[str] | None = None, subject: str | None = None,
) -> SearchResult:
    """Search with templates already in the collection (of faces, or of a subject); the
    probes themselves, and for a subject its other faces, are never results."""
    bound_model(engine, collection_id)
    with engine.read_sessions.begin() as session:
        probe = templates_of(
            session, collection_id=collection_id, codec=engine.codec, face_ids=face_ids, subject_id=subject
        )
    if len(probe.vectors) == 0:
        raise FacegateError(ErrorCode.NO_FACE, f"subject {subject!r} has no faces to search with")
    matches, subjects = _search(
        engine, collection_id, probe.vectors, decision,
        exclude_rows=frozenset(probe.row_ids.tolist()), exclude_subject=subject,
    )
    return SearchResult(matches, subjects, _limits(engine, decision)[0], decision.review_required)


def search_face(
    engine: Facegate, caller: Caller, collection_id: str, face_id: str, limits: Limits = Limits()
) -> Gated[SearchResult]:
    """Search with the template of an enrolled face; the face itself is not a result."""
    def commit(session: Session, _d: Decision, result: SearchResult) -> Outcome[SearchResult]:
        # The probe is an enrolled face: its own kept thumbnail (already sealed) goes with the leads.
        kept = sealed_thumbnail(session, face_id) if result.review_required else None
        return _outcome(result, None if kept is None else kept[1])

    return engine.gate.run(
        caller, Operation.SEARCH_FACE, collection_id=collection_id, limits=limits,
        prepare=lambda decision: _search_enrolled(engine, collection_id, decision, face_ids=[face_id]),
        commit=commit,
    )


def search_subject(
    engine: Facegate, caller: Caller, collection_id: str, subject: str, limits: Limits = Limits()
) -> Gated[SearchResult]:
    """Other subjects that a subject's faces match, ranked by votes (SearchUsers)."""
    return engine.gate.run(
        caller, Operation.SEARCH_SUBJECT, collection_id=collection_id, limits=limits,
        prepare=lambda decision: _search_enrolled(engine, collection_id, decision, subject=subject),
        commit=lambda _s, _d, result: _outcome(result),
    )
