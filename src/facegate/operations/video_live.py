"""Live face search: the `live` mode of the gate, on a stream, a device or a file played
at real time.

Live use is what the June 2020 story was about: agencies said they searched after the
event, and nothing made sure of it. Here the gate decides with `mode=live`, so a purpose
whose `live_use_allowed` is false is refused (LIVE_USE_FORBIDDEN) before a frame is read.
When allowed, the watch is audited as it goes: an entry when it starts, one per match
as it happens (each decided again, so a suspension or a policy change stops the watch
at the next match), and one when the source ends. Latency is bounded by dropping
frames (`vision.live`), never by falling behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from facegate.engine import Facegate
from facegate.errors import FacegateError
from facegate.gate import Caller, Outcome
from facegate.governance import Decision, MatchRef, Operation, PolicyDenied
from facegate.operations.search import FaceHit, bound_model, search_templates
from facegate.vision.live import LiveSource
from facegate.vision.tracking import Sighting, Track, Tracker, TrackerConfig

SEARCHES_PER_TRACK = 5  # an unmatched track is searched on its first sightings only


@dataclass(frozen=True, slots=True)
class LiveMatch:
    time: float  # seconds since the source started
    latency: float  # seconds from the frame's arrival to the match being recorded
    track: int
    hit: FaceHit
    box: dict[str, int]
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"event": "match", "time": round(self.time, 3), "latency": round(self.latency, 3),
                "track": self.track, **self.hit.to_dict(), "box": self.box, "audit_seq": self.audit_seq}


@dataclass(frozen=True, slots=True)
class LiveSummary:
    frames_analysed: int
    frames_dropped: int
    duration: float
    matches: int
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {"event": "end", "frames_analysed": self.frames_analysed, "frames_dropped": self.frames_dropped,
                "duration": round(self.duration, 3), "matches": self.matches, "decision": self.decision.to_dict()}


def _record(engine: Facegate, caller: Caller, collection_id: str, details: dict[str, Any],
            results: tuple[MatchRef, ...] = ()) -> tuple[int, Decision]:
    gated = engine.gate.run(
        caller, Operation.VIDEO_SEARCH, collection_id=collection_id,
        prepare=lambda _d: bound_model(engine, collection_id),
        commit=lambda _s, _d, _p: Outcome(None, results=results, details=details),
    )
    return gated.audit_seq, gated.decision


def watch_live(
    engine: Facegate, caller: Caller, collection_id: str, source: Path | str, *,
    fps: float | None = None, on_match: Callable[[LiveMatch], None] = lambda _m: None,
) -> LiveSummary:
    """Search the faces of a live source as they come; each match is audited, then reported."""
    caller = replace(caller, mode="live")
    label = str(source)
    _seq, decision = _record(engine, caller, collection_id, {"event": "start", "source": label})
    rate = fps or engine.settings.video_fps
    tracker = Tracker(TrackerConfig.for_rate(rate))
    searched: dict[int, int] = {}
    reported: set[tuple[int, str]] = set()
    live = LiveSource(source, engine.video_limits)
    frames, matches, next_time, last = 0, 0, 0.0, 0.0
    try:
        for frame in live.frames():
            if frame.time + 1e-6 < next_time:
                continue  # faster than the sampling rate asks
            next_time = frame.time + 1.0 / rate
            last = frame.time
            faces = engine.analyze_frame(frame.image)
            frames += 1
            for track, face in zip(tracker.update(frame.time, faces), faces, strict=True):
                if searched.get(track.index, 0) >= SEARCHES_PER_TRACK:
                    continue
                searched[track.index] = searched.get(track.index, 0) + 1
                hits, _subjects = search_templates(engine, collection_id, face.template[None, :], decision)
                for hit in hits:
                    if (track.index, hit.face_id) in reported:
                        continue
                    reported.add((track.index, hit.face_id))
                    searched[track.index] = SEARCHES_PER_TRACK  # matched: no need to search it again
                    match = _match(engine, caller, collection_id, label, frame.time, frame.arrived, track,
                                   Sighting(frame.time, face), hit)
                    matches += 1
                    on_match(match)
    except FacegateError as exc:  # the source failed, or the gate stopped the watch
        if not isinstance(exc, PolicyDenied):  # a denial is its own entry already
            _record(engine, caller, collection_id, {"event": "end", "source": label, "frames_analysed": frames,
                                                    "frames_dropped": live.box.dropped, "matches": matches,
                                                    "error": exc.code.value})
        raise
    summary = {"event": "end", "source": label, "frames_analysed": frames, "frames_dropped": live.box.dropped,
               "duration": round(last, 3), "matches": matches}
    _record(engine, caller, collection_id, summary)
    return LiveSummary(frames, live.box.dropped, last, matches, decision)


def _match(engine: Facegate, caller: Caller, collection_id: str, label: str, t: float, arrived: float,
           track: Track, sighting: Sighting, hit: FaceHit) -> LiveMatch:
    details = {"event": "match", "source": label, "time": round(t, 3), "track": track.index}
    seq, _decision = _record(engine, caller, collection_id, details,
                             (MatchRef(hit.face_id, hit.subject, hit.similarity),))
    return LiveMatch(t, time.monotonic() - arrived, track.index, hit, sighting.face.box.to_dict(), seq)
