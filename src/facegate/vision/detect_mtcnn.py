"""MTCNN face detection on ONNX Runtime: the fast default detector.

Why MTCNN: facegate must find faces down to `min_face_size` (40 px). dlib's HOG window is
80 px, so it has to scan the photo enlarged 2x (four times the pixels), and that scan was
two thirds of facegate's time per photo; the MMOD CNN is slower still. MTCNN's P-Net has a
12 px window, so it scans a pyramid that starts *below* the photo's size (12/32 of it for
40 px faces): about 4 ms for an LFW photo, with recall at least as good as HOG's
(docs/benchmarks.md, "Detectors").

The cascade follows Zhang et al. (2016) and facenet-pytorch's `detect_face`, in image
coordinates with exclusive right/bottom edges:

1. P-Net once over all pyramid levels packed in one canvas (`mtcnn_pyramid`); cells
   scoring >= thresholds[0] become 12 px boxes mapped back to the image; NMS per level
   (IoU 0.5), then over all levels (`nms[0]`); box regression; boxes squared.
2. R-Net on 24x24 crops (zero outside the image, as the original; facenet-pytorch
   stretches edge crops instead), cut inside its ONNX graph: score >= thresholds[1],
   NMS (`nms[1]`), regression, squared.
3. O-Net on 48x48 crops: score >= thresholds[2], five landmarks, regression, then NMS by
   the intersection over the smaller box (0.7).

The boxes are then put in dlib's convention (`to_dlib_box`), because the 5-point shape
predictor that aligns faces for the embedder was trained on dlib's boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from facegate.errors import ErrorCode, FacegateError
from facegate.vision import mtcnn_net, mtcnn_pyramid, onnx_cache
from facegate.vision.types import Box, Detection

PNET_CELL = mtcnn_pyramid.WINDOW
DLIB_SIDE = 2.06  # dlib box side / mean of eye distance and eye-to-mouth distance
DLIB_SHIFT = (-0.037, -0.047)  # dlib box centre - eyes-and-mouth midpoint, in box sides


@dataclass(frozen=True, slots=True)
class MtcnnConfig:
    """The cascade's settings: the paper's, but for O-Net's threshold.

    The paper's 0.7 for O-Net let a 36 px patch of tablecloth through at 0.78
    (insightface's t1.jpg). 0.8, insightface's own MTCNN setting, drops it and keeps a
    face half cut by the frame that scores 0.89 (deepface's selfie-many-people.jpg);
    whole faces score above 0.99 (1st percentile of 300 LFW photos, at full size and
    shrunk to 45 px faces).
    """

    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)
    factor: float = 0.709  # pyramid step: each level is this much smaller
    # Box sides estimated from landmarks scatter by about 10% around dlib's (which are
    # themselves quantised by its pyramid): faces down to this fraction of min_face_size
    # are scanned for and kept, so a face at the limit is not lost to the estimate.
    size_tolerance: float = 0.8
    # IoU above which a weaker candidate is dropped after P-Net and after R-Net. The
    # paper's 0.7 passes about 7 boxes per face to O-Net, 0.5 about 3; recall, groups and
    # the alignment of the faces found were unchanged on 300 LFW photos, for 2 ms less.
    nms: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True, slots=True)
class Candidates:
    """Boxes as (K, 4) float (x1, y1, x2, y2), with scores (K,) and landmarks (K, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray

    @staticmethod
    def empty() -> Candidates:
        return Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


class MtcnnDetector:
    """MTCNN with facenet-pytorch's weights, converted to ONNX and cached in `cache_dir`."""

    name = "mtcnn"

    def __init__(
        self, cache_dir: Path, min_face_size: int = 40, config: MtcnnConfig = MtcnnConfig(), threads: int | None = None
    ) -> None:
        if min_face_size < 1:
            raise FacegateError(ErrorCode.INVALID_ARGUMENT, "the mtcnn detector needs a min_face_size of at least 1 px")
        self.min_face_size = min_face_size
        self.config = config
        self._nets = {
            net: onnx_cache.cpu_session(mtcnn_net.ensure_onnx(net, Path(cache_dir)), threads)
            for net in ("pnet", "rnet", "onet")
        }

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, boxes in dlib's convention, clipped, largest first."""
        found = self.find(image)
        height, width = image.shape[:2]
        out: list[Detection] = []
        for score, points in zip(found.scores, found.points):
            box = to_dlib_box(points)
            if max(box[2] - box[0], box[3] - box[1]) < self.min_face_size * self.config.size_tolerance:
                continue
            clipped = _clip(box, width, height)
            if clipped is not None:
                out.append(Detection(box=clipped, confidence=float(score), detector=self.name))
        return sorted(out, key=lambda d: -d.box.area)

    def find(self, image: np.ndarray) -> Candidates:
        """The cascade's final boxes, scores and landmarks, in image pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise FacegateError(ErrorCode.INVALID_IMAGE, "the detector needs an RGB uint8 image")
        found = self._propose(Image.fromarray(image))
        for net in ("rnet", "onet"):
            if len(found.boxes) == 0:
                return Candidates.empty()
            found = self._refine(image, found, net)
        return found

    def _propose(self, pil: Image.Image) -> Candidates:
        first_scale = PNET_CELL / (self.min_face_size * self.config.size_tolerance)
        pyramid = mtcnn_pyramid.build(pil, first_scale, self.config.factor)
        if pyramid is None:
            return Candidates.empty()
        prob, reg = self._nets["pnet"].run(["prob", "reg"], {mtcnn_net.INPUT_NAME: pyramid.canvas[None]})
        rows, cols = np.nonzero(prob[0, 0] >= self.config.thresholds[0])
        boxes, levels, inside = mtcnn_pyramid.windows(pyramid, rows, cols)
        rows, cols = rows[inside], cols[inside]
        scores, regs = prob[0, 0, rows, cols], reg[0][:, rows, cols].T
        # NMS within each level (IoU 0.5), in one call: each level's boxes are moved
        # apart from the others' so that boxes of different levels never overlap.
        apart = (levels.astype(np.float32) * (2 * max(pil.size)))[:, None]
        keep = nms(boxes + apart, scores, 0.5)
        boxes, scores, regs = boxes[keep], scores[keep], regs[keep]
        keep = nms(boxes, scores, self.config.nms[0])
        refined = square(regress(boxes[keep], regs[keep]))
        return Candidates(refined, scores[keep], np.zeros((len(keep), 5, 2), np.float32))

    def _refine(self, image: np.ndarray, found: Candidates, net: str) -> Candidates:
        feeds = {mtcnn_net.INPUT_NAME: image[None], mtcnn_net.BOXES_NAME: found.boxes}
        outputs = self._nets[net].run(None, feeds)
        named = dict(zip((o.name for o in self._nets[net].get_outputs()), outputs))
        scores = named["prob"][:, 0]
        passed = scores >= self.config.thresholds[1 if net == "rnet" else 2]
        boxes, scores, reg = found.boxes[passed], scores[passed], named["reg"][passed]
        if net == "rnet":
            keep = nms(boxes, scores, self.config.nms[1])
            refined = square(regress(boxes[keep], reg[keep]))
            return Candidates(refined, scores[keep], np.zeros((len(keep), 5, 2), np.float32))
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        marks = named["points"][passed]
        points = np.stack(
            [boxes[:, :1] + w[:, None] * marks[:, :5], boxes[:, 1:2] + h[:, None] * marks[:, 5:]], axis=2
        )
        boxes = regress(boxes, reg)
        keep = nms(boxes, scores, 0.7, by_min=True)
        return Candidates(boxes[keep], scores[keep], points[keep].astype(np.float32))


def to_dlib_box(points: np.ndarray) -> tuple[int, int, int, int]:
    """An MTCNN face as the square box dlib's HOG detector would draw: (x1, y1, x2, y2).

    Placed from O-Net's landmarks (eyes, nose, mouth corners), which sit on the face more
    steadily than its box. The side is DLIB_SIDE times the mean of the eye distance and
    the eye-to-mouth distance (one shrinks as the head turns, the other as it nods), and
    the centre is the midpoint of eyes and mouth, shifted by DLIB_SHIFT sides.

    The constants are the medians of dlib HOG boxes against these landmarks on 459 UTKFace
    photos (not LFW, on which accuracy is measured). Started from such a box, dlib's
    5-point shape predictor puts its points where it puts them from the HOG box itself
    to within 2% of the distance between the eyes (mean of the worst point per face:
    0.021 on 176 LFW photos, 0.015 on 457 other UTKFace photos).
    """
    eyes, mouth = points[:2].mean(axis=0), points[3:5].mean(axis=0)
    side = DLIB_SIDE * (float(np.linalg.norm(mouth - eyes)) + float(np.linalg.norm(points[1] - points[0]))) / 2
    cx = (eyes[0] + mouth[0]) / 2 + DLIB_SHIFT[0] * side
    cy = (eyes[1] + mouth[1]) / 2 + DLIB_SHIFT[1] * side
    left, top, whole = round(cx - side / 2), round(cy - side / 2), round(side)
    return left, top, left + whole, top + whole


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Boxes moved by the nets' regression outputs, which are fractions of the box size."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return (boxes + reg * size).astype(np.float32)


def square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square on its longer side, around the same centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1, y1 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first.

    Overlap is intersection over union, or over the smaller box with `by_min` (which
    also removes a small box lying inside a larger, better one).
    """
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-9)]
    return np.asarray(keep, dtype=np.int64)


def _clip(box: tuple[int, int, int, int], width: int, height: int) -> Box | None:
    left, top = max(0, box[0]), max(0, box[1])
    right, bottom = min(width, box[2]), min(height, box[3])
    if right - left < 2 or bottom - top < 2:
        return None
    return Box(left, top, right - left, bottom - top)
