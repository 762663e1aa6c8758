"""Live use is the gate's `live` mode: refused where the purpose allows post-event use
only (the June 2020 distinction), and, where allowed, each match reported and audited as
it happens, with frames dropped rather than latency growing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from facegate.engine import Facegate
from facegate.settings import Settings
from facegate.vision.live import LatestFrame, LiveFrame
from tests.conftest import REPO
from tests.video.conftest import run_cli, video_audit
from tests.video.scenes import Appearance, lfw_photo, render

MORATORIUM = REPO / "examples" / "policy-2020-moratorium.toml"
KIOSK = "front-desk"  # a commercial tenant approved for identity_verification, which allows live use


@pytest.fixture(scope="module")
def doorway(videos: Path) -> Path:
    """Three seconds of a doorway camera: nobody, then Colin Powell walks up, then nobody."""
    scene = [Appearance(lfw_photo("Colin_Powell", 2), 0.8, 2.4, (20, 10), (60, 20), (0.7, 0.9))]
    return render(videos / "doorway.mp4", scene, 3.0, (320, 240))


@pytest.mark.parametrize("how", [["--realtime"], ["--mode", "live"], ["--source", "rtsp://127.0.0.1:9/cam"]])
def test_live_refused_for_victim_identification(settings: Settings, doorway: Path, how: list[str]) -> None:
    """The example policy keeps victim identification to stored images: no frame is read."""
    target = [] if how[0] == "--source" else [str(doorway)]
    code, [answer] = run_cli(settings, "video", "search", "people", *target, *how, "--purpose",
                             "victim_identification", "--case-reference", "CASE-1", policy=MORATORIUM)
    assert code == 1 and answer["error"]["code"] == "LIVE_USE_FORBIDDEN"
    assert answer["error"]["rule"] == "purpose:victim_identification"
    entry = video_audit(Facegate(settings))[-1]
    assert (entry["decision"], entry["code"], entry["mode"]) == ("deny", "LIVE_USE_FORBIDDEN", "live")


def test_post_event_search_of_the_same_file_is_allowed(settings: Settings, doorway: Path) -> None:
    run_cli(settings, "collection", "create", "people", policy=MORATORIUM)
    code, [answer] = run_cli(settings, "video", "search", "people", str(doorway), "--purpose",
                             "victim_identification", "--case-reference", "CASE-1", policy=MORATORIUM)
    assert code == 0 and answer["decision"]["decision"] == "allow" and answer["matches"] == []


def test_live_allowed_where_the_purpose_permits(settings: Settings, doorway: Path) -> None:
    """A kiosk tenant (identity_verification: live use allowed) watches the doorway played at
    real time: the match is printed as a JSON line when it happens and audited before."""
    as_kiosk = ["--tenant", KIOSK, "--purpose", "identity_verification"]
    for args in (["tenant", "create", KIOSK, "--sector", "commercial", "--purposes", "identity_verification"],
                 ["collection", "create", "staff", *as_kiosk],
                 ["index", "staff", str(lfw_photo("Colin_Powell", 1)), "--subject", "colin", *as_kiosk]):
        code, [answer] = run_cli(settings, *args, policy=MORATORIUM)
        assert code == 0, answer
    code, lines = run_cli(settings, "video", "search", "staff", str(doorway), "--realtime", *as_kiosk,
                          policy=MORATORIUM)
    assert code == 0, lines
    *matches, end = lines
    assert end["event"] == "end" and end["decision"]["decision"] == "allow"
    assert len(matches) == 1 and matches[0]["subject"] == "colin"
    assert 0.8 - 0.01 <= matches[0]["time"] < 2.4  # while he stands there
    assert matches[0]["latency"] < 5.0  # from the frame's arrival to the audited report
    # at most ~4 a second of a 3-second, 10 fps source; what the analysis could not take was dropped
    assert 1 <= end["frames_analysed"] <= 14 and end["frames_dropped"] >= 30 - 1 - 3 * end["frames_analysed"]
    entries = [e for e in video_audit(Facegate(settings)) if e["tenant"] == KIOSK]
    events = [json.loads(e["details"])["event"] for e in entries]
    assert events == ["start", "match", "end"] and {e["mode"] for e in entries} == {"live"}
    assert entries[1]["seq"] == matches[0]["audit_seq"]
    assert json.loads(entries[1]["results"])[0]["subject"] == "colin"


def test_a_slow_reader_gets_the_newest_frame_and_the_rest_are_dropped() -> None:
    box = LatestFrame()
    image = np.zeros((2, 2, 3), np.uint8)
    for t in (0.0, 0.1, 0.2):
        box.put(LiveFrame(t, 0.0, image))
    newest = box.take()
    assert newest is not None and newest.time == 0.2 and box.dropped == 2
    box.close()
    assert box.take() is None


def test_a_failing_source_ends_the_watch_on_the_record(settings: Settings, doorway: Path, tmp_path: Path) -> None:
    """The default policy lets the local operator verify identities live; the source breaks."""
    broken = bytearray(doorway.read_bytes())
    noise = random.Random(5).randbytes(len(broken) // 3)
    broken[len(broken) // 3: 2 * len(broken) // 3] = noise
    (tmp_path / "broken.mp4").write_bytes(bytes(broken))
    run_cli(settings, "collection", "create", "people")
    code, [answer] = run_cli(settings, "video", "search", "people", str(tmp_path / "broken.mp4"), "--realtime",
                             "--purpose", "identity_verification")
    assert code == 1 and answer["error"]["code"] == "VIDEO_CORRUPT"
    details = [json.loads(e["details"]) for e in video_audit(Facegate(settings))]
    assert [d["event"] for d in details] == ["start", "end"] and details[-1]["error"] == "VIDEO_CORRUPT"
