"""Property-based tests: random tables of every kind through both estimators (hypothesis).

Each example is a pandas table of 1-60 rows and 1-30 columns mixing float, int, bool, nullable,
categorical (ordered and unordered), string and datetime columns, with NaN patterns, constant
and duplicate columns, sometimes sample weights, and 2-15 classes or targets of any finite
range. Both estimators must either fit and predict finite outputs (probabilities in [0, 1]
summing to 1, predicted classes among ``classes_``) or raise one of the documented errors, and
never change the caller's objects. The tiny random-weight checkpoints keep an example at a few
tens of milliseconds; ``max_examples`` bounds the whole module to well under a minute.
"""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mitra_sklearn import MitraClassifier, MitraRegressor  # noqa: E402

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Errors the estimators document for bad input (README, "Robustness"); anything else is a bug.
DOCUMENTED_ERRORS = [
    (ValueError, r"needs at least 2 classes"),
    (ValueError, r"sample_weight is zero for every row|at least one non-zero"),
]

KINDS = ["float", "int", "bool", "nullable_int", "nullable_bool", "category", "ordered", "string", "datetime",
         "constant", "duplicate"]


def _column(kind: str, rng: np.random.RandomState, n: int, missing: float, previous: pd.Series | None) -> pd.Series:
    holes = rng.rand(n) < missing
    if kind == "float":
        scale = 10.0 ** rng.randint(-30, 30)
        values = pd.Series(rng.randn(n) * scale)
    elif kind == "int":
        values = pd.Series(rng.randint(-5, 5, n)).astype(float if holes.any() else np.int64)
    elif kind == "bool":
        values = pd.Series(rng.rand(n) > 0.5, dtype=object if holes.any() else bool)
    elif kind == "nullable_int":
        values = pd.Series(pd.array(rng.randint(0, 4, n), dtype="Int64"))
    elif kind == "nullable_bool":
        values = pd.Series(pd.array(rng.rand(n) > 0.5, dtype="boolean"))
    elif kind in ("category", "ordered"):
        levels = [f"l{k}" for k in range(rng.randint(1, 8))]
        values = pd.Series(pd.Categorical(rng.choice(levels, n), categories=rng.permutation(levels),
                                          ordered=kind == "ordered"))
    elif kind == "string":
        values = pd.Series(rng.choice(["a", "b", "cc", "d d", ""], n).astype(object))
    elif kind == "datetime":
        stamps = pd.Timestamp("2000-01-01") + pd.to_timedelta(rng.randint(0, 10_000, n), unit="D")
        values = pd.Series(stamps)
        if rng.rand() < 0.5:
            values = values.dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    elif kind == "constant":
        values = pd.Series(np.full(n, 3.5))
    else:  # duplicate of the previous column
        return previous.copy() if previous is not None else pd.Series(np.zeros(n))
    if holes.any():
        values = values.copy()
        values[holes] = None
    return values


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, np.random.RandomState]:
    n_rows = draw(st.integers(1, 60))
    n_columns = draw(st.integers(1, 30))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=n_columns, max_size=n_columns))
    missing = draw(st.lists(st.sampled_from([0.0, 0.0, 0.2, 1.0]), min_size=n_columns, max_size=n_columns))
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    columns: dict[str, pd.Series] = {}
    previous = None
    for j, (kind, share) in enumerate(zip(kinds, missing)):
        previous = _column(kind, rng, n_rows, share, previous).reset_index(drop=True)
        columns[f"{kind}_{j}"] = previous
    return pd.DataFrame(columns), rng


def _weights(draw: st.DrawFn, rng: np.random.RandomState, n: int) -> np.ndarray | None:
    kind = draw(st.sampled_from(["none", "none", "integers", "positive"]))
    if kind == "none":
        return None
    if kind == "integers":
        return rng.randint(0, 4, n).astype(float)
    return rng.rand(n) + 1e-3


def _fit_or_documented_error(estimator, X, y, weights):
    """The fitted estimator, or None when it raised one of the documented errors."""
    before = (X.copy(deep=True), copy.deepcopy(y), None if weights is None else weights.copy())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # outliers, wide tables, unseen categories
            return estimator.fit(X, y) if weights is None else estimator.fit(X, y, sample_weight=weights)
    except (ValueError, TypeError) as err:
        if not any(isinstance(err, kind) and re.search(pattern, str(err)) for kind, pattern in DOCUMENTED_ERRORS):
            raise
        return None
    finally:
        pd.testing.assert_frame_equal(X, before[0])
        np.testing.assert_array_equal(y, before[1])
        if weights is not None:
            np.testing.assert_array_equal(weights, before[2])


@SETTINGS
@given(table=tables(), n_classes=st.integers(2, 15), string_labels=st.booleans(), data=st.data())
def test_classifier_on_random_tables(tiny_classifier_checkpoint, table, n_classes, string_labels, data):
    X, rng = table
    y = rng.randint(0, n_classes, len(X))
    if string_labels:
        y = np.array([f"class {k}" for k in y], dtype=object)
    weights = _weights(data.draw, rng, len(X))
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=2, random_state=0)
    fitted = _fit_or_documented_error(clf, X, y, weights)
    if fitted is None:
        return
    before = X.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        proba = fitted.predict_proba(X)
        labels = fitted.predict(X)
    pd.testing.assert_frame_equal(X, before)
    assert proba.shape == (len(X), len(fitted.classes_))
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert set(labels.tolist()) <= set(fitted.classes_.tolist())


@SETTINGS
@given(table=tables(), scale=st.sampled_from([1e-300, 1e-6, 1.0, 1e6, 1e300]),
       extremes=st.sampled_from([0, 1, 2]), data=st.data())
def test_regressor_on_random_tables(tiny_regressor_checkpoint, table, scale, extremes, data):
    X, rng = table
    y = rng.randn(len(X)) * scale
    y[: min(extremes, len(y))] = [1.7e308, -1.7e308][: min(extremes, len(y))]
    weights = _weights(data.draw, rng, len(X))
    reg = MitraRegressor(tiny_regressor_checkpoint, n_estimators=2, random_state=0)
    fitted = _fit_or_documented_error(reg, X, y, weights)
    if fitted is None:
        return
    before = X.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mean, std = fitted.predict(X, return_std=True)
    pd.testing.assert_frame_equal(X, before)
    assert mean.shape == std.shape == (len(X),)
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()
