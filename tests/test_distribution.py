"""Distributional regression with binned heads (issue 24): the mixture of the members' histograms,
quantiles, the median and mode, and the estimator's methods. Tiny random-weight binned
checkpoints stand in for Mitra v2's 1,000-bin regressor."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mitra_sklearn import MitraRegressor
from mitra_sklearn import regressor as regressor_module
from mitra_sklearn.distribution import RegressionDistribution, mix_members
from mitra_sklearn.tasks import TargetScaling, regression_bin_edges

from .conftest import make_tiny_checkpoint

EDGES = regression_bin_edges(8)


def _edges_of(low, high):
    return TargetScaling(low, high).unscale(EDGES)


def _mix(members):
    return mix_members(members, _edges_of, n_keys=2)


def _member(low, high, probabilities):
    rows = np.asarray(probabilities, dtype=np.float64)
    return np.column_stack([np.full(len(rows), low), np.full(len(rows), high), rows])


# ---------------------------------------------------------------------------- the mixture
def test_one_member_is_its_own_histogram_in_y_units():
    p = np.random.default_rng(0).dirichlet(np.ones(8), size=3)
    d = _mix([_member(10.0, 20.0, p)])
    np.testing.assert_allclose(d.bin_edges[0], 10.0 + 10.0 * EDGES)
    np.testing.assert_allclose(d.probabilities, p)
    centres = 10.0 + 10.0 * (EDGES[:-1] + EDGES[1:]) / 2
    np.testing.assert_allclose(d.mean(), p @ centres)


def test_members_with_other_scalings_mix_as_the_average_of_their_cdfs():
    rng = np.random.default_rng(1)
    a, b = rng.dirichlet(np.ones(8), size=4), rng.dirichlet(np.ones(8), size=4)
    d = _mix([_member(0.0, 1.0, a), _member(3.0, 5.0, b)])
    assert d.bin_edges.shape == (1, 2 * len(EDGES))  # the union of both members' edges
    np.testing.assert_allclose(d.probabilities.sum(axis=1), 1.0)
    single_a = _mix([_member(0.0, 1.0, a)])
    single_b = _mix([_member(3.0, 5.0, b)])
    np.testing.assert_allclose(d.mean(), (single_a.mean() + single_b.mean()) / 2)
    for y in (-0.3, 0.7, 2.9, 4.1, 6.5):
        values = np.full(4, y)
        np.testing.assert_allclose(d.cdf(values), (single_a.cdf(values) + single_b.cdf(values)) / 2, atol=1e-12)


def test_quantiles_invert_the_cdf_and_are_monotone():
    rng = np.random.default_rng(2)
    members = [_member(low, low + 2.0, rng.dirichlet(np.full(8, 0.3), size=6)) for low in (0.0, 0.5, 1.7)]
    d = _mix(members)
    levels = np.linspace(0.01, 0.99, 25)
    q = d.quantile(levels)
    assert q.shape == (6, 25) and np.all(np.diff(q, axis=1) >= 0)
    for j, level in enumerate(levels):
        np.testing.assert_allclose(d.cdf(q[:, j]), level, atol=1e-9)
    np.testing.assert_array_equal(d.median(), d.quantile(0.5))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        d.quantile([0.5, 1.5])


def test_rows_with_different_scalings_get_their_own_edges():
    p = np.full((2, 8), 1 / 8)
    first = _member(0.0, 1.0, p)
    second = first.copy()
    second[1, :2] = (5.0, 6.0)  # row 1 read another support set
    d = _mix([first, second])
    assert d.bin_edges.shape[0] == 2
    np.testing.assert_allclose(d.probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(d.mean(), [0.5, (0.5 + 5.5) / 2])


def test_the_mode_is_the_centre_of_the_densest_bin():
    p = np.array([[0.0, 0.1, 0.6, 0.1, 0.1, 0.1, 0.0, 0.0]])
    d = _mix([_member(0.0, 1.0, p)])
    assert d.mode()[0] == pytest.approx((EDGES[2] + EDGES[3]) / 2)


# ---------------------------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def binned_checkpoint(tmp_path_factory) -> str:
    return str(make_tiny_checkpoint(tmp_path_factory.mktemp("binned"), "REGRESSION", dim_output=50))


def _data(n=120):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 4)
    return X, 50.0 + 10.0 * X[:, 0] + rng.randn(n)


@pytest.mark.parametrize("params", [{}, {"max_support_rows": 40},
                                    {"max_support_rows": 40, "support_selection": "nearest"}])
def test_the_distributions_mean_is_predict(binned_checkpoint, params):
    X, y = _data()
    reg = MitraRegressor(checkpoint=binned_checkpoint, n_estimators=3, random_state=0, **params).fit(X[:90], y[:90])
    d = reg.predict_distribution(X[90:])
    assert isinstance(d, RegressionDistribution) and len(d) == 30
    # Edge midpoints (the distribution) vs the official float32 bin centres (predict): 1e-7 of the span apart.
    span = y[:90].max() - y[:90].min()
    np.testing.assert_allclose(d.mean(), reg.predict(X[90:]), rtol=0, atol=1e-6 * span)
    q = reg.predict_quantiles(X[90:], quantiles=[0.05, 0.5, 0.95])
    assert q.shape == (30, 3) and np.all(np.diff(q, axis=1) >= 0)
    np.testing.assert_array_equal(reg.predict(X[90:], output_type="median"), q[:, 1])
    mode = reg.predict(X[90:], output_type="mode")
    assert np.all((mode >= d.bin_edges.min()) & (mode <= d.bin_edges.max()))


def test_rows_in_blocks_give_the_same_distribution(binned_checkpoint, monkeypatch):
    X, y = _data()
    reg = MitraRegressor(checkpoint=binned_checkpoint, n_estimators=2, random_state=0).fit(X[:90], y[:90])
    whole = reg.predict_distribution(X[90:])
    monkeypatch.setattr(regressor_module, "_DISTRIBUTION_BYTES", 8 * 52 * 2 * 7)  # blocks of 7 rows
    blocks = reg.predict_distribution(X[90:])
    np.testing.assert_array_equal(blocks.bin_edges, whole.bin_edges)
    # float32 forward passes over other query chunk sizes differ in the last bits only
    np.testing.assert_allclose(blocks.probabilities, whole.probabilities, atol=1e-6)


@pytest.mark.parametrize("output_type", ["median", "mode"])
def test_the_spread_beside_a_median_or_mode_takes_one_pass_of_the_members(binned_checkpoint, monkeypatch,
                                                                          output_type):
    X, y = _data()
    reg = MitraRegressor(checkpoint=binned_checkpoint, n_estimators=3, random_state=0).fit(X[:90], y[:90])
    _, expected_std = reg.predict(X[90:], return_std=True)
    expected_point = reg.predict(X[90:], output_type=output_type)
    passes = []
    run_members = type(reg)._run_members
    monkeypatch.setattr(type(reg), "_run_members", lambda self, *a, **k: passes.append(1) or run_members(self, *a, **k))
    point, std = reg.predict(X[90:], return_std=True, output_type=output_type)
    assert len(passes) == 1
    np.testing.assert_array_equal(point, expected_point)
    np.testing.assert_allclose(std, expected_std, rtol=1e-12, atol=1e-12 * np.ptp(y))
    assert std.min() > 0


def test_pickled_binned_regressor_predicts_the_same_quantiles(binned_checkpoint):
    X, y = _data()
    reg = MitraRegressor(checkpoint=binned_checkpoint, n_estimators=2, random_state=0).fit(X[:90], y[:90])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict_quantiles(X[90:]),
                                  reg.predict_quantiles(X[90:]))


def test_a_constant_target_is_a_point_mass(binned_checkpoint):
    X, _ = _data(20)
    reg = MitraRegressor(checkpoint=binned_checkpoint).fit(X, np.full(20, 3.5))
    np.testing.assert_array_equal(reg.predict_quantiles(X[:4]), np.full((4, 3), 3.5))
    assert np.all(reg.predict(X[:4], output_type="mode") == 3.5)


def test_a_scalar_head_names_a_checkpoint_that_can(tiny_regressor_checkpoint):
    X, y = _data()
    reg = MitraRegressor(checkpoint=tiny_regressor_checkpoint, n_estimators=1).fit(X, y)
    for call in (reg.predict_distribution, reg.predict_quantiles, lambda X: reg.predict(X, output_type="median")):
        with pytest.raises(ValueError, match="scalar regression head.*autogluon/mitra-regressor-2"):
            call(X)
    with pytest.raises(ValueError, match="output_type"):
        reg.predict(X, output_type="average")
    assert reg.predict(X, output_type="mean").shape == (len(X),)


def test_a_lower_temperature_sharpens_the_predicted_distribution(binned_checkpoint):
    X, y = _data()
    entropies = []
    for temperature in (0.5, 1.0, 2.0):
        reg = MitraRegressor(checkpoint=binned_checkpoint, n_estimators=1, random_state=0,
                             softmax_temperature=temperature).fit(X[:90], y[:90])
        p = reg.predict_distribution(X[90:]).probabilities
        entropies.append(float(np.mean(-np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=1))))
    assert entropies[0] < entropies[1] < entropies[2]
