"""A whole audit on real photos: manifest -> cached templates -> report.json and report.html.

Photos are read in place from ../shared/data: nine LFW photos of three people, a photo
without a face (from InsightFace's tests), one file that is not an image, and four UTKFace
photos (no identities). The audit must count the photo without a face as detection
failures of their group, leave the broken file out, and write the report of the contract.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from facegate.errors import ErrorCode, FacegateError
from facegate.evaluation.bias_audit import run_bias_audit
from facegate.evaluation.bias_report import render_html, save_figures, write_report
from facegate.vision import Pipeline
from facegate.vision.calibration import similarity_from_cosine

THRESHOLD = float(similarity_from_cosine(0.9))
PEOPLE = ("Colin_Powell", "Serena_Williams", "Tony_Blair")
NEGATIVE = "inspireface/crop/no_face.png"  # small: the CNN fallback on a big landscape takes long


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "subject", "source", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A manifest (absolute paths) over real photos, and one file that is not an image."""
    root = tmp_path_factory.mktemp("audit")
    lfw = list(csv.DictReader((data / "lfw" / "manifest.csv").open()))
    rows = []
    for person in PEOPLE:
        for r in [r for r in lfw if r["subject"] == person][:3]:
            rows.append({"path": str(data / "lfw" / r["path"]), "subject": person, "source": "lfw",
                         "gender": r["subject_gender"]})
    rows.append({"path": str(data / "peers" / "insightface" / NEGATIVE), "subject": "negative",
                 "source": "no face", "gender": ""})
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    rows.append({"path": "broken.jpg", "subject": "broken", "source": "no face", "gender": ""})
    return write_manifest(root / "manifest.csv", rows)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template-cache")


def test_audit_on_real_photos_writes_the_contract(photos: Path, pipeline: Pipeline, tmp_path: Path) -> None:
    # its own empty cache: every photo is analysed now, whichever test ran before
    report = run_bias_audit(photos, ["source", "gender"], THRESHOLD, pipeline, tmp_path / "cache", workers=1,
                            progress=False, n_boot=200, label_source="hand-made for this test")
    assert report.images_analysed_now == 11
    detection = {r.group: r for r in report.detection.groups}
    assert report.detection.unreadable == 1
    faces, empty = detection[(("source", "lfw"),)], detection[(("source", "no face"),)]
    assert (faces.n_images, faces.failure_rate, faces.no_face) == (9, 0.0, 0)
    assert (empty.n_images, empty.failure_rate, empty.no_face) == (1, 1.0, 1)
    assert empty.ci_method == "subject bootstrap" and empty.small

    json_path, html_path = write_report(report, tmp_path / "out")
    body = json.loads(json_path.read_text())
    v = body["verification"]
    assert v["threshold"] == THRESHOLD
    assert {"fmr_ratio", "fnmr_ratio"} <= set(v["differentials"])
    contract = {"group", "n_subjects", "n_mated", "n_nonmated", "fmr", "fmr_ci", "fnmr", "fnmr_ci"}
    assert v["groups"] and all(contract <= set(g) for g in v["groups"])
    lfw_rates = next(g for g in v["groups"] if g["group"] == {"source": "lfw"})
    assert (lfw_rates["n_subjects"], lfw_rates["n_mated"], lfw_rates["n_nonmated"]) == (3, 9, 27)
    assert all({"group", "n_images", "failure_rate", "failure_rate_ci"} <= set(g)
               for g in body["detection"]["groups"])
    assert body["dataset"]["label_source"] == "hand-made for this test"
    assert body["template_id"] == pipeline.template_id and len(body["dataset"]["sha256"]) == 64

    html = html_path.read_text()
    assert not re.search(r"https?:|ftp:|(src|href)=['\"](?!data:)", html)  # links nowhere
    images = re.findall(r"<img [^>]*src='([^']*)'", html)
    assert len(images) == 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "<script" not in html and "<link" not in html
    assert "Limits" in html and "hand-made for this test" in html

    pngs = save_figures(report, tmp_path / "figs", "test")
    assert [p.name for p in pngs] == ["test-rates.png", "test-det.png", "test-detection.png",
                                      "test-composition.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_rerun_at_another_threshold_reads_the_cache(photos: Path, cache: Path, pipeline: Pipeline) -> None:
    first = run_bias_audit(photos, ["source"], THRESHOLD, pipeline, cache, workers=1, progress=False,
                           n_boot=100)
    again = run_bias_audit(photos, ["source"], THRESHOLD + 2, pipeline, cache, workers=1, progress=False,
                           n_boot=100)
    assert again.images_analysed_now == 0
    assert again.dataset.sha256 == first.dataset.sha256
    assert again.verification.threshold == THRESHOLD + 2
    assert again.verification.overall.n_mated == first.verification.overall.n_mated
    assert again.verification.overall.fnmr >= first.verification.overall.fnmr


def test_without_identities_only_detection_is_measured(data: Path, cache: Path, pipeline: Pipeline,
                                                       tmp_path: Path) -> None:
    """Also the multi-process path: two workers, each building its own pipeline."""
    utk = list(csv.DictReader((data / "demographics" / "utkface" / "manifest.csv").open()))[:4]
    rows = [{"path": str(data / "demographics" / "utkface" / r["path"]), "subject": "", "source": "utk",
             "gender": r["gender"]} for r in utk]
    report = run_bias_audit(write_manifest(tmp_path / "m.csv", rows), ["gender"], THRESHOLD, pipeline,
                            cache, workers=2, progress=False)
    assert report.verification is None and report.images_analysed_now == 4
    assert report.detection.overall.n_images == 4 and report.detection.overall.ci_method == "Wilson"
    assert any("not measured" in line for line in report.limits)
    assert "Verification: FMR" not in render_html(report)


def test_bad_manifests_are_refused(tmp_path: Path, cache: Path, pipeline: Pipeline, photos: Path) -> None:
    with pytest.raises(FacegateError) as missing_column:
        run_bias_audit(photos, ["race"], THRESHOLD, pipeline, cache, progress=False)
    assert missing_column.value.code is ErrorCode.INVALID_MANIFEST
    absent = write_manifest(tmp_path / "absent.csv", [{"path": "nowhere.jpg", "subject": "x",
                                                      "source": "s", "gender": ""}])
    with pytest.raises(FacegateError) as missing_file:
        run_bias_audit(absent, ["source"], THRESHOLD, pipeline, cache, progress=False)
    assert missing_file.value.code is ErrorCode.FILE_NOT_FOUND
    with pytest.raises(FacegateError) as no_columns:
        run_bias_audit(photos, [], THRESHOLD, pipeline, cache, progress=False)
    assert no_columns.value.code is ErrorCode.INVALID_ARGUMENT
