"""The evaluation commands pass the gate and leave an audit entry, like every operation:
allowed for an auditor (with the figures and the template space measured), denied and
recorded for anyone else. Real photos, a small LFW manifest."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from facegate.engine import Facegate
from facegate.errors import ErrorCode, FacegateError
from facegate.gate import Caller
from facegate.governance import read_entries
from facegate.operations import admin
from facegate.operations.evaluation import evaluate_identification, evaluate_pairs

PEOPLE = ("Tony_Blair", "Colin_Powell", "Laura_Bush", "Hugo_Chavez")


def small_manifest(lfw: Path, tmp_path: Path) -> Path:
    out = tmp_path / "manifest.csv"
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "subject"])
        for person in PEOPLE:
            for n in (1, 2, 3):
                writer.writerow([str(lfw / person / f"{person}_{n:04d}.jpg"), person])
    return out


def entries(engine: Facegate) -> list[dict]:
    with engine.sessions.begin() as session:
        return list(read_entries(session))


def test_evaluation_is_decided_and_recorded(engine: Facegate, lfw: Path, tmp_path: Path) -> None:
    manifest = small_manifest(lfw, tmp_path)
    result = evaluate_identification(engine, Caller(), manifest, workers=1)
    assert result["n_gallery"] == len(PEOPLE) and result["rank1_rate"] > 0.5
    last = entries(engine)[-1]
    assert (last["operation"], last["decision"]) == ("evaluate", "allow")
    details = last["details"]
    assert details["evaluation"] == "identification" and details["audit_space"] == engine.space.audit_id
    assert details["n_gallery"] == len(PEOPLE) and len(details["dataset_sha256"]) == 64
    # scored as search scores (fair normalization when on), and the entry says in which space
    assert details["score_space"] == result["score_space"] == engine.scorer.score_id

    admin.new_tenant(engine, Caller(), "ops-only", "nonprofit", ["photo_library"], ["operator"])
    before = len(entries(engine))
    with pytest.raises(FacegateError) as denied:
        evaluate_identification(engine, Caller(tenant="ops-only"), manifest, workers=1)
    assert denied.value.code is ErrorCode.ROLE_REQUIRED
    after = entries(engine)
    assert len(after) == before + 1
    assert (after[-1]["operation"], after[-1]["decision"], after[-1]["tenant"]) == ("evaluate", "deny", "ops-only")


def test_a_refused_evaluation_is_recorded_once(engine: Facegate, lfw: Path, tmp_path: Path) -> None:
    one_fold = tmp_path / "pairs.txt"
    one_fold.write_text("1\t1\nTony_Blair\t1\t2\nTony_Blair\t1\tColin_Powell\t1\n")
    before = len(entries(engine))
    with pytest.raises(FacegateError) as refused:
        evaluate_pairs(engine, Caller(), one_fold, lfw, workers=1)
    assert refused.value.code is ErrorCode.INVALID_MANIFEST and "two folds" in refused.value.message
    after = entries(engine)
    assert len(after) == before + 1 and after[-1]["details"]["error"] == "INVALID_MANIFEST"
