"""scikit-learn's own estimator checks on both estimators, with the checkpoints shipped in the package.

The checks run in float64 (``inference_precision="float64"``), as TabPFN's suite does: the
subset- and order-invariance checks compare predictions to 1e-7, below float32 rounding of
matrix products whose shapes differ. ``test_float32_subset_invariance`` covers float32.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn.checkpoint import default_checkpoint, shipped_checkpoints

from .conftest import make_tiny_checkpoint

# The check shuffles the weighted rows against the repeated ones, and the model's in-context
# normalisation sums support statistics in float32 (model code shared with the official
# implementation): the same support rows in another order differ by ~1e-7, just above the
# check's rtol. test_robustness.py::test_integer_weights_are_repeated_rows checks the
# equivalence itself (same support multiset, equal predictions in the same row order).
_WEIGHT_ORDER = ("the same support rows in another order differ by ~1e-7 (float32 support statistics "
                 "inside the model); equivalence is tested in test_robustness.py")
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _WEIGHT_ORDER,
    "check_sample_weight_equivalence_on_sparse_data": _WEIGHT_ORDER,
}


# No checkpoint argument: the shipped checkpoints, so that the accuracy checks
# (check_classifiers_train, check_regressors_train) run against trained weights.
@parametrize_with_checks(
    [
        MitraClassifier(n_estimators=2, inference_precision="float64", random_state=0),
        MitraRegressor(n_estimators=2, inference_precision="float64", random_state=0),
        # Members from two checkpoints (a list): the same contract.
        MitraClassifier(["mitra-small-classifier", "mitra-small-classifier-v2"], n_estimators=2,
                        inference_precision="float64", random_state=0),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_checks_use_the_shipped_checkpoints():
    assert {default_checkpoint("classification"), default_checkpoint("regression")} <= set(shipped_checkpoints())


def test_float32_subset_invariance(tmp_path):
    checkpoint = str(make_tiny_checkpoint(tmp_path / "cls", "CLASSIFICATION"))
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 5), rng.randint(0, 3, 60)
    clf = MitraClassifier(checkpoint, n_estimators=2, random_state=0, batch_size=7,
                          inference_precision="float32").fit(X, y)
    full = clf.predict_proba(X)
    for rows in (slice(0, 10), slice(13, 14), slice(30, 60)):
        np.testing.assert_allclose(clf.predict_proba(X[rows]), full[rows], rtol=1e-5, atol=1e-6)
