"""Write `benchmarks/out/lfw_raw.npz`: raw dlib descriptors of the LFW photos of pairs.txt.

    .venv/bin/python benchmarks/lfw_raw.py --lfw ../shared/data/lfw   # 80 s on 2 cores

The file the synthetic-template generator (`synth_templates.py`) is fitted on, and so
the input of `search_bench.py` and `pg_bench.py`. Per photo (the 6,152 photos named in
pairs.txt, the set the earlier runs used): the default pipeline's central face, its
aligned chip and that chip's mirror image each embedded on their own, unnormalised, as
`raw[i, 0]` and `raw[i, 1]` (so the facegate template is `normalise(raw[i, 0] + raw[i, 1])`);
`names[i]` is the photo's path under the LFW folder. A photo without a face gets NaN rows
(the generator leaves those out; none were missing in the recorded runs' default pipeline).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from facegate.evaluation.lfw_pairs import read_pairs
from facegate.vision import Pipeline, PipelineConfig
from facegate.vision.image import load_image

OUT = Path(__file__).resolve().parent / "out" / "lfw_raw.npz"


def raw_descriptors(pipeline: Pipeline, path: Path) -> np.ndarray:
    """(2, d): the chip's and the mirrored chip's descriptors of the central face, or NaN."""
    image = load_image(path, pipeline.config.limits)
    prepared = pipeline.prepare(image, max_faces=1, central=True)
    if len(prepared.chips) == 0:
        return np.full((2, pipeline.embedder.dimension), np.nan, np.float32)
    chips = prepared.chips[:1]
    return pipeline.embedder.embed_chips(np.concatenate([chips, chips[:, :, ::-1]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=Path, required=True, help="the LFW folder (with pairs.txt)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    names = read_pairs(args.lfw / "pairs.txt").images
    pipeline = Pipeline(PipelineConfig())
    raw = np.empty((len(names), 2, pipeline.embedder.dimension), np.float32)
    start = time.perf_counter()
    for i, name in enumerate(names):
        raw[i] = raw_descriptors(pipeline, args.lfw / name)
        if i % 500 == 0:
            print(f"{i}/{len(names)} photos, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, raw=raw, names=np.array(names))
    missing = int((~np.isfinite(raw).all(axis=(1, 2))).sum())
    print(f"{len(names)} photos, {missing} without a face, {time.perf_counter() - start:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
