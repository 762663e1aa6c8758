"""The ROC of facegate.evaluation.verification, in numpy, gives scikit-learn's points and
area exactly (ties included): it replaced `sklearn.metrics` to spare `facegate evaluate`
seconds of start-up."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from facegate.evaluation.verification import roc


@pytest.mark.parametrize("n", [4, 200, 5000])
def test_roc_agrees_with_scikit_learn(n: int) -> None:
    rng = np.random.default_rng(n)
    same = rng.random(n) < 0.4
    same[:2] = [True, False]
    scores = np.round(rng.normal(size=n) + same, 1)  # rounded: many ties
    fmr, tmr, thresholds = roc_curve(same.astype(int), scores, drop_intermediate=False)
    curve = roc(scores, same)
    assert np.array_equal(curve.fmr, fmr) and np.array_equal(curve.tmr, tmr)
    assert np.array_equal(curve.thresholds, thresholds)
    assert curve.auc == pytest.approx(roc_auc_score(same.astype(int), scores), abs=1e-12)


def test_one_sided_labels_are_refused() -> None:
    with pytest.raises(ValueError):
        roc(np.array([1.0, 2.0]), np.array([True, True]))
