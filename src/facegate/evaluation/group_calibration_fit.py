"""Fitting the fairness data of a template space: the score normalization and group curves.

Pure functions over per-image arrays (templates, subjects, labels); the script
`benchmarks/fair_normalization.py` feeds them LFW and writes the shipped files. Choices,
each stated again in docs/fairness.md:

* Cluster offsets (`fit_normalization`): k-means (scikit-learn, fixed seed) on the fitting
  templates; a cluster's threshold at the target FMR is read from every impostor pair of
  two of its templates, the global one from up to `n_global` uniformly drawn impostor
  pairs of the whole set. A cluster with fewer than `min_cluster_size` templates keeps
  offset 0 (too few pairs to estimate its tail).
* Group curves (`group_curve`): every within-group impostor pair, or a uniform sample of
  `max_pairs` when there are more; an upper bound per grid point from a subject bootstrap
  (a replicate redraws the group's subjects, a pair counts as the product of its two
  subjects' draw counts, as in the demographic audit); the bound never goes below the
  zero-event bound on the distinct subject pairs seen, which is the lowest rate the group
  can be vouched for at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from sklearn.cluster import KMeans

from facegate.evaluation.demographics import _pair_weight, subject_weights, zero_event_bound
from facegate.evaluation.pair_sampling import mated_pairs, nonmated_pairs
from facegate.vision.calibration import similarity
from facegate.vision.group_calibration import GroupCalibration, GroupCurve
from facegate.vision.score_normalization import FairNormalization, Scorer


def threshold_at(scores: np.ndarray, fmr: float) -> float:
    """The similarity reached by the ceil(fmr * n) highest impostor scores."""
    k = max(1, math.ceil(fmr * len(scores)))
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def impostor_scores(
    templates: np.ndarray, subject_of: np.ndarray, images: np.ndarray, n: int, rng: np.random.Generator,
    scorer: Scorer | None = None, offsets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to `n` impostor pairs among `images` (image indices a, b) and their scores."""
    a, b = nonmated_pairs(images, subject_of[images], n, rng)
    return a, b, pair_scores(templates, a, b, scorer, offsets)


def pair_scores(
    templates: np.ndarray, a: np.ndarray, b: np.ndarray, scorer: Scorer | None = None,
    offsets: np.ndarray | None = None, chunk: int = 200_000,
) -> np.ndarray:
    """Scores of image pairs (a[i], b[i]) in chunks (millions of pairs, little memory)."""
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), chunk):
        ia, ib = a[start:start + chunk], b[start:start + chunk]
        if scorer is None:
            out[start:start + chunk] = similarity(templates[ia], templates[ib])
        else:
            oa = None if offsets is None else offsets[ia]
            ob = None if offsets is None else offsets[ib]
            out[start:start + chunk] = scorer.pairs(templates[ia], templates[ib], oa, ob)
    return out


def fit_normalization(
    templates: np.ndarray, subject_of: np.ndarray, template_id: str, *, k: int, min_cluster_size: int,
    target_fmr: float = 1e-3, seed: int = 2020, n_global: int = 1_000_000, source: str = "",
) -> FairNormalization:
    """Cluster offsets at `target_fmr` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(templates.astype(np.float64))
    clusters = km.labels_
    everyone = np.arange(len(templates))
    _, _, scores = impostor_scores(templates, subject_of, everyone, n_global, rng)
    global_threshold = threshold_at(scores, target_fmr)
    offsets = np.zeros(k)
    sizes = np.bincount(clusters, minlength=k)
    for c in range(k):
        members = np.flatnonzero(clusters == c)
        if len(members) < min_cluster_size:
            continue
        _, _, within = impostor_scores(templates, subject_of, members, n_global, rng)
        if len(within) * target_fmr >= 1:  # at least one pair at the target rate
            offsets[c] = threshold_at(within, target_fmr) - global_threshold
    return FairNormalization(template_id, km.cluster_centers_.astype(np.float32), offsets, sizes,
                             target_fmr, min_cluster_size, source)


def group_curve(
    group: str, scores: np.ndarray, a: np.ndarray, b: np.ndarray, n_images: int, *,
    confidence: float = 0.95, n_boot: int = 200, max_fmr: float = 0.3, rng: np.random.Generator,
) -> GroupCurve:
    """Point and subject-bootstrap upper FMR on a log grid; `a`, `b` are subject indices."""
    names, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = len(names)
    sa, sb = inverse[: len(a)], inverse[len(a):]
    n = len(scores)
    distinct = len(np.unique(np.minimum(sa, sb) * k + np.maximum(sa, sb)))
    floor = zero_event_bound(distinct, confidence)
    order = np.argsort(-scores, kind="stable")
    top = min(n, math.ceil(max_fmr * n))
    counts = np.unique(np.round(np.logspace(math.log10(top), 0, 60)).astype(np.int64))  # hits at grid points
    weights = subject_weights(k, n_boot, rng)
    den = _pair_weight(weights, sa, sb)
    cumulative = np.zeros(n_boot)
    upper_at: dict[int, float] = {}
    step = 10_000
    for start in range(0, int(counts.max()), step):
        idx = order[start:start + step]
        products = weights[:, sa[idx]] * weights[:, sb[idx]]
        running = cumulative[:, None] + np.cumsum(products, axis=1)
        for c in counts[(counts > start) & (counts <= start + len(idx))]:
            ratio = running[:, c - start - 1] / np.maximum(den, 1e-12)
            upper_at[int(c)] = float(np.quantile(ratio, confidence))
        cumulative = running[:, -1]
    sims, point, upper = [], [], []
    for c in counts[::-1]:  # fewest hits first = highest similarity first
        sims.append(float(scores[order[c - 1]]))
        point.append(c / n)
        upper.append(max(upper_at[int(c)], floor))
    sims.append(float(scores[order[0]]) + 1e-4)  # above every impostor: no false match seen
    point.append(0.0)
    upper.append(floor)
    s = np.array(sims)  # descending similarity, as built
    asc = np.argsort(s, kind="stable")
    up = np.array(upper)[asc]
    up = np.maximum.accumulate(up[::-1])[::-1]  # non-increasing in similarity, conservatively
    return GroupCurve(group, k, n_images, n, s[asc], np.array(point)[asc], up, floor)


def with_mated(curve: GroupCurve, mated: np.ndarray) -> GroupCurve:
    """The curve with its group's mated scores summarised as 201 quantiles (for FNMR)."""
    if len(mated) == 0:
        return curve
    quantiles = np.quantile(mated, np.linspace(0.0, 1.0, 201))
    return replace(curve, n_mated=len(mated), mated_quantiles=quantiles)


def fit_group_calibration(
    templates: np.ndarray, subject_of: np.ndarray, labels: Mapping[str, np.ndarray], scorer: Scorer, *,
    dataset: str, label_source: str, source: str, confidence: float = 0.95, max_pairs: int = 2_000_000,
    min_subjects: int = 10, seed: int = 8280, columns: Sequence[str] | None = None,
) -> GroupCalibration:
    """One curve per labelled group of each column (`labels`: per-image, "" unlabelled)."""
    rng = np.random.default_rng(seed)
    offsets = scorer.offsets(templates)
    ma, mb = mated_pairs(subject_of, 200, rng)
    mated = pair_scores(templates, ma, mb, scorer, offsets)
    curves = []
    for column in columns or list(labels):
        values = labels[column]
        for value in sorted({v for v in values if v}):
            images = np.flatnonzero(values == value)
            if len(np.unique(subject_of[images])) < min_subjects:
                continue
            a, b, scores = impostor_scores(templates, subject_of, images, max_pairs, rng, scorer, offsets)
            name = f"{column.removeprefix('subject_')}={value}"
            curve = group_curve(name, scores, subject_of[a], subject_of[b], len(images),
                                confidence=confidence, rng=rng)
            curves.append(with_mated(curve, mated[np.isin(subject_of[ma], subject_of[images])]))
    return GroupCalibration(scorer.score_id, dataset, label_source, confidence, tuple(curves), source)
