"""Issue 18 through the real CLI: `policy thresholds`, `policy check` in every-group mode on
the scale `audit-bias --threshold` measures, and both FMR estimates in `compare` and `search`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from facegate.cli import main
from facegate.engine import Facegate
from facegate.settings import Settings

FR = Path("face_recognition") / "tests" / "test_images"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy-2020-moratorium.toml"
POLICY = """
sectors = ["local"]
fmr_holds_for = "every_group"
[local_operator]
sector = "local"
purposes = "*"
default_purpose = "photo_library"

[purposes.photo_library]
description = "own photos"
max_fmr = 1e-3
max_results = 10
retention_days = 1

[purposes.leads]
description = "leads"
max_fmr = 1e-5
max_results = 10
retention_days = 1
"""


def run(settings: Settings, *args: str, policy: Path | None = None) -> tuple[int, dict]:
    extra = ["--policy", str(policy)] if policy else []
    result = CliRunner().invoke(main, [*args, "--data-dir", str(settings.home), *extra, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_policy_thresholds_lists_the_cost_of_each_promise(settings: Settings) -> None:
    code, out = run(settings, "policy", "thresholds", policy=EXAMPLE)
    assert code == 0 and out["score_normalization"] == "fair" and out["score_space"].endswith("+fsn")
    rows = {r["purpose"]: r for r in out["purposes"]}
    assert rows["criminal_investigation"]["fmr_holds_for"] == "every_group"
    assert rows["photo_library"]["fmr_holds_for"] == "population"
    for row in out["purposes"]:
        assert row["population_threshold"] is not None
        own = [g["threshold_at_max_fmr"] for g in row["groups"]]
        assert len(own) >= 4
        if row["every_group_threshold"] is not None:  # at least every group's own threshold
            assert all(t is not None and row["every_group_threshold"] >= t for t in own)
        else:  # some group cannot support max_fmr: shown as such
            assert None in own and row["certifiable"] is False
        if row["fmr_holds_for"] == "every_group" and row["accept_lowest_certifiable_fmr"]:
            assert row["threshold"] >= row["population_threshold"] and row["certified_fmr"] >= row["max_fmr"]
        for g in row["groups"]:
            assert 0 <= g["fnmr"] <= 1 and 0 < g["fmr_upper"] <= 1


def test_policy_check_gives_the_every_group_threshold_that_audit_bias_measures(
    settings: Settings, tmp_path: Path, peers: Path, lfw: Path
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    code, out = run(settings, "policy", "check", "--purpose", "photo_library", "--operation", "search",
                    policy=policy)
    engine = Facegate(settings.model_copy(update={"policy": policy}))
    every = engine.group_calibration.every_group_threshold(1e-3)
    assert code == 0 and out["fmr_holds_for"] == "every_group" and out["certified_fmr"] == 1e-3
    assert out["threshold"] == max(every.threshold, engine.calibration.threshold_at_fmr(1e-3))
    assert out["limiting_group"] == every.limiting_group and "+fsn" in out["calibration"]
    # an audit at that threshold measures the same (normalized) scores the gate thresholds
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject", "gender"])
        for person in ("Tony_Blair", "Colin_Powell"):
            for n in (1, 2):
                w.writerow([lfw / person / f"{person}_{n:04d}.jpg", person, "Male"])
    code, audit = run(settings, "audit-bias", "--manifest", str(manifest), "--group-by", "gender",
                      "--purpose", "photo_library", "--out", str(tmp_path / "r"), policy=policy)
    assert code == 0 and audit["threshold"] == out["threshold"]
    report = json.loads(Path(audit["report_json"]).read_text())
    assert report["score_space"] == engine.scorer.score_id and report["verification"]["threshold"] == out["threshold"]
    # and a rate no group calibration supports is refused, naming the group
    code, out = run(settings, "policy", "check", "--purpose", "leads", "--operation", "search", policy=policy)
    assert out["decision"] == "deny" and out["code"] == "FMR_NOT_CERTIFIABLE" and "race=" in out["reason"]


def test_compare_and_search_print_both_estimates(settings: Settings, peers: Path) -> None:
    code, out = run(settings, "compare", str(peers / FR / "obama.jpg"), str(peers / FR / "obama2.jpg"))
    assert code == 0 and out["worst_group"] and out["estimated_fmr_worst_group"] >= out["estimated_fmr"]
    run(settings, "collection", "create", "people")
    run(settings, "index", "people", str(peers / FR / "obama.jpg"), "--subject", "obama")
    code, out = run(settings, "search", "people", str(peers / FR / "obama2.jpg"))
    assert code == 0 and out["matches"]
    assert all(m["worst_group"] and m["estimated_fmr_worst_group"] for m in out["matches"])
    human = CliRunner().invoke(main, ["search", "people", str(peers / FR / "obama2.jpg"),
                                      "--data-dir", str(settings.home)])
    assert human.exit_code == 0 and "worst group" in human.stdout


def test_policy_thresholds_human_table(settings: Settings, tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    result = CliRunner().invoke(main, ["policy", "thresholds", "--data-dir", str(settings.home),
                                       "--policy", str(policy)])
    assert result.exit_code == 0, result.output
    assert "refused: FMR_NOT_CERTIFIABLE" in result.stdout  # leads: 1e-5 for every group
    assert "photo_library" in result.stdout and "race=Indian" in result.stdout
