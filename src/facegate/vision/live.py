"""Frames of a live source, newest first: a reader thread decodes, the analysis takes the
latest frame and whatever came in between is dropped, so latency stays bounded however
slow the analysis is (a live search must never fall behind the camera).

A stored file played as live (`realtime`) is paced at its own timestamps, as a camera
would deliver it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from facegate.errors import ErrorCode, FacegateError
from facegate.vision.video import VideoLimits, check, describe, open_container


@dataclass(frozen=True, slots=True)
class LiveFrame:
    time: float  # seconds since the source started
    arrived: float  # time.monotonic() when the frame was decoded
    image: Any  # (height, width, 3) uint8 RGB


class LatestFrame:
    """A one-frame mailbox: `put` replaces an unread frame (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: LiveFrame | None = None
        self._done = False
        self._error: FacegateError | None = None
        self.dropped = 0
        self.decoded = 0

    def put(self, frame: LiveFrame) -> None:
        with self._cond:
            self.dropped += self._frame is not None
            self.decoded += 1
            self._frame = frame
            self._cond.notify()

    def close(self, error: FacegateError | None = None) -> None:
        with self._cond:
            self._done, self._error = True, error
            self._cond.notify()

    def take(self) -> LiveFrame | None:
        """The newest frame (waiting for one), or None once the source has ended."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._done)
            frame, self._frame = self._frame, None
            if frame is None and self._error is not None:
                raise self._error
            return frame


def _read(source: Path | str, limits: VideoLimits, box: LatestFrame, stop: threading.Event) -> None:
    paced = isinstance(source, Path)
    try:
        with open_container(source) as container:
            check(describe(container), limits)
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            began, first = time.monotonic(), None
            for frame in container.decode(stream):
                if stop.is_set():
                    break
                if frame.time is None:
                    continue
                first = frame.time if first is None else first
                t = frame.time - first
                if paced:
                    delay = began + t - time.monotonic()
                    if delay > 0:
                        stop.wait(delay)  # play the file at its own speed
                box.put(LiveFrame(t, time.monotonic(), np.ascontiguousarray(frame.to_ndarray(format="rgb24"))))
        box.close()
    except FacegateError as exc:
        box.close(exc)
    except av.FFmpegError as exc:
        box.close(FacegateError(ErrorCode.VIDEO_CORRUPT, f"the live source failed ({exc.strerror})"))


@dataclass
class LiveSource:
    """Iterate the newest frames of `source`; `stats` says how many were dropped."""

    source: Path | str
    limits: VideoLimits = VideoLimits()

    def __post_init__(self) -> None:
        self.box = LatestFrame()
        self._stop = threading.Event()

    def frames(self) -> Iterator[LiveFrame]:
        reader = threading.Thread(target=_read, args=(self.source, self.limits, self.box, self._stop),
                                  name="facegate-live-reader", daemon=True)
        reader.start()
        try:
            while (frame := self.box.take()) is not None:
                yield frame
        finally:
            self._stop.set()
            reader.join(timeout=10)
