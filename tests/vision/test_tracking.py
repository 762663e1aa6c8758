"""The tracker on faces whose boxes and templates the test sets: two people crossing stay
apart, a face that jumps (a cut, a zoom) follows its template, a gap closes a track, and
a track's best frames are its best-quality sightings."""

from __future__ import annotations

import numpy as np

from facegate.vision.tracking import Tracker, TrackerConfig, iou
from facegate.vision.types import Box, Face, Quality, QualityFilter

RNG = np.random.default_rng(7)
_COMMON = RNG.standard_normal(128).astype(np.float32)
_COMMON /= np.linalg.norm(_COMMON)


def person() -> np.ndarray:
    """A template as different from others as LFW strangers are in the default space
    (cosine about 0.84 on average), not as random vectors are (about 0)."""
    v = RNG.standard_normal(128).astype(np.float32)
    v /= np.linalg.norm(v)
    t = np.sqrt(0.84) * _COMMON + np.sqrt(0.16) * v
    return t / np.linalg.norm(t)


def seen(template: np.ndarray, box: Box, size: int = 80, noise: float = 0.01) -> Face:
    """A sighting: the person's template with a little frame-to-frame noise."""
    t = template + noise * RNG.standard_normal(128).astype(np.float32)
    quality = Quality(size, 100.0, 120.0, 0.0, 0.0, QualityFilter.HIGH if size >= 80 else QualityFilter.LOW)
    return Face(box, 0.99, (), quality, t / np.linalg.norm(t))


def test_iou() -> None:
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(20, 0, 10, 10)) == 0.0
    assert abs(iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) - 50 / 150) < 1e-9


def test_two_people_crossing_stay_apart() -> None:
    a, b = person(), person()
    tracker = Tracker()
    for i in range(9):  # they walk towards each other and overlap in the middle frames
        t = i * 0.25
        tracker.update(t, [seen(a, Box(20 * i, 50, 80, 80)), seen(b, Box(160 - 20 * i, 50, 80, 80))])
    tracks = tracker.finish()
    assert len(tracks) == 2
    for track, template in zip(tracks, (a, b), strict=True):
        assert len(track.sightings) == 9
        assert all(float(s.face.template @ template) > 0.99 for s in track.sightings)


def test_a_jump_follows_the_template_and_a_gap_starts_a_new_track() -> None:
    a = person()
    tracker = Tracker(TrackerConfig.for_rate(4.0))
    tracker.update(0.0, [seen(a, Box(0, 0, 80, 80))])
    tracker.update(0.25, [seen(a, Box(400, 300, 160, 160), size=160)])  # a cut to a close-up: no overlap
    tracker.update(3.0, [seen(a, Box(0, 0, 80, 80))])  # back after 2.75 s: a new appearance
    tracks = tracker.finish()
    assert [(t.start, t.end) for t in tracks] == [(0.0, 0.25), (3.0, 3.0)]
    assert tracks[0].best(1)[0].time == 0.25  # the close-up is the better frame


def test_a_stranger_in_the_same_place_is_not_the_same_track() -> None:
    a, b = person(), person()
    tracker = Tracker()
    tracker.update(0.0, [seen(a, Box(100, 100, 80, 80))])
    tracker.update(0.25, [seen(b, Box(102, 100, 80, 80))])  # same spot, another face
    assert 0.75 < float(a @ b) < 0.92
    assert len(tracker.finish()) == 2
