"""Regression tests of issue 12: what a day of real use found (targets, categories, weights, threads, output).

Each test reproduces a wrong or silent behaviour of the code before the fix (or a feature it
lacked) and fails on that code.
"""

from __future__ import annotations

import decimal
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.ensemble import AdaBoostClassifier
from sklearn.model_selection import cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from mitra_sklearn import MitraClassifier, MitraRegressor, devices
from mitra_sklearn.model import MitraModel
from mitra_sklearn.tasks import TargetScaling


@pytest.fixture
def clf(tiny_classifier_checkpoint):
    return MitraClassifier(tiny_classifier_checkpoint, n_estimators=3, random_state=0)


@pytest.fixture
def reg(tiny_regressor_checkpoint):
    return MitraRegressor(tiny_regressor_checkpoint, n_estimators=3, random_state=0)


def _table(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int), X[:, 0] * 10 + 100


# ---------------------------------------------------------------------------- regression targets
def test_one_target_outlier_does_not_squash_the_others():
    """Diabetes, 200 training rows, one target set to 1e6: predictions went negative (MAE ~12,800)."""
    X, y = load_diabetes(return_X_y=True)
    X_train, y_train, X_test, y_test = X[:200], y[:200], X[200:300], y[200:300]
    clean = MitraRegressor(random_state=0).fit(X_train, y_train).predict(X_test)
    outlier = np.where(np.arange(200) == 0, 1e6, y_train)
    with pytest.warns(UserWarning, match="1 outlying target"):
        reg = MitraRegressor(random_state=0).fit(X_train, outlier)
    pred = reg.predict(X_test)
    assert pred.min() >= y.min() - 0.5 * (y.max() - y.min())
    assert np.abs(pred - y_test).mean() < 1.2 * np.abs(clean - y_test).mean()


@pytest.mark.parametrize("draw", [
    lambda rng, n: rng.randn(n),
    lambda rng, n: rng.exponential(size=n),
    lambda rng, n: rng.lognormal(sigma=1.0, size=n),
    lambda rng, n: rng.randint(0, 3, n).astype(float),
])
@pytest.mark.parametrize("n", [2, 30, 500, 8192])
def test_well_behaved_targets_keep_the_official_min_max_scaling(draw, n):
    y = draw(np.random.RandomState(n), n)
    scaling = TargetScaling.fit(y)
    assert (scaling.low, scaling.high, scaling.robust) == (y.min(), y.max(), False)
    np.testing.assert_array_equal(scaling.scale(y), (y - y.min()) / (y.max() - y.min()))


def test_outliers_are_scaled_out_of_the_range_and_clipped():
    y = np.r_[np.linspace(0.0, 1.0, 99), 1e6]
    scaling = TargetScaling.fit(y)
    assert (scaling.low, scaling.high, scaling.n_clipped) == (0.0, 1.0, 1)
    np.testing.assert_allclose(scaling.unscale([-3.0, 0.25, 7.0]), [-0.5, 0.25, 1.5])


def test_extreme_finite_targets_give_finite_predictions_without_runtime_warnings(reg):
    """1e308 and -1e308 in y made every prediction NaN (``high - low`` overflowed)."""
    X, _, y = _table()
    with_extremes = y.copy()
    with_extremes[:2] = 1e308, -1e308
    only_extremes = np.random.RandomState(1).choice([1.7e308, -1.7e308, 5e307], len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(UserWarning, match="outlying"):
            fitted = clone(reg).fit(X, with_extremes)
        pred = fitted.predict(X)
        assert np.isfinite(pred).all() and y.min() - 50 < pred.min() and pred.max() < y.max() + 50
        mean, std = clone(reg).fit(X, only_extremes).predict(X, return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    assert np.abs(mean).max() <= np.finfo(np.float64).max


# ---------------------------------------------------------------------------- categories
def _categorical_frame(categories, ordered=False, n=90, seed=0):
    rng = np.random.RandomState(seed)
    values = rng.choice(list("abcde"), n)
    frame = pd.DataFrame({"x": rng.randn(n), "c": pd.Categorical(values, categories=categories, ordered=ordered)})
    y = ((frame["x"] > 0) ^ np.isin(values, ["a", "c"])).astype(int).to_numpy()
    return frame, y


@pytest.mark.parametrize("estimator", ["clf", "reg"])
def test_redeclaring_the_categories_of_an_unordered_column_changes_nothing(estimator, request):
    """Unordered categories were read as ordered codes: another declared order moved probabilities by 0.59."""
    est = request.getfixturevalue(estimator)
    first, y = _categorical_frame(list("abcde"))
    second, _ = _categorical_frame(list("ecadb"))
    target = y if estimator == "clf" else y * 3.0 + first["x"].to_numpy()
    method = "predict_proba" if estimator == "clf" else "predict"
    a = getattr(clone(est).fit(first[:60], target[:60]), method)(first[60:])
    b = getattr(clone(est).fit(second[:60], target[:60]), method)(second[60:])
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_members_draw_independent_category_orders_from_random_state(clf):
    frame, y = _categorical_frame(list("abcde"))
    fitted = clone(clf).set_params(n_estimators=4).fit(frame, y)
    orders = [m.category_codes[1].tolist() for m in fitted.members_]
    assert all(sorted(order) == [0, 1, 2, 3, 4] for order in orders)
    assert len({tuple(order) for order in orders}) > 1  # independent draws
    again = clone(clf).set_params(n_estimators=4).fit(frame, y)
    assert [m.category_codes[1].tolist() for m in again.members_] == orders
    other = clone(clf).set_params(n_estimators=4, random_state=1).fit(frame, y)
    assert [m.category_codes[1].tolist() for m in other.members_] != orders


def test_ordered_categoricals_keep_their_order(clf):
    frame, y = _categorical_frame(list("abcde"), ordered=True)
    fitted = clone(clf).fit(frame, y)
    assert all(not m.category_codes for m in fitted.members_)
    reordered, _ = _categorical_frame(list("ecadb"), ordered=True)
    a = fitted.predict_proba(frame[60:])
    b = clone(clf).fit(reordered, y).predict_proba(reordered[60:])
    assert not np.allclose(a, b)  # the declared order is information here


def test_mostly_unseen_categories_warn_once_per_column(clf):
    """Fitted as Categorical([1, 2, 3]) and predicted with the strings '1', '2', '3': silently all unseen."""
    rng = np.random.RandomState(0)
    n = 40
    frame = pd.DataFrame({"x": rng.randn(n), "c": pd.Categorical(rng.choice([1, 2, 3], n)),
                          "d": rng.choice(["u", "v"], n)})
    fitted = clone(clf).fit(frame, (frame["x"] > 0).astype(int))
    strings = frame.assign(c=frame["c"].astype(str))
    with pytest.warns(UserWarning, match="column 'c': 40 of 40 values") as record:
        fitted.predict_proba(strings)
    unseen = [w for w in record if "not seen in fit" in str(w.message)]
    assert len(unseen) == 1 and "type int" in str(unseen[0].message)
    a_few = frame.copy()
    a_few.loc[:5, "d"] = "new"  # 6 of 40 unseen: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict_proba(a_few)


# ---------------------------------------------------------------------------- cells
def test_decimal_cells_are_numbers(clf):
    X, y, _ = _table(40)
    numbers = pd.DataFrame({"a": X[:, 0], "b": X[:, 1]})
    decimals = numbers.assign(a=[decimal.Decimal(repr(v)) for v in numbers["a"]])
    decimals.loc[3, "a"] = None
    numbers.loc[3, "a"] = np.nan
    a = clone(clf).fit(decimals, y).predict_proba(decimals)
    b = clone(clf).fit(numbers, y).predict_proba(numbers)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_datetimes_in_an_object_array_are_read_as_after_a_dataframe_fit(clf):
    X, y, _ = _table(40)
    frame = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=40, freq="D", tz="Europe/Paris"),
                          "x": X[:, 0], "s": np.where(X[:, 1] > 0, "p", "n")})
    fitted = clone(clf).fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "X does not have valid feature names"
        from_array = fitted.predict_proba(frame.to_numpy())
    np.testing.assert_allclose(from_array, fitted.predict_proba(frame), rtol=1e-6)
    mixed = frame.to_numpy().copy()
    mixed[0, 2] = pd.Timestamp("2020-01-01")
    with pytest.raises(TypeError, match="date/time"):
        clone(clf).fit(mixed, y)


# ---------------------------------------------------------------------------- wide tables
def test_wide_tables_say_how_many_members_they_use(clf):
    """n_estimators=1 silently became 20 members on a 10,000-feature table."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 30), rng.randint(0, 2, 30)
    with pytest.warns(UserWarning, match=r"max_features=8.*4 members instead of n_estimators=1"):
        fitted = clone(clf).set_params(n_estimators=1, max_features=8).fit(X, y)
    assert fitted.n_estimators_ == len(fitted.members_) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clone(clf).fit(X, y).n_estimators_ == 3


# ---------------------------------------------------------------------------- sample weights
@pytest.mark.parametrize("estimator", ["clf", "reg"])
def test_integer_weights_are_repeated_rows(estimator, request):
    est = clone(request.getfixturevalue(estimator)).set_params(inference_precision="float64")
    X, y_class, y_value = _table(30)
    y = y_class if estimator == "clf" else y_value
    weights = np.random.RandomState(1).randint(0, 4, len(y))
    weighted = clone(est).fit(X, y, sample_weight=weights)
    repeated = clone(est).fit(X.repeat(weights, axis=0), y.repeat(weights))
    kept = np.flatnonzero(weights)
    for member in weighted.members_:  # the support set is the multiset of the repeated rows
        np.testing.assert_array_equal(np.bincount(member.support_rows, minlength=len(kept)), weights[kept])
    method = "predict_proba" if estimator == "clf" else "predict"
    # Same support rows in the same order: the same numbers.
    np.testing.assert_array_equal(getattr(weighted, method)(X), getattr(repeated, method)(X))
    # Training rows in another order: equal up to the float32 sums of the model's support statistics.
    order = np.random.RandomState(2).permutation(len(y))
    shuffled = clone(est).fit(X[order], y[order], sample_weight=weights[order])
    np.testing.assert_allclose(getattr(shuffled, method)(X), getattr(repeated, method)(X), rtol=1e-5, atol=1e-6)


def test_unit_weights_are_no_weights_and_zero_weights_remove_rows(clf):
    X, y, _ = _table(40)
    plain = clone(clf).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(clone(clf).fit(X, y, sample_weight=np.ones(40)).predict_proba(X), plain)
    weights = np.r_[np.ones(30), np.zeros(10)]
    np.testing.assert_array_equal(clone(clf).fit(X, y, sample_weight=weights).predict_proba(X),
                                  clone(clf).fit(X[:30], y[:30]).predict_proba(X))


def test_weights_move_the_prediction_towards_the_heavy_rows():
    X, y, _ = _table(120)
    plain = MitraClassifier(n_estimators=2, random_state=0).fit(X, y)
    heavy_ones = MitraClassifier(n_estimators=2, random_state=0).fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    assert heavy_ones.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.02
    # Normalised weights (as AdaBoost passes them) draw as many rows as there are, keeping every class.
    rare = np.where(np.arange(120) < 3, 1.0, 1e-3)
    rare /= rare.sum()
    fitted = MitraClassifier(n_estimators=3, random_state=0).fit(X, y, sample_weight=rare)
    assert all(len(m.support_rows) == 120 and set(y[m.support_rows]) == {0, 1} for m in fitted.members_)


def test_sample_weight_workflows(clf, reg):
    X, y, target = _table(60)
    # Boosting needs a better-than-chance learner: the shipped (trained) checkpoint.
    boosted = AdaBoostClassifier(MitraClassifier(n_estimators=1, random_state=0), n_estimators=2, random_state=0)
    boosted.fit(X, y)
    assert boosted.predict(X).shape == (60,)
    weights = np.random.RandomState(0).rand(60) + 0.1
    assert cross_val_score(clone(reg), X, target, cv=3, params={"sample_weight": weights}).shape == (3,)


def test_sample_weight_errors(clf):
    X, y, _ = _table(40)
    with pytest.raises(ValueError, match="zero"):
        clone(clf).fit(X, y, sample_weight=np.zeros(40))
    with pytest.raises(ValueError, match="(?i)negative"):
        clone(clf).fit(X, y, sample_weight=-np.ones(40))
    with pytest.raises(ValueError, match="support_selection='nearest'"):
        clone(clf).set_params(support_selection="nearest", max_support_rows=20).fit(X, y, sample_weight=np.ones(40) * 2)


def test_fine_tuning_weights_the_loss(tiny_regressor_checkpoint, monkeypatch):
    from mitra_sklearn import finetune

    seen = []
    real_step = finetune._train_step

    def recording_step(*args):
        seen.append(args[-1] is not None)
        return real_step(*args)

    monkeypatch.setattr(finetune, "_train_step", recording_step)
    X, _, target = _table(60)
    est = MitraRegressor(tiny_regressor_checkpoint, n_estimators=1, fine_tune=True, fine_tune_steps=2,
                         fine_tune_lr=1e-3, random_state=0)
    est.fit(X, target, sample_weight=np.linspace(0.5, 2.0, 60))
    assert seen and all(seen) and np.isfinite(est.predict(X)).all()
    task, member = est.task_, est.members_[0]
    labels, scaling = task.support_labels(member, target)
    outputs = torch.linspace(0, 1, 5)
    weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    per_row = [float(task.loss(member, outputs[i:i + 1], target[i:i + 1], scaling)) for i in range(5)]
    weighted = float(task.loss(member, outputs, target[:5], scaling, weights))
    assert weighted == pytest.approx(np.average(per_row, weights=weights), rel=1e-5)


# ---------------------------------------------------------------------------- threads and output
def test_n_jobs_sets_torch_threads_for_the_call_only(clf, monkeypatch):
    X, y, _ = _table(40)
    seen = []
    real_forward = MitraModel.predict_by_layer

    def recording(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(MitraModel, "predict_by_layer", recording)
    before = torch.get_num_threads()
    clone(clf).set_params(n_jobs=1).fit(X, y).predict_proba(X)
    assert seen and set(seen) == {1} and torch.get_num_threads() == before
    seen.clear()
    monkeypatch.setattr(devices, "available_cpus", lambda: 1)  # a container allowed one CPU
    clone(clf).fit(X, y).predict_proba(X)
    assert set(seen) == {1} and torch.get_num_threads() == before
    assert devices.resolve_threads(-1) == 1 and devices.resolve_threads(3) == 3
    with pytest.raises(InvalidParameterError):
        clone(clf).set_params(n_jobs=0).fit(X, y)


def test_verbose_fit_reports_its_steps_and_predict_counts_rows(clf, capsys):
    X, y, _ = _table(40)
    fitted = clone(clf).set_params(verbose=True).fit(X, y)
    err = capsys.readouterr().err
    for step in ("checkpoint", "encoded 40 training rows x 4 columns", "3 ensemble member(s)", "fit done in"):
        assert step in err, step
    fitted.predict_proba(X[:10])
    bar = capsys.readouterr().err
    assert "(3 members)" in bar and "10/10 rows" in bar and "30/30" not in bar
