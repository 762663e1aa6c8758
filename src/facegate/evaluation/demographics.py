"""Verification error rates by demographic group: FMR and FNMR, intervals, differentials.

Pure functions: per-image arrays in, frozen results out; no files, no models (detection
failures by group are in `detection_failures`, on the same `AuditInput`). The method
follows NIST FRVT Part 3 (NISTIR 8280), and every choice below is also written into the
report's limits, because a reader cannot judge a differential without them:

* A subject's group is the majority of its images' labels (a tie leaves it unlabelled).
* Mated pairs: every pair of usable images of a subject, at most `max_mated_per_subject`
  (a random subset beyond, or one heavily photographed person outweighs hundreds).
* Non-mated pairs, for each group of each grouping level: `n_nonmated` pairs of images
  of two different subjects of that group (demographically matched impostors), drawn
  uniformly without replacement, all of them when fewer exist; at the finest level also
  `n_cross` pairs for every two groups. A seeded generator makes runs repeatable, and
  the draws do not depend on the threshold, so re-runs at other thresholds compare.
* Intervals: percentile bootstrap resampling subjects, not pairs (pairs sharing a person
  are not independent): a replicate weights a mated pair by its subject's draw count and
  a non-mated pair by the product of its two subjects' counts. With no error in n pairs
  the upper end is the zero-event bound -ln(1 - confidence)/n (the rule of three, 3/n).
* Differentials: max/min ratio and max-min difference over a level's groups that are not
  small (< `min_subjects` subjects or < `min_mated` mated pairs); a zero rate enters the
  ratio at its zero-event bound and is flagged, so such a ratio errs low.

fairlearn's `MetricFrame` computes the detection rates (rows are images, its natural
shape). It is not used here: its rows would be pairs drawn separately per group and
level, it takes seconds per level at 10^5 pairs (3 s for 250k rows on this machine),
which breaks the seconds-long re-run, and its bootstrap resamples rows, not subjects.
numpy counts instead; the tests hold both to the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import sparse

from facegate.evaluation.pair_sampling import cross_pairs, mated_pairs, nonmated_pairs
from facegate.vision.calibration import similarity
from facegate.vision.score_normalization import normalize

USABLE, NO_FACE, LOW_QUALITY, UNREADABLE = "", "no_face", "low_quality", "unreadable"

Group = tuple[tuple[str, str], ...]  # ((column, value), ...); () is everyone


@dataclass(frozen=True, slots=True)
class AuditInput:
    """One entry per image: who it shows, its labels, its template and what went wrong."""

    subjects: np.ndarray  # str; "" = identity unknown
    labels: Mapping[str, np.ndarray]  # column -> str per image; "" = unlabelled
    templates: np.ndarray = field(repr=False)  # (N, D) unit float32
    failure: np.ndarray  # str: USABLE, NO_FACE, LOW_QUALITY or UNREADABLE
    # fair score normalization offset per image (Scorer.offsets); None: raw similarity
    offsets: np.ndarray | None = field(default=None, repr=False)


def _scorer(templates: np.ndarray, offsets: np.ndarray | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Scores of image pairs (a, b) exactly as the product reports them (normalized when on)."""
    shifts = np.zeros(len(templates)) if offsets is None else offsets

    def score(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return normalize(similarity(templates[a], templates[b]), shifts[a], shifts[b])

    return score


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The operating threshold (similarity 0..100) and every sampling and size rule."""

    threshold: float
    seed: int = 8280
    n_nonmated: int = 50_000
    n_cross: int = 5_000
    max_mated_per_subject: int = 200
    n_boot: int = 1000
    confidence: float = 0.95
    min_subjects: int = 10
    min_mated: int = 30
    min_images: int = 30


@dataclass(frozen=True, slots=True)
class GroupRates:
    group: Group
    n_subjects: int
    n_images: int
    n_mated: int
    n_nonmated: int
    false_non_matches: int
    false_matches: int
    fmr: float | None
    fmr_ci: tuple[float, float] | None
    fnmr: float | None
    fnmr_ci: tuple[float, float] | None
    small: bool


@dataclass(frozen=True, slots=True)
class Spread:
    """Max/min ratio and max-min difference of one rate over the compared groups."""

    ratio: float | None
    difference: float | None
    highest: Group | None
    lowest: Group | None
    floored: tuple[Group, ...]  # zero rates that entered the ratio at their zero-event bound


@dataclass(frozen=True, slots=True)
class Differentials:
    level: tuple[str, ...]
    fmr: Spread
    fnmr: Spread
    compared: tuple[Group, ...]
    excluded_small: tuple[Group, ...]


@dataclass(frozen=True, slots=True)
class CrossRate:
    """FMR of impostor pairs whose two subjects are in two different groups (no interval)."""

    groups: tuple[Group, Group]
    n_pairs: int
    false_matches: int
    fmr: float
    fmr_upper: float  # zero-event bound when there was no false match, else the rate


@dataclass(frozen=True, slots=True)
class GroupScores:
    """Similarity scores of a group's pairs, for DET curves."""

    group: Group
    mated: np.ndarray = field(repr=False)
    nonmated: np.ndarray = field(repr=False)


@dataclass(frozen=True, slots=True)
class Verification:
    threshold: float
    overall: GroupRates
    groups: tuple[GroupRates, ...]  # every level, marginals first, the intersection last
    differentials: tuple[Differentials, ...]  # one per level; the last is the finest
    cross: tuple[CrossRate, ...]
    scores: tuple[GroupScores, ...]  # everyone, then each group of the finest level
    unlabelled_subjects: Mapping[str, int]  # per level name, subjects left out
    mixed_label_subjects: Mapping[str, int]  # per column, subjects whose images disagree


def levels(columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Every grouping: each column alone, then each combination up to all of them."""
    return [lv for k in range(1, len(columns) + 1) for lv in combinations(columns, k)]


def level_name(level: Sequence[str]) -> str:
    return " x ".join(level) or "everyone"


def verify(data: AuditInput, columns: Sequence[str], settings: AuditSettings) -> Verification | None:
    """FMR and FNMR per group and intersection at the threshold; None without identities."""
    images = np.flatnonzero((data.failure == USABLE) & (data.subjects != ""))
    if len(images) == 0:
        return None
    names, subject_of = np.unique(data.subjects[images], return_inverse=True)
    rng = np.random.default_rng(settings.seed)
    labels, mixed = {}, {}
    for c in columns:
        labels[c], mixed[c] = _majority(subject_of, data.labels[c][images], len(names))
    score = _scorer(data.templates[images], None if data.offsets is None else data.offsets[images])
    ma, mb = mated_pairs(subject_of, settings.max_mated_per_subject, rng)
    mated = _Pairs(subject_of[ma], subject_of[ma], score(ma, mb))
    finest = tuple(columns)
    rates: list[GroupRates] = []
    diffs, scores, finest_images, unlabelled = [], [], [], {}
    for level in [(), *levels(columns)]:
        keys = [tuple(labels[c][s] for c in level) for s in range(len(names))]
        unlabelled[level_name(level)] = sum("" in k for k in keys)
        level_rates = []
        for key in sorted({k for k in keys if "" not in k}):
            members = np.array([k == key for k in keys])
            group = tuple(zip(level, key))
            group_images = np.flatnonzero(members[subject_of])
            na, nb = nonmated_pairs(group_images, subject_of[group_images], settings.n_nonmated, rng)
            nonmated = _Pairs(subject_of[na], subject_of[nb], score(na, nb))
            level_rates.append(_rates(group, members, len(group_images), mated, nonmated, settings, rng))
            if level in ((), finest):
                scores.append(GroupScores(group, mated.score[members[mated.a]], nonmated.score))
            if level == finest:
                finest_images.append((group, group_images))
        rates.extend(level_rates)
        if level:
            diffs.append(differentials(level, level_rates, settings.confidence))
    cross = [_cross(a, b, score, settings, rng) for a, b in combinations(finest_images, 2)]
    return Verification(settings.threshold, rates[0], tuple(rates[1:]), tuple(diffs), tuple(cross),
                        tuple(scores), unlabelled, mixed)


def differentials(
    level: tuple[str, ...], rates: Sequence[GroupRates], confidence: float = 0.95
) -> Differentials:
    """Spread of FMR and FNMR over the level's groups that are not small."""
    compared = [r for r in rates if not r.small]
    fmr = _spread([(r.group, r.fmr, r.false_matches, r.n_nonmated) for r in compared], confidence)
    fnmr = _spread([(r.group, r.fnmr, r.false_non_matches, r.n_mated) for r in compared], confidence)
    excluded = tuple(r.group for r in rates if r.small)
    return Differentials(level, fmr, fnmr, tuple(r.group for r in compared), excluded)


def subject_weights(k: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, k) draw counts: each replicate draws k subjects with replacement."""
    draws = rng.integers(0, k, size=(n_boot, k)) + (np.arange(n_boot) * k)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * k).reshape(n_boot, k).astype(np.float64)


def rate_interval(
    num: np.ndarray, den: np.ndarray, errors: int, n: int, confidence: float
) -> tuple[float | None, tuple[float, float] | None]:
    """Point rate and interval; (None, None) when there is nothing to count."""
    if n == 0:
        return None, None
    return errors / n, bootstrap_interval(num, den, errors, n, confidence)


def bootstrap_interval(
    num: np.ndarray, den: np.ndarray, errors: int, n: int, confidence: float
) -> tuple[float, float]:
    """Percentile interval of num/den over replicates; the zero-event bound without errors."""
    if errors == 0:
        return 0.0, zero_event_bound(n, confidence)
    ok = den > 0
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(num[ok] / den[ok], [tail, 1.0 - tail])
    return float(lo), float(hi)


def zero_event_bound(n: int, confidence: float) -> float:
    """Upper confidence bound of a rate with no event in n trials (3/n at 95%)."""
    return float(-np.log(1.0 - confidence) / n)


@dataclass(frozen=True, slots=True)
class _Pairs:
    """Scored pairs by the subjects at both ends (for mated pairs, `a` is `b`)."""

    a: np.ndarray
    b: np.ndarray
    score: np.ndarray


def _majority(subject_of: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Each subject's most frequent non-empty label ("" on a tie), and how many disagree."""
    tallies: list[dict[str, int]] = [{} for _ in range(n)]
    for s, v in zip(subject_of, values):
        if v:
            tallies[s][v] = tallies[s].get(v, 0) + 1
    out = np.full(n, "", dtype=object)
    for s, tally in enumerate(tallies):
        ranked = sorted(tally.items(), key=lambda item: -item[1])
        if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
            out[s] = ranked[0][0]
    return out, sum(len(t) > 1 for t in tallies)


def _rates(
    group: Group, members: np.ndarray, n_images: int, mated: _Pairs, nonmated: _Pairs,
    settings: AuditSettings, rng: np.random.Generator,
) -> GroupRates:
    """Point rates and subject-bootstrap intervals for one group (`members`: per subject)."""
    k = int(members.sum())
    local = np.cumsum(members) - 1  # subject index -> index within the group
    weights = subject_weights(k, settings.n_boot, rng)
    own = members[mated.a]
    subject, misses = local[mated.a[own]], mated.score[own] < settings.threshold
    fnmr, fnmr_ci = rate_interval(
        weights @ np.bincount(subject, weights=misses, minlength=k),
        weights @ np.bincount(subject, minlength=k),
        int(misses.sum()), len(misses), settings.confidence,
    )
    a, b, hits = local[nonmated.a], local[nonmated.b], nonmated.score >= settings.threshold
    fmr, fmr_ci = rate_interval(
        _pair_weight(weights, a[hits], b[hits]), _pair_weight(weights, a, b),
        int(hits.sum()), len(hits), settings.confidence,
    )
    small = k < settings.min_subjects or len(misses) < settings.min_mated
    return GroupRates(group, k, n_images, len(misses), len(hits), int(misses.sum()), int(hits.sum()),
                      fmr, fmr_ci, fnmr, fnmr_ci, small)


def _pair_weight(weights: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per replicate, the sum over pairs of the product of both subjects' draw counts."""
    k = weights.shape[1]
    if len(a) == 0:
        return np.zeros(len(weights))
    pairs = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(k, k))
    return np.einsum("bk,kb->b", weights, pairs @ weights.T)


def _spread(items: list[tuple[Group, float | None, int, int]], confidence: float) -> Spread:
    """(group, rate, errors, pairs) of the compared groups -> ratio and difference."""
    measured = [(g, rate, errors, n) for g, rate, errors, n in items if rate is not None]
    if len(measured) < 2:
        return Spread(None, None, None, None, ())
    floored = tuple(g for g, _, errors, _ in measured if errors == 0)
    value = {g: rate if errors else zero_event_bound(n, confidence) for g, rate, errors, n in measured}
    high = max(value, key=value.__getitem__)
    low = min(value, key=value.__getitem__)
    rates = [rate for _, rate, _, _ in measured]
    return Spread(value[high] / value[low], max(rates) - min(rates), high, low, floored)


def _cross(
    ga: tuple[Group, np.ndarray], gb: tuple[Group, np.ndarray], score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    settings: AuditSettings, rng: np.random.Generator,
) -> CrossRate:
    a, b = cross_pairs(ga[1], gb[1], settings.n_cross, rng)
    hits = int((score(a, b) >= settings.threshold).sum())
    n = len(a)
    fmr = hits / n if n else 0.0
    upper = fmr if hits or not n else zero_event_bound(n, settings.confidence)
    return CrossRate((ga[0], gb[0]), n, hits, fmr, upper)
