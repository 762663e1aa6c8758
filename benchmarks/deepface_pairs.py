"""facegate on DeepFace's own verification pairs (`peers/deepface/master.csv`).

    .venv/bin/python benchmarks/deepface_pairs.py --peers ../shared/data/peers

Each photo's largest face; a pair matches when its similarity reaches the calibrated
default threshold (estimated FMR 1e-3). Photos without a face make their pairs count as
"no match". Compare with DeepFace's README table, which measured its Dlib model (the same
network) at 96.8% on LFW (declared 99.3%).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from facegate.evaluation.templates import image_templates
from facegate.evaluation.verification import accuracy_at
from facegate.vision import Pipeline, PipelineConfig
from facegate.vision.calibration import load_calibration, similarity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/template-cache"))
    args = parser.parse_args()
    root = args.peers / "deepface"
    with (root / "master.csv").open() as handle:
        pairs = [(r["file_x"], r["file_y"], r["Decision"] == "Yes") for r in csv.DictReader(handle)]
    names = sorted({a for a, _, _ in pairs} | {b for _, b, _ in pairs})
    pipeline = Pipeline(PipelineConfig())
    found = image_templates(names, root, pipeline, args.cache, workers=2, no_face="reject")
    calibration = load_calibration(pipeline.template_id)
    scores = np.array([
        float(similarity(found.templates[a], found.templates[b])[0])
        if a in found.templates and b in found.templates else -1.0
        for a, b, _ in pairs
    ])
    same = np.array([s for _, _, s in pairs])
    threshold = calibration.default_threshold
    predicted = scores >= threshold
    print(json.dumps({
        "n_pairs": len(pairs),
        "n_same": int(same.sum()),
        "n_images": len(names),
        "n_no_face": len(found.no_face),
        "threshold": round(threshold, 4),
        "accuracy_at_default_threshold": accuracy_at(scores, same, threshold),
        "false_matches": int((predicted & ~same).sum()),
        "false_non_matches": int((~predicted & same).sum()),
    }, indent=2))


if __name__ == "__main__":
    main()
