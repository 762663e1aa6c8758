"""Scores as the product reports them: normalized (when on) and with both FMR estimates.

The vector index ranks by raw cosine; with fair score normalization the reported score of
a candidate is `normalize(raw, probe offset, face offset)`, which can reorder candidates.
`scored_search` therefore fetches from the index every face whose raw similarity could
still reach the threshold after the shift, and keeps fetching more until no face left
in the index could enter the top `max_results`: the k-th best normalized score found is
at least the best score any unfetched face could reach (its raw score is at most the
last fetched one, its offset at least the smallest cluster offset). The result is the
exhaustive normalized ranking, whatever the offsets.

Every match carries `estimated_fmr` (population calibration) and, when a group
calibration is shipped for the score space, `estimated_fmr_worst_group` with its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.engine import Facegate
from facegate.store.templates import templates_of
from facegate.store.collection_indexes import FaceMatch
from facegate.vision.calibration import similarity_from_cosine
from facegate.vision.score_normalization import normalize
from facegate.vision.types import Face


@dataclass(frozen=True, slots=True)
class Estimates:
    """What a score means: population FMR and the worst group's (with that group)."""

    estimated_fmr: float
    estimated_fmr_worst_group: float | None
    worst_group: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "estimated_fmr": self.estimated_fmr,
            "estimated_fmr_worst_group": self.estimated_fmr_worst_group,
            "worst_group": self.worst_group,
        }

    def worst_text(self) -> str:
        """The worst-group estimate for a human line ("" without a group calibration)."""
        if self.estimated_fmr_worst_group is None:
            return ""
        return f" (worst group {self.worst_group}: {self.estimated_fmr_worst_group:.1e})"


def estimates(engine: Facegate, score: float) -> Estimates:
    groups = engine.group_calibration
    worst, group = groups.worst_group(score) if groups is not None else (None, None)
    return Estimates(engine.calibration.estimated_fmr(score), worst, group)


def stored_offsets(engine: Facegate, faces: Sequence[Face]) -> list[float] | None:
    """Offsets to store beside newly enrolled faces; None (NULL) while normalization is off."""
    if not engine.scorer.normalized or not faces:
        return None
    return engine.scorer.offsets(np.stack([f.template for f in faces])).tolist()


def face_scores(engine: Facegate, a: Face, b: Face) -> float:
    """The reported score of two analysed faces (compare): the same function as search."""
    return float(engine.scorer.pairs(a.template[None, :], b.template[None, :])[0])


def _trusted(engine: Facegate, stored: float | None) -> bool:
    """A stored offset is used only if it is one of the shipped clusters' offsets: a NULL, a
    stale one (another normalization) or a tampered one (a face made to match everyone) is
    recomputed from the template instead."""
    known = engine.scorer.normalization.offsets if engine.scorer.normalization is not None else np.zeros(1)
    return stored is not None and bool(np.any(np.abs(known - stored) <= 1e-4))


def _offsets(engine: Facegate, collection_id: str, matches: Sequence[FaceMatch]) -> np.ndarray:
    """Stored offsets of matched faces; the missing or untrusted ones computed from their templates."""
    out = np.array([m.face.score_offset if _trusted(engine, m.face.score_offset) else np.nan for m in matches])
    missing = [m.face.face_id for m, o in zip(matches, out, strict=True) if np.isnan(o)]
    if missing:
        with engine.read_sessions.begin() as session:  # a read: no write lock
            found = templates_of(session, collection_id=collection_id, codec=engine.codec, face_ids=missing)
        computed = dict(zip(found.face_ids, engine.scorer.offsets(found.vectors).tolist()))
        for i, m in enumerate(matches):
            if np.isnan(out[i]):
                out[i] = computed.get(m.face.face_id, 0.0)
    return out


def _cosine(similarity: float) -> float:
    return similarity / 50.0 - 1.0  # inverse of similarity = 50 (1 + cos)


def scored_search(
    engine: Facegate, collection_id: str, probes: np.ndarray, *, threshold: float, max_results: int,
    exclude_rows: frozenset[int] = frozenset(),
) -> list[list[tuple[FaceMatch, float]]]:
    """Per probe, up to `max_results` (face, reported score >= threshold), best first."""
    scorer = engine.scorer
    if not scorer.normalized:
        found = engine.vectors.search(collection_id, probes, max_results=max_results,
                                      min_similarity=_cosine(threshold), exclude_row_ids=exclude_rows)
        return [[(m, float(normalize(similarity_from_cosine(m.similarity), 0.0, 0.0))) for m in row]
                for row in found]
    probe_offsets = scorer.offsets(probes)
    return [
        _rerank(engine, collection_id, probe, float(offset), threshold, max_results, exclude_rows)
        for probe, offset in zip(probes, probe_offsets, strict=True)
    ]


def _rerank(
    engine: Facegate, collection_id: str, probe: np.ndarray, probe_offset: float, threshold: float,
    max_results: int, exclude_rows: frozenset[int],
) -> list[tuple[FaceMatch, float]]:
    lowest = engine.scorer.min_offset
    # raw similarity a face needs so that its normalized score can reach the threshold
    floor = min(100.0, threshold + 0.5 * (probe_offset + lowest))
    fetch = 2 * max_results + 8
    while True:
        matches = engine.vectors.search(collection_id, probe[None, :], max_results=fetch,
                                        min_similarity=_cosine(floor), exclude_row_ids=exclude_rows)[0]
        raw = np.array([float(similarity_from_cosine(m.similarity)) for m in matches])
        scores = normalize(raw, probe_offset, _offsets(engine, collection_id, matches)) if matches else raw
        ranked = sorted(
            ((m, float(s)) for m, s in zip(matches, scores, strict=True) if s >= threshold),
            key=lambda item: -item[1],
        )[:max_results]
        exhausted = len(matches) < fetch
        if exhausted:
            return ranked
        best_unfetched = float(normalize(raw[-1], probe_offset, lowest))
        if len(ranked) == max_results and ranked[-1][1] >= best_unfetched:
            return ranked
        if best_unfetched < threshold:
            return ranked
        fetch *= 4
