"""Bad input: each refused with its own stable code, before or while decoding, and
recorded in the audit log; nothing is analysed from a damaged video."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.vision.video import VideoLimits, probe, sample_frames
from tests.video.conftest import COLLECTION, run_cli, video_audit
from tests.video.scenes import Appearance, audio_only, lfw_photo, render


@pytest.fixture(scope="module")
def bad(videos: Path) -> dict[str, Path]:
    """One file per kind of bad input, built from a good 4-second video with a face."""
    face = [Appearance(lfw_photo("Colin_Powell", 2), 0.0, 4.0, (40, 20), (60, 30))]
    good_mp4 = render(videos / "good.mp4", face, 4.0, (320, 240)).read_bytes()
    good_mkv = render(videos / "good.mkv", face, 4.0, (320, 240)).read_bytes()
    corrupt = bytearray(good_mp4)
    rnd = random.Random(17)
    for i in range(len(corrupt) // 3, len(corrupt) // 3 + 20_000):
        corrupt[i] = rnd.randrange(256)
    files = {
        "text": b"this is a shopping list, not a video\n" * 50,
        "cut_mp4": good_mp4[: len(good_mp4) // 2],  # its index (moov) was at the end
        "cut_mkv": good_mkv[: len(good_mkv) // 2],  # opens, then stops at 40% of its duration
        "corrupt": bytes(corrupt),
    }
    paths = {name: videos / f"bad-{name}.{'mkv' if 'mkv' in name else 'mp4'}" for name in files}
    for name, data in files.items():
        paths[name].write_bytes(data)
    paths["audio"] = audio_only(videos / "bad-audio.wav")
    paths["photo"] = lfw_photo("Colin_Powell", 1)
    paths["tiny"] = render(videos / "bad-tiny.mp4", [], 1.0, (16, 16))
    paths["strip"] = render(videos / "bad-strip.mp4", [], 1.0, (1280, 64))
    paths["good"] = videos / "good.mp4"
    return paths


EXPECTED = {
    "text": ErrorCode.INVALID_VIDEO,
    "photo": ErrorCode.INVALID_VIDEO,
    "audio": ErrorCode.NO_VIDEO_STREAM,
    "cut_mp4": ErrorCode.VIDEO_CORRUPT,
    "cut_mkv": ErrorCode.VIDEO_TRUNCATED,
    "corrupt": ErrorCode.VIDEO_CORRUPT,
    "tiny": ErrorCode.VIDEO_DIMENSIONS,
    "strip": ErrorCode.VIDEO_DIMENSIONS,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_input_has_its_code(bad: dict[str, Path], name: str) -> None:
    with pytest.raises(FacegateError) as caught:
        probe(bad[name])
        for _frame in sample_frames(bad[name], 4.0):
            pass
    assert caught.value.code is EXPECTED[name], caught.value.message


def test_the_good_video_passes(bad: dict[str, Path]) -> None:
    info = probe(bad["good"])
    assert (info.width, info.height) == (320, 240) and abs(info.duration - 4.0) < 0.1
    times = [f.time for f in sample_frames(bad["good"], 4.0)]
    assert len(times) == 16 and times[0] == 0.0 and times[-1] >= 3.7


def test_limits_are_configurable(bad: dict[str, Path]) -> None:
    with pytest.raises(FacegateError) as too_long:
        probe(bad["good"], VideoLimits(max_seconds=2.0))
    assert too_long.value.code is ErrorCode.VIDEO_TOO_LONG
    with pytest.raises(FacegateError) as too_big:
        probe(bad["good"], VideoLimits(max_pixels=200 * 200))
    assert too_big.value.code is ErrorCode.VIDEO_DIMENSIONS
    with pytest.raises(FacegateError) as zero_fps:
        next(sample_frames(bad["good"], 0.0))
    assert zero_fps.value.code is ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize("name", ["text", "audio", "cut_mkv", "corrupt", "strip"])
def test_cli_refuses_and_records(enrolled: Facegate, bad: dict[str, Path], name: str) -> None:
    code, [answer] = run_cli(enrolled.settings, "video", "search", COLLECTION, str(bad[name]),
                             "--purpose", "photo_library")
    assert code == 1 and answer["error"]["code"] == EXPECTED[name].value
    entry = video_audit(enrolled)[-1]
    assert json.loads(entry["details"])["error"] == EXPECTED[name].value
    assert entry["probe_sha256"] and json.loads(entry["results"]) == []


def test_duration_limit_from_the_environment(
    enrolled: Facegate, bad: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEGATE_MAX_VIDEO_SECONDS", "3")
    code, [answer] = run_cli(enrolled.settings, "video", "search", COLLECTION, str(bad["good"]),
                             "--purpose", "photo_library")
    assert code == 1 and answer["error"]["code"] == "VIDEO_TOO_LONG" and answer["error"]["limit"] == 3.0


def test_missing_file(enrolled: Facegate, tmp_path: Path) -> None:
    code, [answer] = run_cli(enrolled.settings, "video", "search", COLLECTION, str(tmp_path / "none.mp4"),
                             "--purpose", "photo_library")
    assert code == 1 and answer["error"]["code"] == "FILE_NOT_FOUND"
