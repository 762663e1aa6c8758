"""The one core object: `Facegate`, built from `Settings`, driven by the CLI, the service
and the tests alike.

It owns the vision pipeline and the calibration of its template space. Models load on
first use of `pipeline` (never at import) and stay loaded for the life of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.settings import Settings
from facegate.vision import ImageLimits, Pipeline, PipelineConfig
from facegate.vision.calibration import Calibration, load_calibration, similarity
from facegate.vision.types import Face


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pipeline recipe that `settings` asks for."""
    return PipelineConfig(
        detector=settings.detector,
        fallback_detector=None if settings.fallback_detector == "none" else settings.fallback_detector,
        min_face_size=settings.min_face_size,
        limits=ImageLimits(settings.max_image_bytes, settings.max_image_pixels),
        runtime=settings.embedder_runtime,
        model_cache=settings.home / "models",
    )


@dataclass(frozen=True, slots=True)
class Match:
    """A scored comparison of two templates against the operating threshold."""

    similarity: float
    estimated_fmr: float
    threshold: float
    match: bool

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "similarity": round(self.similarity, 4),
            "estimated_fmr": self.estimated_fmr,
            "threshold": round(self.threshold, 4),
            "match": self.match,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """CompareFaces: the largest source face against every target face."""

    source_face: Face
    target_faces: tuple[tuple[Face, Match], ...]  # in detection order, largest first

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


class Facegate:
    """The engine: one per data directory and process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(pipeline_config(self.settings))

    @cached_property
    def calibration(self) -> Calibration:
        return load_calibration(self.pipeline.template_id)

    def score(self, a: np.ndarray, b: np.ndarray, threshold: float | None = None) -> Match:
        """Similarity, estimated FMR and decision for two templates."""
        cal = self.calibration
        t = cal.default_threshold if threshold is None else threshold
        s = float(similarity(a, b)[0])
        return Match(s, cal.estimated_fmr(s), t, s >= t)

    def detect(self, image: bytes) -> list[Face]:
        """Faces in an image, largest first (an image without faces gives an empty list)."""
        return self.pipeline.analyze(image)

    def compare(self, source: bytes, target: bytes, threshold: float | None = None) -> Comparison:
        """Compare the largest face of `source` with every face of `target`."""
        source_faces = self.pipeline.analyze(source, max_faces=1)
        if not source_faces:
            raise FacegateError(ErrorCode.NO_FACE, "no face found in the source image", image="source")
        target_faces = self.pipeline.analyze(target)
        if not target_faces:
            raise FacegateError(ErrorCode.NO_FACE, "no face found in the target image", image="target")
        probe = source_faces[0]
        scored = tuple((f, self.score(probe.template, f.template, threshold)) for f in target_faces)
        return Comparison(probe, scored)
