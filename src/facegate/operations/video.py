"""Face search in stored video (Rekognition's StartFaceSearch / GetFaceSearch), gated.

The video is sampled (`fps`), each sampled frame analysed, faces followed into tracks,
and each track searched in the collection with its best frames. The answer says, per
matched enrolled face and per subject, when they appear (time ranges in seconds), the
best similarity with its frame time and box, and the estimated FMR; `persons` lists each
matched sighting in GetFaceSearch's manner (`Persons[].Timestamp`, `FaceMatches`).

One job is one gated operation and one audit entry: the video's SHA-256 stands where a
search keeps its probe hash, the candidates where a search keeps its results, and the
duration, frames analysed and number of matches in its details, so retention treats a
video search as it treats a search.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller, Gated, Limits, Outcome
from facegate.governance import Decision, MatchRef, Operation
from facegate.operations.scoring import Estimates, estimates
from facegate.operations.search import FaceHit, bound_model, search_templates, threshold_of
from facegate.vision.tracking import Sighting, Track, Tracker, TrackerConfig
from facegate.vision.video import probe, sample_frames

BEST_FRAMES = 3  # frames of a track searched: its best by quality
Progress = Callable[[float, float], None]  # (seconds of video done, duration)


def _no_progress(_done: float, _total: float) -> None:
    """Progress is optional: the CLI draws a bar, the service stores a fraction."""


def file_sha256(path: Path) -> str:
    """The video's SHA-256 (what the audit log keeps of it), read in chunks."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such file: {path}") from None
    return digest.hexdigest()


def merge_ranges(ranges: list[tuple[float, float]], gap: float) -> list[dict[str, float]]:
    """Time ranges joined where they touch or lie within `gap` seconds of each other."""
    merged: list[list[float]] = []
    for start, end in sorted(ranges):
        if merged and start - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [{"start": round(s, 3), "end": round(e, 3)} for s, e in merged]


@dataclass(slots=True)
class _Found:
    """What one track matched: the best hit per enrolled face, with the frame it came from."""

    track: Track
    hits: dict[str, tuple[FaceHit, Sighting]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VideoSearchResult:
    matches: list[dict[str, Any]]
    subjects: list[dict[str, Any]]
    persons: list[dict[str, Any]]
    frames_analysed: int
    duration: float
    fps: float
    threshold: float
    review_required: bool
    video_sha256: str
    tracks: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "matches": self.matches,
            "subjects": self.subjects,
            "persons": self.persons,
            "frames_analysed": self.frames_analysed,
            "duration": round(self.duration, 3),
            "fps": self.fps,
            "faces_tracked": self.tracks,
            "threshold": round(self.threshold, 4),
            "video_sha256": self.video_sha256,
        }


def search_track(engine: Facegate, collection_id: str, decision: Decision, track: Track) -> _Found:
    """Search a track's best frames; keep, per enrolled face, the best hit and its frame."""
    found = _Found(track)
    for sighting in track.best(BEST_FRAMES):
        matches, _subjects = search_templates(
            engine, collection_id, sighting.face.template[None, :], decision
        )
        for hit in matches:
            known = found.hits.get(hit.face_id)
            if known is None or known[0].similarity < hit.similarity:
                found.hits[hit.face_id] = (hit, sighting)
    return found


def _best(hit: FaceHit, sighting: Sighting) -> dict[str, Any]:
    return {"time": round(sighting.time, 3), "box": sighting.face.box.to_dict(),
            "similarity": round(hit.similarity, 4)}


def _per_face(found: list[_Found], gap: float) -> list[dict[str, Any]]:
    """One entry per matched enrolled face: its appearances over every track it matched."""
    per_face: dict[str, list[tuple[FaceHit, Sighting, Track]]] = {}
    for f in found:
        for face_id, (hit, sighting) in f.hits.items():
            per_face.setdefault(face_id, []).append((hit, sighting, f.track))
    matches = []
    for face_id, rows in per_face.items():
        hit, sighting, _ = max(rows, key=lambda r: r[0].similarity)
        matches.append({
            **hit.to_dict(), "face_id": face_id,
            "appearances": merge_ranges([(t.start, t.end) for _h, _s, t in rows], gap),
            "best": _best(hit, sighting), "tracks": sorted({t.index for _h, _s, t in rows}),
        })
    return sorted(matches, key=lambda m: -m["similarity"])


def _per_subject(matches: list[dict[str, Any]], gap: float, estimate: Callable[[float], Estimates]
                 ) -> list[dict[str, Any]]:
    """One entry per subject: the union of its faces' appearances, its best face."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for m in matches:
        if m["subject"] is not None:
            grouped.setdefault(m["subject"], []).append(m)
    subjects = []
    for subject, faces in grouped.items():
        top = max(faces, key=lambda m: m["similarity"])
        ranges = [(a["start"], a["end"]) for m in faces for a in m["appearances"]]
        subjects.append({
            "subject": subject, "similarity": top["similarity"], **estimate(top["similarity"]).to_dict(),
            "appearances": merge_ranges(ranges, gap), "best": top["best"], "face_ids": [m["face_id"] for m in faces],
        })
    return sorted(subjects, key=lambda s: -s["similarity"])


def _persons(found: list[_Found]) -> list[dict[str, Any]]:
    """GetFaceSearch's Persons: every sighting of a matched track, with its face matches."""
    persons = []
    for f in found:
        if not f.hits:
            continue
        face_matches = [
            {"similarity": round(h.similarity, 4),
             "face": {"face_id": h.face_id, "subject": h.subject, "external_image_id": h.external_image_id}}
            for h, _s in sorted(f.hits.values(), key=lambda p: -p[0].similarity)
        ]
        for s in f.track.sightings:
            persons.append({"timestamp": round(s.time, 3), "person": {"index": f.track.index,
                            "box": s.face.box.to_dict()}, "face_matches": face_matches})
    return sorted(persons, key=lambda p: (p["timestamp"], p["person"]["index"]))


def search_video(
    engine: Facegate, caller: Caller, collection_id: str, path: Path, *, fps: float | None = None,
    limits: Limits = Limits(), progress: Progress = _no_progress, digest: str | None = None,
) -> Gated[VideoSearchResult]:
    """Search the faces of a stored video in a collection: one gated operation."""
    digest = digest or file_sha256(path)
    rate = fps or engine.settings.video_fps

    def prepare(decision: Decision) -> VideoSearchResult:
        bound_model(engine, collection_id)  # an unknown collection costs no decoding
        info = probe(path, engine.video_limits)
        tracker = Tracker(TrackerConfig.for_rate(rate))
        frames = 0
        for frame in sample_frames(path, rate, engine.video_limits):
            tracker.update(frame.time, engine.analyze_frame(frame.image))
            frames += 1
            progress(frame.time, info.duration)
        tracks = tracker.finish()
        found = [search_track(engine, collection_id, decision, t) for t in tracks]
        gap = tracker.config.max_gap
        matches = _per_face(found, gap)
        subjects = _per_subject(matches, gap, lambda score: estimates(engine, score))
        persons = _persons(found)
        threshold = threshold_of(engine, decision)
        progress(info.duration, info.duration)
        return VideoSearchResult(
            matches, subjects, persons, frames, info.duration, rate, threshold, decision.review_required,
            digest, len(tracks),
        )

    def commit(_session: Any, _decision: Decision, result: VideoSearchResult) -> Outcome[VideoSearchResult]:
        refs = [MatchRef(m["face_id"], m["subject"], m["similarity"]) for m in result.matches]
        details = {
            "duration": round(result.duration, 3), "frames_analysed": result.frames_analysed,
            "matches": len(result.matches), "fps": rate, "subjects": [s["subject"] for s in result.subjects],
        }
        return Outcome(result, results=refs, details=details)

    return engine.gate.run(
        caller, Operation.VIDEO_SEARCH, collection_id=collection_id, limits=limits, probe_sha256=digest,
        prepare=prepare, commit=commit,
    )
