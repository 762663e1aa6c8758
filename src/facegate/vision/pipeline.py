"""One object that loads the models once and turns images into analysed faces.

    pipeline = Pipeline(PipelineConfig())
    faces = pipeline.analyze_file(Path("group.jpg"))
    faces[0].template, faces[0].box, faces[0].quality

Models are opened in the constructor (never at import), so building a `Pipeline` is the
one slow step; every call after that only runs them. The CLI, the service and the tests
all hold one `Pipeline` through the engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image
from platformdirs import user_cache_dir

from facegate.vision.align import CHIP_PADDING, CHIP_SIZE, Aligner
from facegate.vision.detect import Detector, open_detector
from facegate.vision.embed import DIMENSION, Embedder, embedder_class, normalise, open_embedder
from facegate.vision.image import ImageLimits, decode_image, decode_reduced, load_image
from facegate.vision.memory import give_back_memory
from facegate.vision.quality import assess
from facegate.vision.space import TemplateSpace
from facegate.vision.thumbnail import face_thumbnail
from facegate.vision.types import Box, Detection, Face


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything that changes which faces are found and which template they get.

    `flip` averages the descriptor of the chip and of its mirror image (test-time
    augmentation): it makes templates steadier and is part of the template recipe, so
    it is recorded with the model id (see `Pipeline.template_id`).
    """

    detector: str = "mtcnn"
    fallback_detector: str | None = "cnn-onnx"  # tried only when the main detector finds nothing
    min_face_size: int = 40
    upsample: int | None = None  # None: chosen from min_face_size
    flip: bool = True
    max_faces: int = 100
    limits: ImageLimits = field(default_factory=ImageLimits)
    runtime: str = "onnx"  # embedder runtime: "onnx" (fast) or "dlib" (reference)
    model_cache: Path = field(default_factory=lambda: Path(user_cache_dir("facegate", appauthor=False)))
    threads: int | None = None  # inference threads per pipeline; None: the runtime's default
    detect_max_pixels: int = 1920 * 1080  # larger photos are detected on a scaled-down copy


@dataclass(frozen=True, slots=True)
class Prepared:
    """One image's faces up to the aligned chips: all that embedding needs, without the image.

    Why a separate step: embedding is the one stage that can be batched, so bulk work
    prepares several images, then embeds all their chips in one call (`Pipeline.finish`).
    """

    boxes: tuple[Box, ...]
    confidences: tuple[float, ...]
    points: tuple[tuple[tuple[int, int], ...], ...]
    chips: np.ndarray  # (faces, 150, 150, 3) uint8


def _no_chips() -> np.ndarray:
    return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)


def downscale(image: np.ndarray, scale: float) -> np.ndarray:
    """The image resized by `scale` < 1 with an area filter (no aliasing of fine detail)."""
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))


def upscale_box(box: Box, factor: float, width: int, height: int) -> Box:
    """A box found on a scaled copy, in the full image's pixels, clipped to it."""
    left, top = int(box.left * factor), int(box.top * factor)
    right = min(width, round((box.left + box.width) * factor))
    bottom = min(height, round((box.top + box.height) * factor))
    return Box(left, top, right - left, bottom - top)


def template_space(config: PipelineConfig, embedder: Embedder | type[Embedder] | None = None) -> TemplateSpace:
    """The template space `config` makes (of `embedder`, else of the class its runtime
    names), known without loading any model."""
    made_by = embedder if embedder is not None else embedder_class(config.runtime)
    fallback = f"|{config.fallback_detector}" if config.fallback_detector not in (None, config.detector) else ""
    return TemplateSpace(
        model_id=made_by.model_id, dimension=made_by.dimension, chip=f"{CHIP_SIZE}px-pad{CHIP_PADDING}-5pt", flip=config.flip,
        detector=f"{config.detector}{fallback}:min{config.min_face_size}",
    )


class Pipeline:
    """Decode, detect, align, assess and embed with models loaded once."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), embedder: Embedder | None = None):
        self.config = config
        self.detector: Detector = open_detector(
            config.detector, config.min_face_size, config.upsample, config.model_cache
        )
        self.aligner = Aligner()
        self.embedder: Embedder = (
            embedder if embedder is not None else open_embedder(config.runtime, config.model_cache, config.threads)
        )

    @property
    def model_id(self) -> str:
        """Identifies the template space: a collection only holds templates of one."""
        return self.embedder.model_id

    @property
    def space(self) -> TemplateSpace:
        """The template space of the loaded models (see `facegate.vision.space`)."""
        return template_space(self.config, self.embedder)

    @property
    def template_id(self) -> str:
        """Model id plus the template recipe; calibration tables are keyed by this."""
        return self.space.template_id

    @cached_property
    def _fallback(self) -> Detector | None:
        name = self.config.fallback_detector
        if name is None or name == self.config.detector:
            return None
        return open_detector(name, self.config.min_face_size, self.config.upsample, self.config.model_cache)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, self.config.limits)

    def analyze(self, data: bytes, max_faces: int | None = None, thumbnails: bool = False) -> list[Face]:
        """Faces in encoded image bytes, largest first (with `thumbnails`, each with its crop)."""
        return self.analyze_sized(data, max_faces, thumbnails)[0]

    def analyze_sized(
        self, data: bytes, max_faces: int | None = None, thumbnails: bool = False
    ) -> tuple[list[Face], tuple[int, int]]:
        """Faces in encoded image bytes, largest first, and the photo's (width, height)
        (enrolment tells a portrait's subject by the central face); with `thumbnails`, each
        face with its thumbnail cut from the decoded image (a collection that keeps them).

        A photo over `limits.work_pixels` is decoded at that size (`decode_reduced`): boxes,
        landmarks and face sizes are mapped back to the photo's pixels, and the memory of
        the large decode is given back to the system afterwards."""
        image, factor = decode_reduced(data, self.config.limits)
        height, width = round(image.shape[0] * factor), round(image.shape[1] * factor)
        if factor == 1.0:
            faces = self.faces(image, max_faces)
            if thumbnails:
                faces = [replace(f, thumbnail=face_thumbnail(image, f.box)) for f in faces]
            return faces, (width, height)
        try:
            prepared = self.prepare(image, max_faces)
            crops = [face_thumbnail(image, b) if thumbnails else None for b in prepared.boxes]
            del image
            faces = self.finish([replace(
                prepared,
                boxes=tuple(upscale_box(b, factor, width, height) for b in prepared.boxes),
                points=tuple(tuple((round(x * factor), round(y * factor)) for x, y in p) for p in prepared.points),
            )])[0]
            return [replace(f, thumbnail=crop) for f, crop in zip(faces, crops, strict=True)], (width, height)
        finally:
            give_back_memory()

    def analyze_file(self, path: Path, max_faces: int | None = None) -> list[Face]:
        return self.faces(load_image(path, self.config.limits), max_faces)

    def detect(self, image: np.ndarray, fallback: bool = True) -> list[Detection]:
        """Detections largest first; the fallback detector runs only if none were found.

        Photos larger than `detect_max_pixels` are searched on a copy scaled down to that
        size, as Rekognition does above 1920x1080: the minimum face size then applies at
        that scale, so a 12-megapixel photo is not scanned for 40-pixel faces at 48
        megapixels. Boxes are mapped back; landmarks and chips use the full image.
        An image smaller than the minimum face size cannot hold a face we would report
        (and dlib's CNN refuses inputs smaller than its filters): it has none.
        """
        scale = min(1.0, math.sqrt(self.config.detect_max_pixels / (image.shape[0] * image.shape[1])))
        scan = image if scale == 1.0 else downscale(image, scale)
        if min(scan.shape[:2]) < self.config.min_face_size:
            return []
        found = self.detector.detect(scan)
        if not found and fallback and self._fallback is not None:
            found = self._fallback.detect(scan)
        if scale == 1.0:
            return found
        height, width = image.shape[:2]
        return [replace(d, box=upscale_box(d.box, 1.0 / scale, width, height)) for d in found]

    def faces(self, image: np.ndarray, max_faces: int | None = None, fallback: bool = True) -> list[Face]:
        """Detect, then analyse at most `max_faces` of the largest faces."""
        return self.finish([self.prepare(image, max_faces, fallback=fallback)])[0]

    def faces_at(
        self, image: np.ndarray, boxes: list[Box], confidences: list[float] | None = None
    ) -> list[Face]:
        """Analyse faces at given boxes (from a detector, or a caller who knows where)."""
        return self.finish([self.prepare_at(image, boxes, confidences)])[0]

    def prepare(
        self, image: np.ndarray, max_faces: int | None = None, central: bool = False, fallback: bool = True
    ) -> Prepared:
        """Detect, then align at most `max_faces` faces: the largest, or with `central` the
        nearest the photo's centre.

        `central` is for evaluation sets such as LFW, whose photos are centred on the
        labelled person: a face beside them may well be bigger (nearer the camera, or cut
        by the frame, which makes a detector's box square and large) and is not the one
        the label names.
        """
        limit = self.config.max_faces if max_faces is None else max_faces
        detections = self.detect(image, fallback)
        if central:
            height, width = image.shape[:2]
            detections.sort(key=lambda d: math.dist(d.box.centre, (width / 2, height / 2)))
        detections = detections[:limit]
        return self.prepare_at(image, [d.box for d in detections], [d.confidence for d in detections])

    def prepare_at(
        self, image: np.ndarray, boxes: list[Box], confidences: list[float] | None = None
    ) -> Prepared:
        """Landmarks and aligned chips of the faces at `boxes`."""
        shapes = [self.aligner.landmarks(image, box) for box in boxes]
        chips = np.stack([self.aligner.chip(image, shape) for shape in shapes]) if shapes else _no_chips()
        return Prepared(
            tuple(boxes),
            tuple(confidences or [0.0] * len(boxes)),
            tuple(self.aligner.points(shape) for shape in shapes),
            chips,
        )

    def finish(self, batch: Sequence[Prepared]) -> list[list[Face]]:
        """Faces of each prepared image, their chips embedded in one batch."""
        chips = np.concatenate([p.chips for p in batch]) if batch else _no_chips()
        templates = self.embed_chips(chips)
        out, start = [], 0
        for prepared in batch:
            faces = []
            for i, (box, conf, points) in enumerate(zip(prepared.boxes, prepared.confidences, prepared.points)):
                quality = assess(prepared.chips[i], min(box.width, box.height), points)
                faces.append(Face(box, conf, points, quality, templates[start + i]))
            start += len(prepared.boxes)
            out.append(faces)
        return out

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length templates for aligned chips, with the mirror average if configured."""
        if len(chips) == 0:
            return np.zeros((0, DIMENSION), np.float32)
        if not self.config.flip:
            return normalise(self.embedder.embed_chips(chips))
        both = self.embedder.embed_chips(np.concatenate([chips, chips[:, :, ::-1]]))
        half = len(chips)
        return normalise(both[:half] + both[half:])
