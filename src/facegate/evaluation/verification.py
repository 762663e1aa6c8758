"""1:1 verification metrics: ROC, accuracy at a threshold, k-fold accuracy, TAR at FMR.

Pure functions over arrays of scores (higher = more alike) and same/different labels,
returning frozen results. Nothing here knows about images or models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Curve:
    """ROC points: at `thresholds[i]`, share of impostor pairs accepted (`fmr`) and of
    genuine pairs accepted (`tmr`); thresholds descending."""

    thresholds: np.ndarray
    fmr: np.ndarray
    tmr: np.ndarray
    auc: float


def roc(scores: np.ndarray, same: np.ndarray) -> Curve:
    """Every ROC point, as scikit-learn's `roc_curve(..., drop_intermediate=False)` gives them
    (a first point at +inf, then one per distinct score, descending), and the area under
    the curve (ties count half, as `roc_auc_score`). In numpy: importing scikit-learn cost
    `facegate evaluate` seconds of start-up (tests/evaluation check the two agree)."""
    values = np.asarray(scores, dtype=np.float64)
    genuine = np.asarray(same, dtype=bool)
    positives, negatives = int(genuine.sum()), int((~genuine).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("a ROC needs both genuine and impostor pairs")
    order = np.argsort(-values, kind="mergesort")
    ranked, labels = values[order], genuine[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # last pair of each distinct score
    accepted_genuine = np.cumsum(labels)[ends]
    accepted_impostor = ends + 1 - accepted_genuine
    tmr = np.r_[0.0, accepted_genuine / positives]
    fmr = np.r_[0.0, accepted_impostor / negatives]
    thresholds = np.r_[np.inf, ranked[ends]]
    return Curve(thresholds, fmr, tmr, float(np.trapezoid(tmr, fmr)))


def tar_at_fmr(curve: Curve, fmr: float) -> float:
    """Highest true-accept rate whose false-match rate does not exceed `fmr`."""
    ok = curve.fmr <= fmr
    return float(curve.tmr[ok].max()) if ok.any() else 0.0


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs decided right when `score >= threshold` means "same person"."""
    if len(scores) == 0:
        return float("nan")
    return float(np.mean((scores >= threshold) == same.astype(bool)))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold that maximises accuracy on these pairs (midpoint between scores)."""
    order = np.sort(np.unique(scores))
    candidates = np.concatenate([[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]])
    same_b = same.astype(bool)
    # accuracy(t) = (#genuine >= t + #impostor < t) / n, computed for all t at once
    gen = np.sort(scores[same_b])
    imp = np.sort(scores[~same_b])
    accepted_gen = len(gen) - np.searchsorted(gen, candidates, side="left")
    rejected_imp = np.searchsorted(imp, candidates, side="left")
    return float(candidates[int(np.argmax(accepted_gen + rejected_imp))])


@dataclass(frozen=True, slots=True)
class KFold:
    """Accuracy on each fold with the threshold picked on all the other folds."""

    accuracies: tuple[float, ...]
    thresholds: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> KFold:
    """The LFW protocol: for each fold, pick the threshold on the others, score this one."""
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        threshold = best_threshold(scores[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(scores[test], same[test], threshold))
    return KFold(tuple(accuracies), tuple(thresholds))
