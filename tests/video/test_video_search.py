"""`facegate video search` on a video built from LFW photos: who appears when, who is
never reported, and what the audit log keeps of the job."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.operations.video import search_video
from tests.video.conftest import COLLECTION, run_cli, video_audit
from tests.video.scenes import ENROLLED, NOT_ENROLLED, TRUTH, Appearance, lfw_photo, render

TOLERANCE = 0.5  # seconds: the bound on start and end of each appearance


def _close(found: list[dict], truth: list[tuple[float, float]]) -> bool:
    return len(found) == len(truth) and all(
        abs(f["start"] - s) <= TOLERANCE and abs(f["end"] - e) <= TOLERANCE
        for f, (s, e) in zip(found, truth, strict=True)
    )


def test_cli_reports_who_appears_when(enrolled: Facegate, scene_video: Path) -> None:
    code, [answer] = run_cli(enrolled.settings, "video", "search", COLLECTION, str(scene_video),
                             "--purpose", "victim_identification", "--case-reference", "CASE-9")
    assert code == 0, answer
    assert {"matches", "persons", "frames_analysed", "duration"} <= set(answer)
    assert abs(answer["duration"] - 10.5) < 0.2 and answer["frames_analysed"] >= 40
    # every enrolled face of both people matches, each with the time ranges of its subject
    assert {m["subject"] for m in answer["matches"]} == set(ENROLLED)
    assert len(answer["matches"]) == sum(len(n) for n in ENROLLED.values())
    for match in answer["matches"]:
        assert {"subject", "face_id", "similarity", "estimated_fmr", "appearances", "best"} <= set(match)
        assert _close(match["appearances"], TRUTH[match["subject"]]), (match["subject"], match["appearances"])
        assert match["similarity"] >= answer["threshold"] and match["estimated_fmr"] <= 1e-5
        best = match["best"]
        assert any(s <= best["time"] < e for s, e in TRUTH[match["subject"]])
        assert best["box"]["width"] > 40
    assert [s["subject"] for s in answer["subjects"]]
    for subject in answer["subjects"]:
        assert _close(subject["appearances"], TRUTH[subject["subject"]])
        # a per-subject answer says what its similarity means in the worst group too
        assert subject["estimated_fmr"] <= subject["estimated_fmr_worst_group"] and subject["worst_group"]
    # GetFaceSearch's Persons: each matched sighting, at a time when that person is on screen
    assert answer["persons"]
    for person in answer["persons"]:
        subject = person["face_matches"][0]["face"]["subject"]
        assert any(s - 0.01 <= person["timestamp"] < e for s, e in TRUTH[subject])
    assert answer["investigative_leads"] is True  # victim_identification requires human review


def test_the_unenrolled_are_never_reported(enrolled: Facegate, scene_video: Path) -> None:
    """Hugo Chavez and Jean Chretien are on screen for 4 s; not one match, sighting or subject names them,
    and no match falls in a time when only they are on screen."""
    done = search_video(enrolled, Caller(purpose="photo_library"), COLLECTION, scene_video)
    result = done.value
    assert result.tracks >= 5  # the two unenrolled people were seen and tracked...
    named = {m["subject"] for m in result.matches} | {s["subject"] for s in result.subjects}
    assert named == set(ENROLLED) and not named & set(NOT_ENROLLED)  # ...and never reported
    on_screen = [r for ranges in TRUTH.values() for r in ranges]
    for person in result.persons:
        assert any(s - 0.01 <= person["timestamp"] < e for s, e in on_screen)


def test_a_frame_width_the_decoder_pads_is_searched_like_any_other(enrolled: Facegate, tmp_path: Path) -> None:
    """360 RGB pixels a row are not a multiple of the decoder's alignment: its frames come as
    padded, strided arrays, which dlib's face alignment refused (every face of such a video
    failed the job)."""
    person, numbers = next(iter(ENROLLED.items()))
    clip = render(tmp_path / "narrow.mp4", [Appearance(lfw_photo(person, numbers[0]), 0.0, 2.0, (40, 10), (60, 10))],
                  2.0, (360, 270))
    done = search_video(enrolled, Caller(purpose="photo_library"), COLLECTION, clip, fps=2.0)
    assert [s["subject"] for s in done.value.subjects] == [person]


def test_one_audit_entry_per_job_with_the_video_hash(enrolled: Facegate, scene_video: Path) -> None:
    before = len(video_audit(enrolled))
    done = search_video(enrolled, Caller(purpose="victim_identification", case_reference="CASE-9"),
                        COLLECTION, scene_video, fps=2.0)
    entries = video_audit(enrolled)
    assert len(entries) == before + 1
    entry = entries[-1]
    assert entry["seq"] == done.audit_seq and entry["decision"] == "allow"
    assert entry["probe_sha256"] == hashlib.sha256(scene_video.read_bytes()).hexdigest()
    assert entry["case_reference"] == "CASE-9" and entry["purpose"] == "victim_identification"
    details, results = json.loads(entry["details"]), json.loads(entry["results"])
    assert details["frames_analysed"] == done.value.frames_analysed and abs(details["duration"] - 10.5) < 0.2
    assert details["matches"] == len(done.value.matches) == len(results) == 4
    assert {r["subject"] for r in results} == set(ENROLLED)
    assert done.value.fps == 2.0 and done.value.frames_analysed < 25
    code, [verified] = run_cli(enrolled.settings, "audit", "verify")
    assert code == 0 and verified["ok"] is True


def test_unknown_collection_is_refused_before_decoding(enrolled: Facegate, scene_video: Path) -> None:
    code, [answer] = run_cli(enrolled.settings, "video", "search", "nobody", str(scene_video),
                             "--purpose", "photo_library")
    assert code == 1 and answer["error"]["code"] == "COLLECTION_NOT_FOUND"
    # the gate refuses a missing collection in its first decision (tenancy's step 10)
    entry = video_audit(enrolled)[-1]
    assert (entry["decision"], entry["code"], entry["rule"]) == ("deny", "COLLECTION_NOT_FOUND", "collection:not-found")
