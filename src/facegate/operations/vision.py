"""Detect and compare: face operations that touch no collection, gated like the rest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gated, Limits, Outcome
from facegate.governance import Decision, Operation
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
    """CompareFaces: the largest source face against every target face."""

    source_face: Face
    target_faces: tuple[tuple[Face, Match], ...]  # largest first

    @property
    def best(self) -> Match:
        """The largest source face against the largest target face."""
        return self.target_faces[0][1]

    def to_dict(self) -> dict[str, object]:
        return {
            **self.best.to_dict(),
            "source_face": self.source_face.to_dict(),
            "target_faces": [{**face.to_dict(), **m.to_dict()} for face, m in self.target_faces],
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
        return Comparison(probe, tuple((f, score(engine, probe, f, threshold)) for f in target_faces))

    return engine.gate.run(
        caller, Operation.COMPARE, limits=limits, probe_sha256=sha256(source),
        prepare=prepare,
        commit=lambda _s, _d, result: Outcome(
            result, details={"target_sha256": sha256(target), "similarity": round(result.best.similarity, 4)}
        ),
    )
