"""`facegate detect` and `facegate compare` through the real CLI (Click's runner, real models)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"


def run(settings: Settings, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(settings.home), "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_detect_json(settings: Settings, peers: Path) -> None:
    code, out = run(settings, "detect", str(peers / FR / "obama.jpg"), str(peers / FR / "biden.jpg"))
    assert code == 0
    assert [len(item["faces"]) for item in out["images"]] == [1, 1]
    face = out["images"][0]["faces"][0]
    assert set(face["box"]) == {"left", "top", "width", "height"}
    assert {"confidence", "landmarks", "quality"} <= set(face)
    assert len(face["landmarks"]) == 5
    assert "template" not in face


def test_detect_human_output(settings: Settings, peers: Path) -> None:
    result = CliRunner().invoke(main, ["detect", str(peers / FR / "obama.jpg"), "--data-dir", str(settings.home)])
    assert result.exit_code == 0 and "1 face(s)" in result.stdout


def test_compare_same_and_different(settings: Settings, peers: Path) -> None:
    code, out = run(settings, "compare", str(peers / FR / "obama.jpg"), str(peers / FR / "obama2.jpg"))
    assert code == 0 and out["match"] is True
    assert {"similarity", "estimated_fmr", "threshold", "match"} <= set(out)
    code, out = run(settings, "compare", str(peers / FR / "obama.jpg"), str(peers / FR / "biden.jpg"))
    assert code == 0 and out["match"] is False and out["estimated_fmr"] > 1e-4


def test_compare_lists_every_target_face(settings: Settings, peers: Path) -> None:
    group = peers / "face_recognition" / "examples" / "knn_examples" / "test" / "obama_and_biden.jpg"
    code, out = run(settings, "compare", str(peers / FR / "biden.jpg"), str(group))
    assert code == 0
    assert len(out["target_faces"]) >= 2
    assert sum(f["match"] for f in out["target_faces"]) == 1


def make_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.txt", "not an image")
    return path


def truncated(path: Path) -> Path:
    from tests.conftest import LFW

    path.write_bytes((LFW / "AJ_Cook" / "AJ_Cook_0001.jpg").read_bytes()[:3000])
    return path


@pytest.mark.parametrize(
    ("maker", "code"),
    [
        (lambda d: d / "missing.jpg", "FILE_NOT_FOUND"),
        (lambda d: make_zip(d / "archive.jpg"), "INVALID_IMAGE"),
        (lambda d: truncated(d / "trunc.jpg"), "INVALID_IMAGE"),
    ],
)
def test_bad_input_codes(settings: Settings, tmp_path: Path, maker, code: str) -> None:
    exit_code, out = run(settings, "detect", str(maker(tmp_path)))
    assert exit_code != 0 and out["error"]["code"] == code


def test_too_large(settings: Settings, tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(path)
    exit_code, out = run(settings, "detect", str(path))
    assert exit_code != 0 and out["error"]["code"] == "IMAGE_TOO_LARGE"


def test_compare_without_face(settings: Settings, peers: Path) -> None:
    no_face = peers / "insightface" / "inspireface" / "crop" / "no_face.png"
    exit_code, out = run(settings, "compare", str(no_face), str(peers / FR / "obama.jpg"))
    assert exit_code != 0 and out["error"]["code"] == "NO_FACE"


def test_error_without_json_goes_to_stderr(settings: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["detect", str(tmp_path / "missing.jpg"), "--data-dir", str(settings.home)])
    assert result.exit_code == 1
    assert "FILE_NOT_FOUND" in result.stderr and result.stdout == ""
