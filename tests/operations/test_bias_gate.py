"""The demographic audit as a gate: a purpose that requires a passed audit of the active
model is denied (AUDIT_REQUIRED) until one is recorded, allowed after a passing one, and
denied again after a failing one. Real templates of real photos, small data set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from facegate.cli import main
from facegate.settings import Settings
from tests.backend import environment

FR = Path("face_recognition") / "tests" / "test_images"


def policy(tmp_path: Path, max_group_fmr: float, max_ratio: float) -> Path:
    from facegate.governance import default_policy

    text = default_policy().text.replace(
        'description = "Find accounts that one person opened twice on a platform, before a human decides."',
        'description = "Find accounts that one person opened twice on a platform, before a human decides."\n'
        f'require_bias_audit = {{ dataset = "lfw-sample", max_group_fmr = {max_group_fmr}, '
        f"max_fmr_ratio = {max_ratio} }}",
    )
    path = tmp_path / f"policy-{max_group_fmr}.toml"
    path.write_text(text)
    return path


def labelled_manifest(lfw: Path, tmp_path: Path) -> Path:
    """LFW people with 3-5 photos, 15 per subject_gender label (labels from Kumar et al.'s
    attribute classifiers, shipped with the data set): enough subjects per group for the
    audit to measure both groups."""
    with (lfw / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["subject"]] = counts.get(r["subject"], 0) + 1
    chosen: dict[str, list[str]] = {"Male": [], "Female": []}
    for r in rows:
        group = chosen.get(r["subject_gender"])
        if group is not None and 3 <= counts[r["subject"]] <= 5 and r["subject"] not in group and len(group) < 15:
            group.append(r["subject"])
    people = {s: g for g, names in chosen.items() for s in names}
    out = tmp_path / "manifest.csv"
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject", "gender"])
        for r in rows:
            if r["subject"] in people:
                writer.writerow([str(lfw / r["path"]), r["subject"], people[r["subject"]]])
    return out


def run(settings: Settings, policy_file: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = CliRunner().invoke(
        main, [*args, "--data-dir", str(settings.home), "--policy", str(policy_file), "--json"],
        env={**environment(settings), **(env or {})},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_gate_follows_recorded_audits(settings: Settings, peers: Path, lfw: Path, tmp_path: Path) -> None:
    lenient, strict = policy(tmp_path, 0.5, 1e6), policy(tmp_path, 1e-9, 1.0)
    manifest = labelled_manifest(lfw, tmp_path)
    probe = str(peers / FR / "obama.jpg")
    run(settings, lenient, "collection", "create", "accounts")
    search = ("search", "accounts", probe, "--purpose", "account_deduplication")

    code, out = run(settings, lenient, *search)
    assert code == 1 and out["error"]["code"] == "AUDIT_REQUIRED"

    code, audit = run(settings, lenient, "audit-bias", "--manifest", str(manifest), "--group-by", "gender",
                      "--purpose", "account_deduplication", "--record", "--dataset", "lfw-sample",
                      "--out", str(tmp_path / "report"))
    assert code == 0 and audit["recorded"] is True and audit["passed"] is True
    report = json.loads(Path(audit["report_json"]).read_text())
    assert {"verification", "detection"} <= set(report)
    assert (tmp_path / "report" / "report.html").is_file()

    code, out = run(settings, lenient, *search)
    assert code == 0 and out["decision"]["decision"] == "allow"
    # the audit measured the MTCNN detector: it does not vouch for the same embedder behind HOG
    code, out = run(settings, lenient, *search, env={"FACEGATE_DETECTOR": "hog"})
    assert code == 1 and out["error"]["code"] == "AUDIT_REQUIRED"

    code, audit = run(settings, strict, "audit-bias", "--manifest", str(manifest), "--group-by", "gender",
                      "--purpose", "account_deduplication", "--record", "--dataset", "lfw-sample",
                      "--out", str(tmp_path / "report2"))
    assert code == 0 and audit["passed"] is False
    code, out = run(settings, strict, *search)
    assert code == 1 and out["error"]["code"] == "AUDIT_REQUIRED"
