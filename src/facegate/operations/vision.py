"""Detect and compare: face operations that touch no collection, gated like the rest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gated, Limits, Outcome
from facegate.governance import Decision, Operation
from facegate.governance.leads import lead_fields
from facegate.operations.scoring import Estimates, estimates, face_scores
from facegate.vision.types import Face


@dataclass(frozen=True, slots=True)
class Match:
    """A scored comparison against the operating threshold."""

    similarity: float
    estimates: Estimates
    threshold: float
    match: bool

    @property
    def estimated_fmr(self) -> float:
        return self.estimates.estimated_fmr

    def to_dict(self) -> dict[str, object]:
        return {
            "similarity": round(self.similarity, 4),
            **self.estimates.to_dict(),
            "threshold": round(self.threshold, 4),
            "match": self.match,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """CompareFaces: the largest source face against every target face.

    As Rekognition answers it: every target face with its similarity (`target_faces`, in
    detection order), the ones at or above the threshold (`matches`, best first), the
    others (`unmatched`), and a headline that is the best match, whichever face it is.
    """

    source_face: Face
    target_faces: tuple[tuple[Face, Match], ...]  # detection order (largest first)
    review_required: bool = False

    @property
    def best_index(self) -> int:
        """The target face most like the source face."""
        return max(range(len(self.target_faces)), key=lambda i: self.target_faces[i][1].similarity)

    @property
    def best(self) -> Match:
        return self.target_faces[self.best_index][1]

    def ranked(self, matched: bool) -> list[int]:
        found = [i for i, (_f, m) in enumerate(self.target_faces) if m.match is matched]
        return sorted(found, key=lambda i: -self.target_faces[i][1].similarity)

    def _target(self, i: int) -> dict[str, object]:
        face, m = self.target_faces[i]
        return {"target_index": i, **face.to_dict(), **m.to_dict()}

    def to_dict(self) -> dict[str, object]:
        return {
            **self.best.to_dict(),
            "best_target_index": self.best_index,
            "source_face": self.source_face.to_dict(),
            "target_faces": [self._target(i) for i in range(len(self.target_faces))],
            "matches": [self._target(i) for i in self.ranked(True)],
            "unmatched": [self._target(i) for i in self.ranked(False)],
            **lead_fields(self.review_required),
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def detect(engine: Facegate, caller: Caller, image: bytes) -> Gated[list[Face]]:
    """Faces in an image, largest first (none found is an empty list, not an error)."""
    return engine.gate.run(
        caller, Operation.DETECT, probe_sha256=sha256(image),
        prepare=lambda _d: engine.analyze(image),
        commit=lambda _s, _d, faces: Outcome(faces, details={"faces": len(faces)}),
    )


def score(engine: Facegate, a: Face, b: Face, threshold: float) -> Match:
    s = face_scores(engine, a, b)
    return Match(s, estimates(engine, s), threshold, s >= threshold)


def compare(
    engine: Facegate, caller: Caller, source: bytes, target: bytes, limits: Limits = Limits()
) -> Gated[Comparison]:
    """Compare the largest face of `source` with every face of `target`."""

    def prepare(decision: Decision) -> Comparison:
        source_faces = engine.analyze(source, max_faces=1)
        if not source_faces:
            raise FacegateError(ErrorCode.NO_FACE, "no face found in the source image", image="source")
        target_faces = engine.analyze(target)
        if not target_faces:
            raise FacegateError(ErrorCode.NO_FACE, "no face found in the target image", image="target")
        threshold = decision.threshold if decision.threshold is not None else engine.calibration.default_threshold
        probe = source_faces[0]
        return Comparison(
            probe, tuple((f, score(engine, probe, f, threshold)) for f in target_faces), decision.review_required
        )

    return engine.gate.run(
        caller, Operation.COMPARE, limits=limits, probe_sha256=sha256(source),
        prepare=prepare,
        commit=lambda _s, _d, result: Outcome(
            result, details={
                "target_sha256": sha256(target), "similarity": round(result.best.similarity, 4),
                "target_faces": len(result.target_faces), "matches": len(result.ranked(True)),
            }
        ),
    )
