"""Follow faces across sampled video frames, so that a person is searched once per
appearance, with their best frames, instead of once per frame.

A face joins the open track it overlaps (IoU of the boxes) and resembles (cosine of the
templates), or, after motion or a zoom too fast for the boxes to overlap, the open track
it resembles closely. A track not seen for `max_gap` seconds is closed: a person who
leaves and comes back later starts a new track (a new appearance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from facegate.vision.types import Box, Face, QualityFilter

_LEVEL_RANK = {QualityFilter.NONE: 0, QualityFilter.LOW: 1, QualityFilter.MEDIUM: 2, QualityFilter.HIGH: 3}


@dataclass(frozen=True, slots=True)
class Sighting:
    """A face seen at one sampled frame."""

    time: float
    face: Face


@dataclass(slots=True)
class Track:
    """One face followed through consecutive frames."""

    index: int
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.sightings[0].time

    @property
    def end(self) -> float:
        return self.sightings[-1].time

    @property
    def last_box(self) -> Box:
        return self.sightings[-1].face.box

    def mean_template(self) -> np.ndarray:
        mean = np.mean([s.face.template for s in self.sightings[-5:]], axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def best(self, count: int) -> list[Sighting]:
        """The `count` sightings of best quality: the frames worth searching with."""
        return sorted(self.sightings, key=lambda s: quality_rank(s.face), reverse=True)[:count]


def quality_rank(face: Face) -> tuple[int, float]:
    """Higher is better: quality level first, then a large, sharp, frontal face."""
    q = face.quality
    return _LEVEL_RANK[q.level], q.face_size * min(q.sharpness, 500.0) / (1.0 + abs(q.yaw) / 15.0)


def iou(a: Box, b: Box) -> float:
    left, top = max(a.left, b.left), max(a.top, b.top)
    right, bottom = min(a.left + a.width, b.left + b.width), min(a.top + a.height, b.top + b.height)
    inter = max(0, right - left) * max(0, bottom - top)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Cosine thresholds on unit templates. In the default template space (dlib ResNet,
    mirror-averaged) photos of different people average 0.84 and reach 0.92 on LFW, other
    photos of the same person average 0.96, and one face in consecutive frames scores
    higher still: overlap plus 0.9, or 0.94 alone, keeps two people apart."""

    max_gap: float = 1.0  # seconds a track may go unseen and still continue
    min_iou: float = 0.2
    min_cosine_overlapping: float = 0.9
    min_cosine_jump: float = 0.94  # without overlap (fast motion, a cut, a zoom)

    @classmethod
    def for_rate(cls, fps: float) -> TrackerConfig:
        """A gap of at least a second, and never less than two and a half sampling steps."""
        return cls(max_gap=max(1.0, 2.5 / fps))


class Tracker:
    """Assigns each frame's faces to tracks, greedily by IoU plus template similarity."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._open: list[Track] = []
        self._closed: list[Track] = []
        self._next = 0

    def update(self, time: float, faces: Sequence[Face]) -> list[Track]:
        """Add one frame's faces; returns the tracks they joined or started, in face order."""
        self._close_stale(time)
        pairs = []
        for ti, track in enumerate(self._open):
            mean = track.mean_template()
            for fi, face in enumerate(faces):
                overlap = iou(track.last_box, face.box)
                cosine = float(np.dot(mean, face.template))
                near = overlap >= self.config.min_iou and cosine >= self.config.min_cosine_overlapping
                if near or cosine >= self.config.min_cosine_jump:
                    pairs.append((overlap + cosine, ti, fi))
        taken_tracks: set[int] = set()
        assigned: dict[int, Track] = {}
        for _score, ti, fi in sorted(pairs, reverse=True):
            if ti in taken_tracks or fi in assigned:
                continue
            taken_tracks.add(ti)
            assigned[fi] = self._open[ti]
        for fi, face in enumerate(faces):
            if fi not in assigned:
                assigned[fi] = Track(self._next)
                self._next += 1
                self._open.append(assigned[fi])
            assigned[fi].sightings.append(Sighting(time, face))
        return [assigned[fi] for fi in range(len(faces))]

    def _close_stale(self, now: float) -> None:
        stale = [t for t in self._open if now - t.end > self.config.max_gap]
        self._open = [t for t in self._open if now - t.end <= self.config.max_gap]
        self._closed.extend(stale)

    def finish(self) -> list[Track]:
        """Every track, closed and open, in order of their first sighting."""
        tracks = self._closed + self._open
        self._closed, self._open = tracks, []
        return sorted(tracks, key=lambda t: t.index)
