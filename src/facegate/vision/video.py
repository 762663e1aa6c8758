"""Decode untrusted video with PyAV (FFmpeg's codecs in the wheel) and sample its frames.

    info = probe(path, VideoLimits())           # refuses bad input before any analysis
    for frame in sample_frames(path, fps=4.0):  # RGB arrays at ~4 frames per second of video
        frame.time, frame.image

Why a probe first: a file that is not a video, holds only audio, has absurd dimensions
or lasts longer than the installation allows is refused with a stable code before a
single frame is decoded, so a caller learns it at once (the service answers the upload
with it instead of failing a job later). Damage that only decoding reveals (a truncated
file, corrupt packets) is refused while sampling, never passed over: a partial video
would silently hide the faces of its missing part.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from facegate.errors import ErrorCode, FacegateError

# Demuxers that read a still image (or a sequence of them) as a one-frame "video".
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "apng", "webp")
# Magic bytes of the containers we know: recognisable but unreadable means damaged.
_CONTAINER_MAGIC = ((4, b"ftyp"), (0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"FLV"), (0, b"OggS"))
# A decoded stream may end this much short of its declared duration (last frame's own span).
_END_TOLERANCE = 0.5


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """What we agree to decode. The defaults allow a 4K (UHD) video of up to three hours."""

    max_seconds: float = 3 * 3600.0
    max_pixels: int = 3840 * 2160
    min_side: int = 32
    max_aspect: float = 8.0


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container declares about its first video stream."""

    width: int
    height: int
    duration: float  # seconds, as declared (0.0 when the container does not say)
    frame_rate: float  # average frames per second, 0.0 when unknown
    codec: str
    container: str


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame: its presentation time in seconds and its RGB pixels."""

    time: float
    image: np.ndarray  # (height, width, 3) uint8


def _looks_like_container(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return any(head[offset : offset + len(magic)] == magic for offset, magic in _CONTAINER_MAGIC)


def open_container(source: Path | str) -> Any:
    """An opened PyAV input container, or FILE_NOT_FOUND / VIDEO_CORRUPT / INVALID_VIDEO.

    `source` is a stored file (a `Path`), or for live use a stream URL or a device
    (`/dev/video0`, read with video4linux2) given as a string.
    """
    if isinstance(source, Path) and not source.is_file():
        raise FacegateError(ErrorCode.FILE_NOT_FOUND, f"no such file: {source}")
    fmt = "v4l2" if str(source).startswith("/dev/video") else None
    try:
        return av.open(str(source), format=fmt, timeout=10.0)
    except av.FFmpegError as exc:
        if isinstance(source, Path) and _looks_like_container(source):
            raise FacegateError(
                ErrorCode.VIDEO_CORRUPT, f"the video container is damaged or truncated ({exc.strerror})"
            ) from None
        raise FacegateError(ErrorCode.INVALID_VIDEO, f"not a video that FFmpeg can read: {source}") from None


def describe(container: Any) -> VideoInfo:
    """The first video stream's facts, or NO_VIDEO_STREAM / INVALID_VIDEO."""
    name = str(container.format.name)
    if any(part in name for part in _IMAGE_FORMATS):
        raise FacegateError(ErrorCode.INVALID_VIDEO, f"a still image ({name}), not a video")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["nothing"]
        raise FacegateError(ErrorCode.NO_VIDEO_STREAM, f"the file holds no video stream (only {', '.join(kinds)})")
    stream = container.streams.video[0]
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    rate = float(stream.average_rate) if stream.average_rate else 0.0
    ctx = stream.codec_context
    return VideoInfo(int(ctx.width or 0), int(ctx.height or 0), max(0.0, duration), rate, str(ctx.name), name)


def check(info: VideoInfo, limits: VideoLimits) -> VideoInfo:
    """Refuse absurd dimensions (VIDEO_DIMENSIONS) and too long a video (VIDEO_TOO_LONG)."""
    w, h = info.width, info.height
    if (
        min(w, h) < limits.min_side
        or w * h > limits.max_pixels
        or max(w, h) > limits.max_aspect * min(w, h)
    ):
        raise FacegateError(
            ErrorCode.VIDEO_DIMENSIONS,
            f"{w}x{h} is outside what we decode (sides >= {limits.min_side}, at most {limits.max_pixels} "
            f"pixels, aspect at most {limits.max_aspect:g}:1)", width=w, height=h,
        )
    if info.duration > limits.max_seconds:
        raise FacegateError(
            ErrorCode.VIDEO_TOO_LONG, f"{info.duration:.1f} s is over the limit of {limits.max_seconds:g} s",
            duration=round(info.duration, 3), limit=limits.max_seconds,
        )
    return info


def probe(path: Path, limits: VideoLimits = VideoLimits()) -> VideoInfo:
    """Open, describe and check a stored video without decoding it."""
    with open_container(path) as container:
        return check(describe(container), limits)


def sample_frames(
    source: str | Path, fps: float, limits: VideoLimits = VideoLimits(), threads: int = 0
) -> Iterator[Frame]:
    """RGB frames about `fps` per second of video (every frame if the video has fewer).

    Every packet is decoded (inter-frame codecs need them all) but only sampled frames are
    converted to RGB, the costly step at 1080p. Decoding errors are VIDEO_CORRUPT; a stream
    that stops well short of its declared duration is VIDEO_TRUNCATED.
    """
    if not math.isfinite(fps) or fps <= 0:
        raise FacegateError(ErrorCode.INVALID_ARGUMENT, f"fps must be a positive number, got {fps}", field="fps")
    step = 1.0 / fps
    with open_container(source) as container:
        info = check(describe(container), limits)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.thread_count = threads
        next_time, last_time, start = 0.0, None, None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                start = frame.time if start is None else start
                t = frame.time - start
                if t > limits.max_seconds:
                    raise FacegateError(
                        ErrorCode.VIDEO_TOO_LONG, f"the video runs past the limit of {limits.max_seconds:g} s",
                        limit=limits.max_seconds,
                    )
                last_time = t
                if t + 1e-6 >= next_time:
                    # A row whose bytes are not a multiple of the decoder's alignment (e.g. 360
                    # pixels wide) comes padded, as a strided view: dlib takes contiguous pixels only.
                    yield Frame(t, np.ascontiguousarray(frame.to_ndarray(format="rgb24")))
                    next_time = max(next_time + step, t + step / 2)
        except av.FFmpegError as exc:
            raise FacegateError(ErrorCode.VIDEO_CORRUPT, f"the video is corrupt at {last_time or 0:.2f} s ({exc.strerror})",
                          time=round(last_time or 0.0, 3)) from None
        if last_time is None:
            raise FacegateError(ErrorCode.VIDEO_CORRUPT, "no frame of the video could be decoded")
        span = 1.0 / info.frame_rate if info.frame_rate else 0.0
        if info.duration and last_time + span < info.duration - _END_TOLERANCE:
            raise FacegateError(
                ErrorCode.VIDEO_TRUNCATED,
                f"the video stops at {last_time:.2f} s of the {info.duration:.2f} s it declares",
                decoded=round(last_time, 3), duration=round(info.duration, 3),
            )
