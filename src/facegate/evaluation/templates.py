"""One template per image (its central face) for evaluation runs, from the on-disk cache.

Built on `template_cache.cached_analyses`, so a second run over the same photos with the
same recipe reads templates instead of computing them. When no face is found the caller
chooses what happens (`no_face`): take the central half of the image as the face box
(`centre`), or leave the image without a template (`reject`). Either way it is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.evaluation.template_cache import FACE, NO_FACE, cached_analyses
from facegate.vision.image import load_image
from facegate.vision.pipeline import Pipeline
from facegate.vision.types import Box


@dataclass(frozen=True, slots=True)
class TemplateSet:
    templates: dict[str, np.ndarray]  # key: the name the caller gave for the image
    no_face: tuple[str, ...]
    unreadable: tuple[str, ...]


def centre_box(image: np.ndarray) -> Box:
    height, width = image.shape[:2]
    return Box(width // 4, height // 4, width // 2, height // 2)


def image_templates(
    names: Sequence[str],
    root: Path,
    pipeline: Pipeline,
    cache_dir: Path,
    workers: int,
    no_face: str = "centre",
) -> TemplateSet:
    """One template per image `root / name` (central face), with a progress bar on stderr."""
    analyses = cached_analyses([root / n for n in names], pipeline, cache_dir, workers=workers)
    templates: dict[str, np.ndarray] = {}
    missing: list[str] = []
    unreadable: list[str] = []
    for name, outcome, template in zip(names, analyses.outcome, analyses.templates):
        if outcome == FACE:
            templates[name] = template
        elif outcome == NO_FACE:
            missing.append(name)
        else:
            unreadable.append(name)
    if no_face == "centre":
        for name in missing:
            image = load_image(root / name, pipeline.config.limits)
            templates[name] = pipeline.faces_at(image, [centre_box(image)])[0].template
    return TemplateSet(templates, tuple(missing), tuple(unreadable))
