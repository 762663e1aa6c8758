"""Fair score normalization and the every-group promise, on real photos and the shipped
calibrations: one scoring function for search, compare and the audit; both FMR estimates
on every match; an uncertifiable rate refused or reported as the policy says."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from facegate.engine import Facegate
from facegate.errors import ErrorCode
from facegate.evaluation.bias_audit import run_bias_audit
from facegate.gate import Caller
from facegate.governance import PolicyDenied, verify
from facegate.governance.audit import read_entries
from facegate.operations import collections, faces, search, vision
from facegate.operations.thresholds import purpose_thresholds
from facegate.settings import Settings
from facegate.store.faces import list_faces
from facegate.store.tables import FaceRow
from facegate.store.templates import templates_of
from facegate.vision.calibration import similarity
from facegate.vision.group_calibration import load_group_calibration
from facegate.vision.score_normalization import FSN_SUFFIX, normalize

FR = Path("face_recognition") / "tests" / "test_images"
ME = Caller()


def photo(peers: Path, name: str) -> bytes:
    return (peers / FR / name).read_bytes()


def policy_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        'sectors = ["local"]\n[local_operator]\nsector = "local"\npurposes = "*"\n'
        'default_purpose = "photo_library"\n' + body
    )
    return path


PURPOSES = """
[purposes.photo_library]
description = "own photos"
max_fmr = 1e-3
max_results = 10
retention_days = 1
{library}

[purposes.loose]
description = "nearly every face: ranks many candidates"
max_fmr = 0.9
max_results = 10
retention_days = 1

[purposes.criminal_investigation]
description = "leads"
max_fmr = 1e-5
max_results = 10
retention_days = 1
fmr_holds_for = "every_group"
{investigation}
"""


def fair_engine(settings: Settings, tmp_path: Path, library: str = "", investigation: str = "") -> Facegate:
    policy = policy_file(tmp_path, PURPOSES.format(library=library, investigation=investigation))
    return Facegate(settings.model_copy(update={"policy": policy}))


@pytest.fixture()
def fair(settings: Settings, tmp_path: Path, peers: Path) -> Facegate:
    engine = fair_engine(settings, tmp_path, library='fmr_holds_for = "every_group"')
    assert engine.scorer.normalized, "the default template space ships a normalization: auto is on"
    collections.create_collection(engine, ME, "people")
    for name, subject in (("obama.jpg", "obama"), ("biden.jpg", "biden"), ("obama3.jpg", "obama")):
        faces.index_faces(engine, ME, "people", photo(peers, name), subject=subject, external_image_id=name)
    return engine


def test_every_group_threshold_is_at_least_each_groups_own() -> None:
    for suffix in ("", FSN_SUFFIX):
        groups = load_group_calibration("dlib-resnet-v1+flip" + suffix)
        assert groups is not None and len(groups.groups) >= 4
        for fmr in (1e-2, 3e-3, 1e-3):
            every = groups.every_group_threshold(fmr)
            own = [g.threshold_at_fmr(fmr) for g in groups.groups]
            if every.threshold is None:  # some group cannot support the rate: it says which
                assert fmr < every.lowest_certifiable_fmr
                continue
            assert all(t is not None and every.threshold >= t for t in own)
            assert every.threshold == max(own)  # and no higher than it needs to be
            # the upper bound of every group holds the rate there
            assert all(g.estimated_fmr(every.threshold) <= fmr for g in groups.groups)


def test_search_compare_and_audit_score_alike(fair: Facegate, peers: Path, tmp_path: Path, lfw: Path) -> None:
    result = search.search_image(fair, ME, "people", photo(peers, "obama2.jpg")).value
    hit = next(m for m in result.matches if m.external_image_id == "obama.jpg")
    compared = vision.compare(fair, ME, photo(peers, "obama2.jpg"), photo(peers, "obama.jpg")).value.best
    assert hit.similarity == pytest.approx(compared.similarity, abs=1e-4)
    # ... and that score is the normalization of the raw one, with both templates' offsets
    a = fair.analyze(photo(peers, "obama2.jpg"), 1)[0].template
    b = fair.analyze(photo(peers, "obama.jpg"), 1)[0].template
    offsets = fair.scorer.offsets(np.stack([a, b]))
    expected = float(normalize(similarity(a, b)[0], offsets[0], offsets[1]))
    assert compared.similarity == pytest.approx(expected, abs=1e-6)
    # the audit scores its pairs with the same function: a one-subject manifest of these
    # two photos has one mated pair, whose score is the same number
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "subject", "group"])
        w.writerow([peers / FR / "obama2.jpg", "obama", "x"])
        w.writerow([peers / FR / "obama.jpg", "obama", "x"])
    report = run_bias_audit(manifest, ["group"], 90.0, fair.pipeline, tmp_path / "cache", scorer=fair.scorer,
                            workers=1, progress=False, n_boot=10)
    assert report.score_space == fair.scorer.score_id
    mated = report.verification.scores[0].mated
    assert mated.tolist() == pytest.approx([compared.similarity], abs=1e-5)


def test_raw_scores_stay_selectable(settings: Settings, tmp_path: Path, peers: Path) -> None:
    raw = Facegate(settings.model_copy(update={"score_normalization": "raw"}))
    assert not raw.scorer.normalized and raw.calibration.template_id == "dlib-resnet-v1+flip"
    best = vision.compare(raw, ME, photo(peers, "obama2.jpg"), photo(peers, "obama.jpg")).value.best
    a = raw.analyze(photo(peers, "obama2.jpg"), 1)[0].template
    b = raw.analyze(photo(peers, "obama.jpg"), 1)[0].template
    assert best.similarity == pytest.approx(float(similarity(a, b)[0]), abs=1e-6)
    fair = Facegate(settings.model_copy(update={"score_normalization": "fair", "home": tmp_path / "other"}))
    assert fair.calibration.template_id == "dlib-resnet-v1+flip+fsn"


def test_answers_carry_both_estimates(fair: Facegate, peers: Path) -> None:
    result = search.search_image(fair, ME, "people", photo(peers, "obama2.jpg")).value
    assert result.matches
    for m in result.matches:
        d = m.to_dict()
        assert d["estimated_fmr"] == m.estimated_fmr
        assert 0 < d["estimated_fmr_worst_group"] <= 1
        assert d["worst_group"] in {g.group for g in fair.group_calibration.groups}
        worst, group = fair.group_calibration.worst_group(m.similarity)
        assert (d["estimated_fmr_worst_group"], d["worst_group"]) == (worst, group)
    subject = result.subjects[0].to_dict()
    assert {"estimated_fmr", "estimated_fmr_worst_group", "worst_group"} <= set(subject)
    compared = vision.compare(fair, ME, photo(peers, "obama2.jpg"), photo(peers, "biden.jpg")).value.to_dict()
    assert compared["estimated_fmr_worst_group"] is not None and compared["worst_group"]
    assert all("estimated_fmr_worst_group" in t for t in compared["target_faces"])


def test_every_group_mode_threshold_and_audit_entry(fair: Facegate, peers: Path) -> None:
    gated = search.search_image(fair, ME, "people", photo(peers, "obama2.jpg"))
    d = gated.decision
    every = fair.group_calibration.every_group_threshold(1e-3)
    assert d.fmr_holds_for == "every_group" and d.threshold == pytest.approx(
        max(every.threshold, fair.calibration.threshold_at_fmr(1e-3))
    )
    assert d.threshold >= fair.calibration.threshold_at_fmr(1e-3)
    with fair.sessions.begin() as session:
        details = read_entries(session, limit=1000)[-1]["details"]
    assert details["fmr_holds_for"] == "every_group"
    assert fair.group_calibration.calibration_id in details["calibration"]
    assert details["certified_fmr"] == 1e-3
    with fair.sessions.begin() as session:
        assert verify(session).ok


def test_uncertifiable_rate_is_refused(fair: Facegate, peers: Path) -> None:
    caller = Caller(purpose="criminal_investigation")
    with pytest.raises(PolicyDenied) as denied:
        search.search_image(fair, caller, "people", photo(peers, "obama2.jpg"))
    assert denied.value.code is ErrorCode.FMR_NOT_CERTIFIABLE
    worst = max(fair.group_calibration.groups, key=lambda g: g.lowest_certifiable_fmr)
    assert worst.group in denied.value.message
    assert f"{worst.lowest_certifiable_fmr:.2g}" in denied.value.message


def test_uncertifiable_rate_is_reported_when_accepted(settings: Settings, tmp_path: Path, peers: Path) -> None:
    engine = fair_engine(settings, tmp_path, investigation="accept_lowest_certifiable_fmr = true")
    collections.create_collection(engine, ME, "people")
    faces.index_faces(engine, ME, "people", photo(peers, "obama.jpg"), subject="obama")
    gated = search.search_image(engine, Caller(purpose="criminal_investigation"), "people", photo(peers, "obama2.jpg"))
    groups = engine.group_calibration
    assert gated.decision.certified_fmr == groups.lowest_certifiable_fmr > 1e-5
    assert gated.decision.threshold == pytest.approx(
        max(groups.every_group_threshold(groups.lowest_certifiable_fmr).threshold,
            engine.calibration.threshold_at_fmr(1e-5))
    )
    rows = {r.purpose: r for r in purpose_thresholds(engine)[2]}
    assert rows["criminal_investigation"].certified_fmr == gated.decision.certified_fmr
    assert rows["criminal_investigation"].threshold == pytest.approx(gated.decision.threshold)


def test_search_reranks_exactly(fair: Facegate, peers: Path, lfw: Path) -> None:
    """The index ranks by raw cosine; the answer is the exhaustive normalized ranking."""
    for person in sorted(p for p in lfw.iterdir() if p.is_dir())[:60]:
        first = sorted(person.glob("*.jpg"))[0]
        faces.index_faces(fair, ME, "people", first.read_bytes(), subject=person.name)
    result = search.search_image(fair, Caller(purpose="loose"), "people", photo(peers, "obama2.jpg")).value
    assert len(result.matches) == 10  # the purpose's max_results
    with fair.sessions.begin() as session:
        everyone = list_faces(session, collection_id="people", limit=100).items
        stored = templates_of(session, collection_id="people", codec=fair.codec,
                              face_ids=[f.face_id for f in everyone])
    probe = fair.analyze(photo(peers, "obama2.jpg"), 1)[0].template
    scores = fair.scorer.matrix(probe[None, :], stored.vectors)[0]
    exhaustive = [stored.face_ids[i] for i in np.argsort(-scores)[:10]]
    assert [m.face_id for m in result.matches] == exhaustive
    assert [m.similarity for m in result.matches] == pytest.approx(sorted(scores, reverse=True)[:10], abs=1e-4)


def ranked(matches: list) -> list[tuple[str, float]]:
    return [(m.face_id, round(m.similarity, 6)) for m in matches]


def test_stored_offsets_and_lazy_ones_agree(fair: Facegate, peers: Path) -> None:
    """Faces enrolled with normalization on store their offset; a face without one (enrolled
    before, column NULL) is scored from its template, to the same number."""
    before = search.search_image(fair, ME, "people", photo(peers, "obama2.jpg")).value.matches
    with fair.sessions.begin() as session:
        stored = [f.score_offset for f in list_faces(session, collection_id="people").items]
        assert all(o is not None for o in stored)
        session.execute(update(FaceRow).values(score_offset=None))
    after = search.search_image(fair, ME, "people", photo(peers, "obama2.jpg")).value.matches
    assert ranked(after) == ranked(before)
    # a tampered offset (a face made to match everyone) is not believed: recomputed instead
    with fair.sessions.begin() as session:
        session.execute(update(FaceRow).values(score_offset=-150.0))
    tampered = search.search_image(fair, ME, "people", photo(peers, "obama2.jpg")).value.matches
    assert ranked(tampered) == ranked(before)
