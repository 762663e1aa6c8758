"""Fit fair score normalization and group calibrations on LFW; check them on held-out folds.

    .venv/bin/python benchmarks/fair_normalization.py --lfw ../shared/data/lfw \
        --out benchmarks/out/fairness [--write]

Data: every photo of `manifest.csv` whose central face passes the LOW quality filter
(templates from the shared template cache, default pipeline). LFW's pairs folds are
subject-disjoint; "fold 0" below means the photos in no fold (subjects with one photo,
who still make impostor pairs). Folds 5-8 are held out: never used to fit or choose.

* parameters (cluster count k, minimum cluster size) are chosen on folds 0-4 only: fit on
  folds 1-2 and measure on folds 0, 3, 4, then the other way round; the criterion is the
  overall FNMR at the "oracle" every-group threshold of the measured half (the lowest
  similarity at which every race group's within-group FMR is <= 1e-3), i.e. what the
  every-group promise costs;
* held-out check: the normalization is fitted on `--normalization-folds` (default 0-4),
  the population threshold and group calibrations on `--calibration-folds` (default 0-4;
  `--calibration-folds 0,3,4 --normalization-folds 1,2` keeps them disjoint), then
  measured on folds 5-8: per-group FMR on all within-group impostor pairs (95% subject
  bootstrap interval) and FNMR on mated pairs, raw against normalized, plus LFW 1:1
  k-fold accuracy (pairs.txt) and 1:N FNIR at FPIR 1e-3 (folds 5-8 as gallery and searches).

`--write` then writes the shipped files into src/facegate/vision/calibration/: the
normalization fitted on the normalization folds (the one checked on held-out folds), and
the group calibrations, raw and normalized, on every labelled photo. The population
calibration on normalized scores is written by `benchmarks/calibrate.py --score fair`.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from facegate.evaluation.demographics import _pair_weight, bootstrap_interval, subject_weights
from facegate.evaluation.group_calibration_fit import (
    fit_group_calibration,
    fit_normalization,
    impostor_scores,
    pair_scores,
    threshold_at,
)
from facegate.evaluation.identification import identify, split
from facegate.evaluation.lfw_pairs import read_pairs
from facegate.evaluation.pair_sampling import mated_pairs
from facegate.evaluation.template_cache import FACE, cached_analyses
from facegate.evaluation.verification import kfold_accuracy
from facegate.vision import Pipeline, PipelineConfig
from facegate.vision.group_calibration import group_calibration_file_name
from facegate.vision.score_normalization import FairNormalization, Scorer, normalization_file_name

TARGET = 1e-3
LABEL_SOURCE = (
    "LFW attribute classifiers of Kumar et al. (2009), binarised by paulu/deepfeatinterp; a subject's "
    "label is the majority over its labelled photos (manifest columns subject_race, subject_gender). "
    "Classifier outputs, not self-reported identity; four coarse race values."
)
COLUMNS = ("subject_race", "subject_gender")
KS = (5, 10, 20, 40)
MIN_SIZES = (50, 100, 200)


class Data:
    """Usable photos as arrays."""

    def __init__(self, lfw: Path, cache: Path, workers: int) -> None:
        with (lfw / "manifest.csv").open() as f:
            rows = list(csv.DictReader(f))
        pipeline = Pipeline(PipelineConfig())
        self.template_id = pipeline.template_id
        found = cached_analyses([lfw / r["path"] for r in rows], pipeline, cache, workers=workers)
        ok = np.array([o == FACE and lv != "NONE" for o, lv in zip(found.outcome, found.level)])
        keep = np.flatnonzero(ok)
        self.n_rows, self.n_unusable = len(rows), int((~ok).sum())
        self.paths = [rows[i]["path"] for i in keep]
        self.templates = found.templates[keep].astype(np.float32)
        names, self.subject_of = np.unique([rows[i]["subject"] for i in keep], return_inverse=True)
        self.fold = np.array([int(rows[i]["pairs_fold"] or 0) for i in keep])
        self.labels = {c: np.array([rows[i][c] for i in keep], dtype=object) for c in COLUMNS}

    def subset(self, folds: set[int]) -> np.ndarray:
        return np.flatnonzero(np.isin(self.fold, list(folds)))


def group_rates(
    data: Data, images: np.ndarray, scorer: Scorer, thresholds: dict[str, float], rng: np.random.Generator,
) -> list[dict]:
    """Per group (and everyone): within-group impostor FMR and mated FNMR at each threshold."""
    offsets = scorer.offsets(data.templates)
    subj = data.subject_of
    ma, mb = mated_pairs(subj[images], 200, rng)
    mated = pair_scores(data.templates, images[ma], images[mb], scorer, offsets)
    mated_subject = subj[images[ma]]
    groups = [("everyone", images)]
    for column in COLUMNS:
        for value in sorted({v for v in data.labels[column][images] if v}):
            groups.append((f"{column.removeprefix('subject_')}={value}", images[data.labels[column][images] == value]))
    out = []
    for name, members in groups:
        a, b, imp = impostor_scores(data.templates, subj, members, 3_000_000, rng, scorer, offsets)
        own = np.isin(mated_subject, subj[members])
        row = {"group": name, "n_subjects": int(len(np.unique(subj[members]))), "n_impostor_pairs": len(imp),
               "n_mated_pairs": int(own.sum())}
        names, inverse = np.unique(np.concatenate([subj[a], subj[b]]), return_inverse=True)
        sa, sb = inverse[: len(a)], inverse[len(a):]
        weights = subject_weights(len(names), 200, rng)
        den = _pair_weight(weights, sa, sb)
        for key, t in thresholds.items():
            hits = imp >= t
            row[f"fmr@{key}"] = float(np.mean(hits)) if len(imp) else None
            num = _pair_weight(weights, sa[hits], sb[hits])
            row[f"fmr_ci@{key}"] = list(bootstrap_interval(num, den, int(hits.sum()), len(hits), 0.95))
            row[f"fnmr@{key}"] = float(np.mean(mated[own] < t)) if own.any() else None
        out.append(row)
    return out


def oracle_cost(data: Data, images: np.ndarray, scorer: Scorer, rng: np.random.Generator) -> float:
    """Overall FNMR at the lowest threshold where every race group's FMR <= TARGET."""
    offsets = scorer.offsets(data.templates)
    subj = data.subject_of
    race = data.labels["subject_race"]
    t = 0.0
    for value in sorted({v for v in race[images] if v}):
        members = images[race[images] == value]
        _, _, imp = impostor_scores(data.templates, subj, members, 1_000_000, rng, scorer, offsets)
        if len(imp) * TARGET >= 1:
            t = max(t, threshold_at(imp, TARGET))
    ma, mb = mated_pairs(subj[images], 200, rng)
    mated = pair_scores(data.templates, images[ma], images[mb], scorer, offsets)
    return float(np.mean(mated < t))


def choose(data: Data) -> tuple[dict, list[dict]]:
    halves = (data.subset({1, 2}), data.subset({0, 3, 4}))
    trials = []
    raw = Scorer(data.template_id)
    base = [oracle_cost(data, ev, raw, np.random.default_rng(1)) for ev in halves]
    trials.append({"k": 0, "min_cluster_size": 0, "cost": float(np.mean(base))})
    for k in KS:
        for m in MIN_SIZES:
            costs = []
            for fit, ev in ((halves[0], halves[1]), (halves[1], halves[0])):
                norm = fit_normalization(data.templates[fit], data.subject_of[fit], data.template_id,
                                         k=k, min_cluster_size=m, target_fmr=TARGET)
                costs.append(oracle_cost(data, ev, Scorer(data.template_id, norm), np.random.default_rng(1)))
            trials.append({"k": k, "min_cluster_size": m, "cost": float(np.mean(costs))})
            print(f"k={k} min={m}: FNMR at oracle every-group threshold {np.mean(costs):.4f}", flush=True)
    best = min((t for t in trials if t["k"]), key=lambda t: t["cost"])
    return best, trials


def verification(data: Data, lfw: Path, scorer: Scorer) -> dict:
    """LFW 1:1 k-fold accuracy on pairs.txt: all folds, and the held-out folds 5-8 only."""
    pairs = read_pairs(lfw / "pairs.txt")
    index = {p: i for i, p in enumerate(data.paths)}
    a = np.array([index.get(p, -1) for p in pairs.left])
    b = np.array([index.get(p, -1) for p in pairs.right])
    ok = (a >= 0) & (b >= 0)
    scores = np.full(len(a), -1.0)
    scores[ok] = pair_scores(data.templates, a[ok], b[ok], scorer, scorer.offsets(data.templates))
    held = pairs.folds >= 4  # folds are numbered from 0 here: 4..7 are LFW folds 5-8
    out = {"missing_pairs": int((~ok).sum())}
    for name, sel in (("all_folds", np.ones(len(a), bool)), ("folds_5_8", held)):
        k = kfold_accuracy(scores[sel], pairs.same[sel], pairs.folds[sel])
        out[name] = {"accuracy": k.mean, "std": k.std}
    return out


def identification(data: Data, images: np.ndarray, scorer: Scorer) -> dict:
    rows = [(data.paths[i], str(data.subject_of[i])) for i in images]
    templates = {data.paths[i]: data.templates[i] for i in images}
    report = identify(split(rows, set(templates)), templates, (1e-2, 1e-3), scorer=scorer)
    return report.to_dict()


def rerank_loss(data: Data, images: np.ndarray, scorer: Scorer, k: int = 10) -> dict:
    """How many of each probe's normalized top-k fall outside its raw top-n (n = k, 2k, 5k)."""
    gallery = images[::2]
    probes = images[1::2][:2000]
    raw = Scorer(data.template_id).matrix(data.templates[probes], data.templates[gallery])
    norm = scorer.matrix(data.templates[probes], data.templates[gallery])
    top_norm = np.argsort(-norm, axis=1)[:, :k]
    out = {}
    for n in (k, 2 * k, 5 * k):
        top_raw = np.argsort(-raw, axis=1)[:, :n]
        lost = sum(len(set(tn) - set(tr)) for tn, tr in zip(top_norm.tolist(), top_raw.tolist()))
        out[f"outside_raw_top_{n}"] = lost / (len(probes) * k)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/template-cache"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--k", type=int, default=None, help="skip the parameter search: this cluster count")
    parser.add_argument("--min-cluster-size", type=int, default=100)
    parser.add_argument("--normalization-folds", default="0,1,2,3,4", help="folds the normalization is fitted on")
    parser.add_argument("--calibration-folds", default="0,1,2,3,4", help="folds the held-out check calibrates on")
    parser.add_argument("--write", action="store_true", help="write the shipped files")
    args = parser.parse_args()
    data = Data(args.lfw, args.cache, args.workers)
    fit = data.subset({int(f) for f in args.normalization_folds.split(",")})
    cal = data.subset({int(f) for f in args.calibration_folds.split(",")})
    held = data.subset({5, 6, 7, 8})
    summary: dict = {"n_photos": data.n_rows, "n_unusable": data.n_unusable, "n_fit": len(fit),
                     "n_calibration": len(cal), "n_held": len(held)}
    if args.k is None:
        best, trials = choose(data)
        summary["parameter_search"] = trials
    else:
        best = {"k": args.k, "min_cluster_size": args.min_cluster_size}
    summary["chosen"] = best
    source = (f"LFW folds {args.normalization_folds} (0: no fold; {len(fit)} photos), k={best['k']}, "
              f"min cluster size {best['min_cluster_size']}, benchmarks/fair_normalization.py")
    norm = fit_normalization(data.templates[fit], data.subject_of[fit], data.template_id, k=best["k"],
                             min_cluster_size=best["min_cluster_size"], target_fmr=TARGET, source=source)
    summary["offsets"] = [round(float(o), 3) for o in norm.offsets]
    summary["cluster_sizes"] = norm.cluster_sizes.tolist()
    held_out: dict = {}
    for name, scorer in (("raw", Scorer(data.template_id)), ("normalized", Scorer(data.template_id, norm))):
        rng = np.random.default_rng(7)
        groups = fit_group_calibration(
            data.templates[cal], data.subject_of[cal], {c: data.labels[c][cal] for c in COLUMNS}, scorer,
            dataset=f"lfw folds {args.calibration_folds}", label_source=LABEL_SOURCE, source="held-out check",
        )
        offsets = scorer.offsets(data.templates)
        _, _, pop = impostor_scores(data.templates, data.subject_of, cal, 2_000_000, rng, scorer, offsets)
        every = groups.every_group_threshold(TARGET)
        used_fmr = TARGET
        if every.threshold is None:  # as a policy that accepts the lowest certifiable rate
            used_fmr = every.lowest_certifiable_fmr
            every = groups.every_group_threshold(used_fmr)
        thresholds = {"population": threshold_at(pop, TARGET), "every_group": every.threshold}
        held_out[name] = {
            "thresholds": thresholds,
            "every_group_fmr_used": used_fmr,
            "limiting_group": every.limiting_group,
            "lowest_certifiable": {g.group: g.lowest_certifiable_fmr for g in groups.groups},
            "per_group_thresholds": dict(every.per_group),
            "groups": group_rates(data, held, scorer, thresholds, rng),
            "lfw_1to1": verification(data, args.lfw, scorer),
            "lfw_1toN_held_out": identification(data, held, scorer),
        }
        print(name, json.dumps({k: v for k, v in held_out[name].items() if k != "groups"}, indent=1), flush=True)
    summary["held_out"] = held_out
    summary["rerank"] = rerank_loss(data, held, Scorer(data.template_id, norm))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    _print_tables(summary)
    if args.write:
        _write(data, norm)


def _write(data: Data, norm: FairNormalization) -> None:
    target = Path("src/facegate/vision/calibration")
    (target / normalization_file_name(data.template_id)).write_text(json.dumps(norm.to_dict()) + "\n")
    everyone = np.arange(len(data.paths))
    for scorer in (Scorer(data.template_id), Scorer(data.template_id, norm)):
        groups = fit_group_calibration(
            data.templates[everyone], data.subject_of[everyone], {c: data.labels[c][everyone] for c in COLUMNS},
            scorer, dataset="lfw", label_source=LABEL_SOURCE,
            source=(f"LFW manifest, all {len(everyone)} photos with a usable central face "
                    f"({data.n_rows} rows); within-group impostor pairs (up to 2,000,000 a group); "
                    "95% upper bound by subject bootstrap (200 replicates); benchmarks/fair_normalization.py"),
        )
        path = target / group_calibration_file_name(scorer.score_id)
        path.write_text(json.dumps(groups.to_dict(), indent=0) + "\n")
        print("wrote", path, {g.group: g.lowest_certifiable_fmr for g in groups.groups})


def _print_tables(summary: dict) -> None:
    def f(x: float | None) -> str:
        return "-" if x is None else ("0" if x == 0 else f"{x:.1e}")

    for name, r in summary["held_out"].items():
        t = r["thresholds"]
        print(f"\n{name}: population threshold {t['population']:.2f}, every-group {t['every_group']:.2f} "
              f"(FMR {r['every_group_fmr_used']:g}, limited by {r['limiting_group']})")
        print("| group | subjects | FMR @pop [95% CI] | FNMR @pop | FMR @every [95% CI] | FNMR @every |\n"
              "|---|---:|---|---|---|---|")
        for g in r["groups"]:
            ci_p, ci_e = g["fmr_ci@population"], g["fmr_ci@every_group"]
            print(f"| {g['group']} | {g['n_subjects']} | {f(g['fmr@population'])} [{f(ci_p[0])}, {f(ci_p[1])}] | "
                  f"{f(g['fnmr@population'])} | {f(g['fmr@every_group'])} [{f(ci_e[0])}, {f(ci_e[1])}] | "
                  f"{f(g['fnmr@every_group'])} |")
        one_to_n = {k: v for k, v in r["lfw_1toN_held_out"].items() if "fnir" in k or "rank1" in k}
        print("1:1", r["lfw_1to1"], "1:N", one_to_n)
    print("rerank", summary["rerank"])


if __name__ == "__main__":
    main()
