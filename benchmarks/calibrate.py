"""Build the calibration table (similarity -> estimated false-match rate) of a template space.

    .venv/bin/python benchmarks/calibrate.py --lfw ../shared/data/lfw \
        --out src/facegate/vision/calibration/dlib-resnet-v1_flip.json

Method: one template per LFW photo of the shared pairs folds (the 6,152 photos named in
pairs.txt; `--all` takes every photo of the manifest instead), central face, photos where
no face is found left out, not guessed. Every pair of photos of *different* people is an
impostor pair (about 18.9 million), and the table records, on a
log-spaced grid of FMR from 1 down to 1/(number of impostor pairs), the similarity that
this share of impostor pairs reaches. Genuine pairs (same person) are counted to report
the true-match rate at each point. Deterministic: no sampling.

`--score fair` measures the fair-normalized scores instead (the shipped normalization of
the template space, see benchmarks/fair_normalization.py), for the score space
`<template id>+fsn`:

    .venv/bin/python benchmarks/calibrate.py --lfw ../shared/data/lfw --score fair \
        --folds 3,4,5,6,7,8 --out src/facegate/vision/calibration/dlib-resnet-v1_flip_fsn.json

(`--folds` keeps the manifest photos of those pairs folds: here, those the normalization
was not fitted on.)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from facegate.evaluation.lfw_pairs import read_pairs
from facegate.evaluation.templates import image_templates
from facegate.vision import Pipeline, PipelineConfig
from facegate.vision.calibration import Calibration, calibration_file_name
from facegate.vision.score_normalization import Scorer, scorer_for

DEFAULT_FMR = 1e-3  # the default operating point of `compare` and of searches without a purpose


def impostor_and_genuine(
    templates: np.ndarray, subjects: np.ndarray, scorer: Scorer
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of all pairs i<j, split by same/different subject (chunked, exact)."""
    impostor, genuine = [], []
    n = len(templates)
    offsets = scorer.offsets(templates)
    for start in range(0, n, 1024):
        block = scorer.matrix(templates[start:start + 1024], templates, offsets[start:start + 1024], offsets)
        block = block.astype(np.float32)
        for row, i in enumerate(range(start, min(start + 1024, n))):
            scores = block[row, i + 1:]
            same = subjects[i + 1:] == subjects[i]
            impostor.append(scores[~same])
            genuine.append(scores[same])
    return np.concatenate(impostor), np.concatenate(genuine)


def table(impostor: np.ndarray, genuine: np.ndarray, template_id: str, source: str) -> tuple[Calibration, list]:
    imp = np.sort(impostor)
    gen = np.sort(genuine)
    n = len(imp)
    fmr_grid = np.unique(np.concatenate([np.logspace(0, -np.log10(n), 121), [1.0 / n]]))[::-1]
    sims, fmrs, rows = [0.0], [1.0], []
    for fmr in fmr_grid:
        k = max(1, int(round(fmr * n)))  # the k highest impostor scores are at or above s
        s = float(imp[n - k])
        if s <= sims[-1]:
            continue
        sims.append(s)
        fmrs.append(k / n)
        tmr = float(len(gen) - np.searchsorted(gen, s, side="left")) / len(gen)
        rows.append((s, k / n, tmr))
    cal = Calibration(template_id, np.array(sims), np.array(fmrs), n, DEFAULT_FMR, source)
    return cal, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runtime", default="onnx")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/template-cache"),
                        help="template cache (shared with the other evaluation runs)")
    parser.add_argument("--all", action="store_true", help="every manifest photo, not only pairs.txt's")
    parser.add_argument("--score", choices=("raw", "fair"), default="raw", help="raw or fair-normalized scores")
    parser.add_argument("--folds", default=None, help="only photos of these pairs folds (manifest pairs_fold)")
    args = parser.parse_args()
    with (args.lfw / "manifest.csv").open() as f:
        rows = list(csv.DictReader(f))
    if not args.all:
        wanted = set(read_pairs(args.lfw / "pairs.txt").images)
        rows = [r for r in rows if r["path"] in wanted]
    if args.folds:
        keep = set(args.folds.split(","))
        rows = [r for r in rows if r["pairs_fold"] in keep]
    names = [r["path"] for r in rows]
    config = PipelineConfig(runtime=args.runtime)
    pipeline = Pipeline(config)
    found = image_templates(names, args.lfw, pipeline, args.cache, args.workers, no_face="reject")
    kept = [r for r in rows if r["path"] in found.templates]
    templates = np.stack([found.templates[r["path"]] for r in kept])
    subjects = np.array([r["subject"] for r in kept])
    scorer = scorer_for(pipeline.template_id, args.score)
    impostor, genuine = impostor_and_genuine(templates, subjects, scorer)
    source = (
        f"{'fair-normalized scores, ' if scorer.normalized else ''}"
        f"LFW deep-funneled, {'all photos' if args.all else 'images of pairs.txt folds 1-8'}"
        f"{f' in folds {args.folds}' if args.folds else ''} "
        f"({len(kept)} photos with a face of {len(rows)}; "
        f"{len(impostor)} impostor and {len(genuine)} genuine pairs), benchmarks/calibrate.py"
    )
    cal, points = table(impostor, genuine, scorer.score_id, source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(cal.to_dict(), indent=1) + "\n")
    expected = calibration_file_name(scorer.score_id)
    if args.out.name != expected:
        print(f"warning: the engine looks for {expected}", file=sys.stderr)
    print("| similarity | FMR | TMR |\n|---|---|---|")
    for s, fmr, tmr in points[:: max(1, len(points) // 12)]:
        print(f"| {s:.2f} | {fmr:.2e} | {tmr:.4f} |")
    print(f"default threshold {cal.default_threshold:.2f} at FMR {DEFAULT_FMR:g}; "
          f"no face in {len(found.no_face)} photos; {source}")


if __name__ == "__main__":
    main()
