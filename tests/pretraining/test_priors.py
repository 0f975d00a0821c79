"""Tests of the synthetic priors, their mixture, config and the torch data stream."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pretraining.config import PriorConfig
from pretraining.data import IGNORE_INDEX, SyntheticTableStream
from pretraining.priors import PRIORS, Mixture, Table, get_prior
from pretraining.priors.dsrf import apply_forest, sample_forest
from pretraining.priors.features import FeatureSpec

TASKS = ("classification", "regression")
# Small shapes keep the whole file well under a minute on 2 cores.
SMALL = PriorConfig(n_support=(24, 48), n_query=(8, 16), n_features=(1, 6))


def _assert_valid(table: Table, n_rows: int, n_features: int, task: str, allow_nan: bool = False):
    table.check(allow_nan=allow_nan)
    assert table.x.shape == (n_rows, n_features) and table.x.dtype == np.float32
    assert table.categorical.shape == (n_features,) and table.categorical.dtype == bool
    assert table.task == task
    if not allow_nan:
        assert np.isfinite(table.x).all()
    if task == "classification":
        assert table.y.dtype == np.int64 and 2 <= table.n_classes <= 10
        assert table.y.min() == 0 and table.y.max() == table.n_classes - 1
        assert np.unique(table.y).size == table.n_classes  # every class present
    else:
        assert table.y.dtype == np.float32 and table.n_classes == 0
        assert np.isfinite(table.y).all() and np.ptp(table.y) > 0
    # Categorical columns hold integer codes.
    cat = table.x[:, table.categorical]
    cat = cat[~np.isnan(cat)]
    assert np.array_equal(cat, np.round(cat)) and (cat >= 0).all()


# ---------------------------------------------------------------- priors
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", sorted(PRIORS))
def test_prior_yields_valid_tables(name, task):
    prior = PRIORS[name]()
    assert prior.name == name
    for seed, (n_rows, d) in enumerate([(150, 6), (80, 1), (200, 16)]):
        table = prior.sample(seed, n_rows, d, task)
        _assert_valid(table, n_rows, d, task)
        assert table.prior == name
        assert not np.isnan(table.x).any()  # missing values were not requested


@pytest.mark.parametrize("name", ["scm", "dsrf"])
def test_requested_class_count_is_honoured(name):
    prior = PRIORS[name]()
    got = [prior.sample(s, 200, 5, "classification", n_classes=k).n_classes
           for s in range(4) for k in (2, 5, 10)]
    want = [k for _ in range(4) for k in (2, 5, 10)]
    assert np.mean(np.array(got) == np.array(want)) >= 0.8
    assert all(2 <= g <= w for g, w in zip(got, want))


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_prior_is_reproducible(name):
    prior = PRIORS[name]()
    for task in TASKS:
        a = prior.sample(7, 100, 4, task)
        b = prior.sample(7, 100, 4, task)
        c = prior.sample(np.random.default_rng(7), 100, 4, task)  # Generator == same seed
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
        assert np.array_equal(a.categorical, b.categorical) and a.n_classes == b.n_classes
        assert np.array_equal(a.x, c.x) and np.array_equal(a.y, c.y)
        d = prior.sample(8, 100, 4, task)
        assert not np.array_equal(a.x, d.x)


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_missing_values_only_when_requested(name):
    prior = PRIORS[name](PriorConfig(missing_prob=1.0, missing_rate=(0.2, 0.3)))
    for task in TASKS:
        table = prior.sample(3, 120, 5, task)
        _assert_valid(table, 120, 5, task, allow_nan=True)
        frac = np.isnan(table.x).mean()
        assert 0.1 < frac < 0.4
        assert np.isfinite(table.x[~np.isnan(table.x)]).all()


def test_sample_rejects_bad_arguments():
    prior = PRIORS["dsrf"]()
    with pytest.raises(ValueError, match="task"):
        prior.sample(0, 10, 2, "ranking")
    with pytest.raises(ValueError, match="n_classes"):
        prior.sample(0, 10, 2, "classification", n_classes=1)


def test_feature_generator():
    cfg = PriorConfig()
    rng = np.random.default_rng(0)
    n_cat = []
    for _ in range(200):
        spec = FeatureSpec.sample(rng, 10, cfg)
        n_cat.append(spec.categorical.sum())
        assert (spec.n_categories[spec.categorical] >= 2).all()
        assert (spec.n_categories[~spec.categorical] == 0).all()
    x = spec.draw(rng, 500)
    assert x.shape == (500, 10)
    for j in np.flatnonzero(spec.categorical):
        assert set(np.unique(x[:, j])) <= set(range(spec.n_categories[j]))
    # floor(U * 11) is uniform over 0..10: every count appears, mean near 5.
    assert set(n_cat) == set(range(11)) and abs(np.mean(n_cat) - 5) < 0.6


def test_dsrf_forest_respects_depth_and_intervals():
    rng = np.random.default_rng(1)
    low, high = np.array([-3.0, -0.5]), np.array([3.0, 4.5])
    forest = sample_forest(rng, n_trees=3, low=low, high=high, d_min=2, d_max=5, p_nc=0.3)

    def walk(node, depth, lo, hi):
        if forest.left[node] < 0:
            assert 2 <= depth <= 5
            return
        f, t = forest.feature[node], forest.threshold[node]
        assert lo[f] <= t <= hi[f]  # threshold inside the interval still open on the path
        walk(forest.left[node], depth + 1, lo, np.where(np.arange(2) == f, t, hi))
        walk(forest.right[node], depth + 1, np.where(np.arange(2) == f, t, lo), hi)

    for root in range(3):
        walk(root, 0, low, high)
    # Vectorised routing equals a plain per-row traversal.
    x = np.column_stack([rng.normal(size=50), rng.integers(0, 5, size=50)]).astype(float)
    leaves = apply_forest(forest, x)
    for tree in range(3):
        for i in range(50):
            node = tree
            while forest.left[node] >= 0:
                go_left = x[i, forest.feature[node]] <= forest.threshold[node]
                node = forest.left[node] if go_left else forest.right[node]
            assert leaves[tree, i] == node
    assert np.unique(forest.leaf_order).size == forest.leaf_order.size == forest.is_leaf.sum()


# ---------------------------------------------------------------- mixture
def test_mixture_default_weights_and_choice_frequencies():
    mix = Mixture()
    assert mix.weights == pytest.approx(
        {"scm": 0.5, "et": 0.1, "gb": 0.1, "dt": 0.1, "rf": 0.1, "dsrf": 0.1}
    )
    rng = np.random.default_rng(0)
    names = [mix.choose(rng) for _ in range(2000)]
    for name, w in mix.weights.items():
        assert abs(names.count(name) / 2000 - w) < 0.04


def test_mixture_from_string_subset_is_renormalised():
    mix = Mixture.from_string(" SCM=2, et = 1,dsrf=1,gb=0")
    assert mix.weights == pytest.approx({"scm": 0.5, "et": 0.25, "dsrf": 0.25})
    assert set(mix.priors) == {"scm", "et", "dsrf"}
    assert Mixture.from_string(mix.to_string()).weights == pytest.approx(mix.weights)
    assert Mixture.from_string("dsrf").weights == {"dsrf": 1.0}
    assert isinstance(get_prior("scm=1,dt=1"), Mixture)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("", "empty"),
        ("scm=0.5,,et=0.5", "empty prior name"),
        ("scm=0.5,xgb=0.5", "unknown prior"),
        ("scm=0.5,scm=0.5", "twice"),
        ("scm=abc", "not a number"),
        ("scm=-1", ">= 0"),
        ("scm=nan", ">= 0"),
        ("scm=0,et=0", "all be zero"),
    ],
)
def test_mixture_from_string_rejects_bad_input(spec, match):
    with pytest.raises(ValueError, match=match):
        Mixture.from_string(spec)


def test_mixture_sample_is_reproducible_and_delegates():
    mix = Mixture.from_string("scm=1,dsrf=1,dt=1")
    seen = set()
    for seed in range(12):
        a = mix.sample(seed, 60, 3, "classification")
        b = mix.sample(seed, 60, 3, "classification")
        assert a.prior == b.prior and np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
        _assert_valid(a, 60, 3, "classification")
        seen.add(a.prior)
    assert seen == {"scm", "dsrf", "dt"}


# ---------------------------------------------------------------- config
def test_config_round_trip_and_validation():
    cfg = PriorConfig(n_support=(10, 20), mixture=(("scm", 1.0),))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert PriorConfig.from_dict(data) == cfg
    assert PriorConfig.from_dict({}) == PriorConfig()
    with pytest.raises(ValueError, match="unknown keys"):
        PriorConfig.from_dict({"n_rows": 5})
    with pytest.raises(ValueError, match="low > high"):
        PriorConfig(n_features=(5, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PriorConfig(binary_prob=1.5)


# ---------------------------------------------------------------- stream
def _check_batch(batch, task, batch_size):
    xs, xq = batch["x_support"], batch["x_query"]
    b, s, f = xs.shape
    q = xq.shape[1]
    assert b == batch_size == len(batch["prior"])
    assert xs.dtype == xq.dtype == torch.float32
    assert batch["y_support"].shape == (b, s) and batch["y_query"].shape == (b, q)
    assert batch["padding_features"].shape == (b, f)
    assert batch["padding_obs_support"].shape == (b, s)
    assert batch["padding_obs_query"].shape == (b, q)
    assert batch["n_classes"].shape == (b,) and batch["n_classes"].dtype == torch.int64
    for key in ("padding_features", "padding_obs_support", "padding_obs_query"):
        assert batch[key].dtype == torch.bool
    assert torch.isfinite(xs).all() and torch.isfinite(xq).all()
    y_dtype = torch.int64 if task == "classification" else torch.float32
    assert batch["y_support"].dtype == batch["y_query"].dtype == y_dtype
    pad_y = IGNORE_INDEX if task == "classification" else 0.0
    for i in range(b):
        rs = ~batch["padding_obs_support"][i]
        rq = ~batch["padding_obs_query"][i]
        cf = ~batch["padding_features"][i]
        # Masks are prefixes: real cells first, padding (zeros / pad label) after.
        assert rs[: rs.sum()].all() and rq[: rq.sum()].all() and cf[: cf.sum()].all()
        assert (xs[i][~rs] == 0).all() and (xs[i][:, ~cf] == 0).all()
        assert (xq[i][~rq] == 0).all() and (xq[i][:, ~cf] == 0).all()
        assert (batch["y_support"][i][~rs] == pad_y).all()
        assert (batch["y_query"][i][~rq] == pad_y).all()
        ys, yq = batch["y_support"][i][rs], batch["y_query"][i][rq]
        if task == "classification":
            k = int(batch["n_classes"][i])
            assert 2 <= k <= 10
            used = torch.nonzero(batch["classes_used"][i]).flatten()
            assert len(used) == k
            assert torch.equal(torch.unique(ys), used)  # every class in support, on its head ids
            assert set(torch.unique(yq).tolist()) <= set(used.tolist())
        else:
            assert batch["n_classes"][i] == 0
            assert ys.min() == 0.0 and ys.max() == 1.0  # min-max scaled with support stats
            assert torch.isfinite(yq).all()


@pytest.mark.parametrize("mode", ["random_subset", "first"])
def test_class_ids_modes(mode):
    """random_subset spreads a table's classes over all head ids; first keeps them at 0..k-1."""
    stream = SyntheticTableStream("classification", 8, SMALL.replace(class_ids=mode), seed=5)
    seen = set()
    for index in range(6):
        batch = stream.make_batch(index)
        for i in range(8):
            used = torch.nonzero(batch["classes_used"][i]).flatten()
            if mode == "first":
                assert torch.equal(used, torch.arange(int(batch["n_classes"][i])))
            seen |= set(used.tolist())
    if mode == "random_subset":
        assert seen == set(range(SMALL.max_classes))
    else:
        assert max(seen) < SMALL.max_classes


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("same_shape", [True, False])
def test_stream_batches_have_correct_shapes_and_masks(task, same_shape):
    cfg = SMALL.replace(missing_prob=0.5)  # imputation must remove every NaN
    stream = SyntheticTableStream(task, 6, cfg, seed=3, same_shape_per_batch=same_shape)
    for index in range(2):
        batch = stream.make_batch(index)
        _check_batch(batch, task, 6)
        if same_shape:
            assert not batch["padding_features"].any()
            assert not batch["padding_obs_support"].any()
            assert not batch["padding_obs_query"].any()


def test_stream_without_padding_collapses_shapes_to_config():
    cfg = SMALL.replace(n_support=(30, 30), n_query=(10, 10), n_features=(4, 4))
    batch = SyntheticTableStream("classification", 3, cfg, same_shape_per_batch=False).make_batch(0)
    assert batch["x_support"].shape == (3, 30, 4) and batch["x_query"].shape == (3, 10, 4)


def _same(a, b):
    return all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def test_stream_is_reproducible_and_resumable():
    make = lambda **kw: SyntheticTableStream(  # noqa: E731
        "classification", 4, SMALL, seed=11, num_batches=3, **kw
    )
    first, second = list(make()), list(make())
    assert len(first) == 3
    assert all(_same(a, b) for a, b in zip(first, second))
    assert not _same(first[0], first[1])
    assert _same(list(make(start_batch=2))[0], first[2])
    other_seed = SyntheticTableStream("classification", 4, SMALL, seed=12).make_batch(0)
    assert not _same(other_seed, first[0])


def test_stream_ranks_get_different_tables():
    one = SyntheticTableStream("regression", 3, SMALL, seed=5, rank=0, world_size=1)
    r0 = SyntheticTableStream("regression", 3, SMALL, seed=5, rank=0, world_size=2)
    r1 = SyntheticTableStream("regression", 3, SMALL, seed=5, rank=1, world_size=2)
    assert not _same(r0.make_batch(0), r1.make_batch(0))
    # Ranks interleave the single-rank stream: the data do not depend on the world size.
    assert _same(r0.make_batch(1), one.make_batch(2))
    assert _same(r1.make_batch(1), one.make_batch(3))
    with pytest.raises(ValueError, match="rank"):
        SyntheticTableStream("regression", 3, SMALL, rank=2, world_size=2)


def test_stream_workers_get_different_tables_in_dataloader():
    stream = SyntheticTableStream("classification", 2, SMALL, seed=9, num_batches=4)
    loader = DataLoader(stream, batch_size=None, num_workers=2)
    batches = list(loader)
    assert len(batches) == 4
    # Worker 0 made batches 0 and 2, worker 1 made 1 and 3: all different ...
    xs = [b["x_support"] for b in batches]
    assert all(not (xs[i].shape == xs[j].shape and torch.equal(xs[i], xs[j]))
               for i in range(4) for j in range(i))
    # ... and the loader's order equals the single-process stream.
    assert all(_same(a, b) for a, b in zip(batches, stream))
    _check_batch(batches[0], "classification", 2)


def test_stream_accepts_prior_names():
    stream = SyntheticTableStream("regression", 2, SMALL, prior="dsrf", seed=1)
    assert stream.make_batch(0)["prior"] == ["dsrf", "dsrf"]
    with pytest.raises(ValueError, match="task"):
        SyntheticTableStream("ranking", 2)
