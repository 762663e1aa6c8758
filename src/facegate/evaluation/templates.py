"""Templates for a set of image files, one per image (its largest face), on all cores.

Evaluation runs need exactly one template per image. When no face is found the caller
chooses what happens (`no_face`): take the central half of the image as the face box
(`centre`), or leave the image without a template (`reject`). Either way it is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegate.vision.image import load_image
from facegate.vision.parallel import analyze_files
from facegate.vision.pipeline import Pipeline, PipelineConfig
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
    config: PipelineConfig,
    workers: int,
    no_face: str = "centre",
    progress: Callable[[int], None] | None = None,
) -> TemplateSet:
    """One template per image `root / name`; `pipeline` is used only for the no-face fallback."""
    templates: dict[str, np.ndarray] = {}
    missing: list[str] = []
    unreadable: list[str] = []
    paths = [root / name for name in names]
    for name, result in zip(names, analyze_files(paths, config, workers, max_faces=1)):
        if result.error is not None and result.error.code.value != "NO_FACE":
            unreadable.append(name)
        elif result.faces:
            templates[name] = result.faces[0].template
        else:
            missing.append(name)
        if progress is not None:
            progress(1)
    if no_face == "centre":
        for name in missing:
            image = load_image(root / name, config.limits)
            templates[name] = pipeline.faces_at(image, [centre_box(image)])[0].template
    return TemplateSet(templates, tuple(missing), tuple(unreadable))
