"""Test videos built from LFW photos with PyAV: people enter and leave at known times,
move across the frame and zoom, and stretches hold no face at all.

A scene is a list of `Appearance`s; `render` draws each frame (a plain textured
background, each visible photo pasted at its position and scale for that instant) and
encodes it with FFmpeg's own MPEG-4 Part 2 encoder, which every PyAV wheel carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tests.conftest import LFW


def lfw_photo(person: str, number: int) -> Path:
    path = LFW / person / f"{person}_{number:04d}.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"LFW photo missing: {path} (the tests read ../shared/data in place)")
    return path


@dataclass(frozen=True, slots=True)
class Appearance:
    """`photo` shown from `start` to `end` (seconds), its top-left corner moving from
    `origin` to `target` and its scale from `scale[0]` to `scale[1]` (motion and zoom)."""

    photo: Path
    start: float
    end: float
    origin: tuple[int, int]
    target: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)

    def at(self, t: float) -> tuple[tuple[int, int], float] | None:
        if not self.start <= t < self.end:
            return None
        k = (t - self.start) / (self.end - self.start)
        x = round(self.origin[0] + k * (self.target[0] - self.origin[0]))
        y = round(self.origin[1] + k * (self.target[1] - self.origin[1]))
        return (x, y), self.scale[0] + k * (self.scale[1] - self.scale[0])


def background(width: int, height: int) -> np.ndarray:
    """A textured, faceless backdrop (gradients and stripes, so the encoder has work)."""
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(1, width - 1)).astype(np.uint8)
    g = (y * 255 // max(1, height - 1)).astype(np.uint8)
    b = ((x // 16 + y // 16) % 2 * 60 + 90).astype(np.uint8)
    return np.dstack([r, g, b])


def render(path: Path, scene: list[Appearance], duration: float, size: tuple[int, int] = (480, 360),
           rate: int = 10, codec: str = "mpeg4") -> Path:
    """Encode the scene to `path` (container from its suffix) and return it."""
    width, height = size
    base = background(width, height)
    photos = {a.photo: Image.open(a.photo).convert("RGB") for a in scene}
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        stream.bit_rate = 2_000_000
        for i in range(round(duration * rate)):
            t = i / rate
            canvas = Image.fromarray(base)
            for a in scene:
                placed = a.at(t)
                if placed is None:
                    continue
                (x, y), scale = placed
                photo = photos[a.photo]
                canvas.paste(photo.resize((round(photo.width * scale), round(photo.height * scale))), (x, y))
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    """A media file with one audio stream (a 440 Hz tone) and no video."""
    rate = 16000
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        samples = (np.sin(np.arange(int(rate * seconds)) * 2 * np.pi * 440 / rate) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# The main scene: two enrolled people (Colin Powell twice, Serena Williams once) among two
# people who are not enrolled, with motion, zoom and stretches without any face.
ENROLLED = {"Colin_Powell": (1, 3), "Serena_Williams": (1, 3)}  # photos enrolled per subject
SCENE_SECONDS = 10.5
SCENE = [
    Appearance(lfw_photo("Colin_Powell", 2), 1.5, 4.0, (0, 20), (60, 100), (0.6, 1.0)),
    Appearance(lfw_photo("Hugo_Chavez", 1), 2.5, 5.0, (400, 60), (380, 80), (0.8, 0.9)),
    Appearance(lfw_photo("Serena_Williams", 2), 6.0, 8.5, (350, 50), (420, 150), (1.0, 0.6)),
    Appearance(lfw_photo("Jean_Chretien", 1), 6.5, 8.0, (20, 60), (80, 60), (0.9, 0.9)),
    Appearance(lfw_photo("Colin_Powell", 4), 9.0, 10.0, (200, 60), (210, 70), (0.9, 0.9)),
]
# When each enrolled subject is on screen (seconds), as drawn above.
TRUTH = {"Colin_Powell": [(1.5, 4.0), (9.0, 10.0)], "Serena_Williams": [(6.0, 8.5)]}
NOT_ENROLLED = ("Hugo_Chavez", "Jean_Chretien")
SCENE_SIZE = (640, 360)
