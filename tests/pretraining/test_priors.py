"""Tests of the synthetic priors, their mixture, config and the torch data stream."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mitra_sklearn.config import Task
from pretraining.config import PriorConfig, parse_mixture
from pretraining.data import IGNORE_INDEX, SyntheticTableStream
from pretraining.priors import PRIORS, Mixture, Table, get_prior
from pretraining.priors.dsrf import apply_forest, sample_forest
from pretraining.priors.features import FeatureSpec

TASKS = tuple(Task)
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


# ---------------------------------------------------------------- v2 priors and feature options
NEW_PRIORS = ("rules", "additive")
# Every option of the shared feature generator switched on.
OPTIONS_ON = PriorConfig(feature_quantize_prob=1.0, feature_copula_prob=1.0)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", NEW_PRIORS)
def test_new_priors_valid_over_many_seeds_and_shapes(name, task):
    prior = PRIORS[name]()
    shapes = [(2, 1), (3, 2), (7, 1), (40, 3), (200, 8), (640, 16), (300, 32)]
    got, want = [], []
    for seed in range(70):
        n_rows, d = shapes[seed % len(shapes)]
        k = min(2 + seed % 9, n_rows) if task == "classification" else None
        table = prior.sample(seed, n_rows, d, task, n_classes=k)
        _assert_valid(table, n_rows, d, task)
        if k is not None and n_rows >= 200:
            got.append(table.n_classes)
            want.append(k)
    # Multiclass tables keep their requested class count (the point of these priors).
    assert got == want


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_every_prior_valid_and_reproducible_with_feature_options_on(name):
    prior = PRIORS[name](OPTIONS_ON)
    for seed, task in enumerate(TASKS * 2):
        a = prior.sample(seed, 120, 5, task)
        _assert_valid(a, 120, 5, task)
        b = prior.sample(seed, 120, 5, task)
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def _v1_feature_generator(rng, n_features, n_rows, cfg):
    """The shared feature generator as it was before the v2 options (the reference stream)."""
    p_cat = rng.uniform(*cfg.categorical_share)
    n_cat = min(int(np.floor(p_cat * (n_features + 1))), n_features)
    categorical = np.zeros(n_features, dtype=bool)
    categorical[rng.choice(n_features, size=n_cat, replace=False)] = True
    n_categories = np.zeros(n_features, dtype=np.int64)
    n_categories[categorical] = np.minimum(
        1 + rng.geometric(cfg.categories_geometric_p, size=n_cat), cfg.max_categories
    )
    cum = [np.cumsum(rng.dirichlet(np.ones(k))) for k in n_categories[categorical]]
    x = rng.standard_normal((n_rows, n_features))
    cols = np.flatnonzero(categorical)
    if cols.size:
        u = rng.random((n_rows, cols.size))
        for j, (col, c) in enumerate(zip(cols, cum)):
            x[:, col] = np.minimum(np.searchsorted(c, u[:, j], side="right"), c.size - 1)
    return categorical, x


def test_feature_options_off_leave_the_v1_stream_unchanged():
    # The other option fields do not matter while the probabilities are 0: nothing is drawn.
    cfg = PriorConfig(feature_quantize_levels=(3, 3), feature_quantize_share=(1.0, 1.0),
                      feature_copula_factors=(2, 2), feature_copula_strength=(2.0, 2.0))
    for seed in range(20):
        rng, ref = np.random.default_rng(seed), np.random.default_rng(seed)
        spec = FeatureSpec.sample(rng, 1 + seed % 9, cfg)
        x = spec.draw(rng, 50)
        assert spec.quantisation is None and spec.loadings is None
        categorical, x_ref = _v1_feature_generator(ref, 1 + seed % 9, 50, cfg)
        assert np.array_equal(spec.categorical, categorical) and np.array_equal(x, x_ref)
        assert rng.random() == ref.random()  # same number of draws
    for name in ("scm", "dt", "et", "gb", "rf", "dsrf"):
        base, other = PRIORS[name](), PRIORS[name](cfg)
        for task in TASKS:
            a, b = base.sample(4, 90, 6, task), other.sample(4, 90, 6, task)
            assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


#: DSRF output for seeds 0-2 of the v1 generator (pure numpy, so stable across scikit-learn).
DSRF_FINGERPRINT = "fa23b9c60678e15e"


def test_dsrf_stream_fingerprint_is_pinned():
    """The v1 stream of a campaign must not move; update these only for a deliberate change."""
    import hashlib

    prior = PRIORS["dsrf"]()
    digest = hashlib.sha256()
    for seed in range(3):
        for task in TASKS:
            t = prior.sample(seed, 64, 5, task)
            digest.update(np.round(t.x, 5).tobytes() + np.round(t.y.astype(float), 5).tobytes())
            digest.update(t.categorical.tobytes())
    assert digest.hexdigest()[:16] == DSRF_FINGERPRINT


def test_quantisation_ties_numeric_columns():
    cfg = PriorConfig(feature_quantize_prob=1.0, feature_quantize_share=(1.0, 1.0),
                      feature_quantize_levels=(2, 5), categorical_share=(0.0, 0.0))
    off_cfg = cfg.replace(feature_quantize_prob=0.0)
    for seed in range(5):
        off = PRIORS["dsrf"](off_cfg).sample(seed, 400, 4, "regression")
        on = PRIORS["dsrf"](cfg).sample(seed, 400, 4, "regression")
        assert all(np.unique(off.x[:, j]).size == 400 for j in range(4))
        # levels <= 5: a handful of grid points (step >= 1.2 sd)
        assert all(np.unique(on.x[:, j]).size <= 8 for j in range(4))
        assert not on.categorical.any()  # quantised columns stay numeric
        scm_off = PRIORS["scm"](off_cfg).sample(seed, 400, 4, "regression")
        scm_on = PRIORS["scm"](cfg).sample(seed, 400, 4, "regression")
        num = np.flatnonzero(~scm_on.categorical)
        assert all(np.unique(scm_on.x[:, j]).size <= 8 for j in num)
        assert not np.array_equal(scm_on.x, scm_off.x)


def test_copula_correlates_inputs():
    strong = PriorConfig(feature_copula_prob=1.0, feature_copula_strength=(3.0, 3.0),
                         feature_copula_factors=(1, 1), categorical_share=(0.5, 0.5))

    def mean_abs_corr(cfg, seed):
        rng = np.random.default_rng(seed)
        spec = FeatureSpec.sample(rng, 6, cfg)
        x = spec.draw(rng, 2000)
        r = np.corrcoef(x.T)
        return np.abs(r[np.triu_indices(6, 1)]).mean(), spec, x

    on = [mean_abs_corr(strong, s) for s in range(5)]
    off = [mean_abs_corr(PriorConfig(categorical_share=(0.5, 0.5)), s) for s in range(5)]
    assert np.mean([c for c, _, _ in on]) > 0.3 > 0.05 > np.mean([c for c, _, _ in off])
    for _, spec, x in on:  # margins stay N(0, 1); codes stay valid
        num = ~spec.categorical
        assert np.all(np.abs(x[:, num].std(axis=0) - 1) < 0.1)
        for j in np.flatnonzero(spec.categorical):
            assert set(np.unique(x[:, j])) <= set(range(spec.n_categories[j]))


def _rule_and_rows(prior, seed, n_rows, d, task, k):
    """Replay `RulesPrior._generate`'s draws: the rows and the noise-free rule of one table."""
    rng = np.random.default_rng(seed)
    spec = FeatureSpec.sample(rng, d, prior.feature_config)
    x = spec.draw(rng, n_rows)
    return x, spec, prior.draw_target(rng, x, spec, task, k)


@pytest.mark.parametrize("task", TASKS)
def test_rules_target_is_a_function_of_the_chosen_few_features(task):
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    prior = PRIORS["rules"](PriorConfig(rules_noise_prob=0.0))
    model = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
    modes = set()
    for seed in range(40):
        k = 2 + seed % 9
        x, spec, rule = _rule_and_rows(prior, seed, 400, 10, task, k)
        f = rule.features
        modes.add(rule.mode)
        assert 1 <= f.size <= 4 and np.unique(f).size == f.size
        y = rule(x)
        table = prior.sample(seed, 400, 10, task, n_classes=k if task == "classification" else None)
        if task == "regression" or np.unique(y).size == k:  # first draw kept: y is the rule
            assert np.array_equal(table.x, x.astype(np.float32))
            assert np.allclose(table.y, y)
        # A depth-limited tree on the chosen columns fits the labels exactly (<= 16 codes each).
        tree = model(max_depth=4 * f.size, random_state=0).fit(x[:, f], y)
        assert np.allclose(tree.predict(x[:, f]), y)
        # ... and the label depends on nothing else: scramble every other column.
        rng = np.random.default_rng(seed)
        other = np.setdiff1d(np.arange(10), f)
        x2 = x.copy()
        x2[:, other] = x2[rng.permutation(400)][:, other]
        assert np.array_equal(rule(x2), y)
    assert modes == {"table", "list", "score"}


def test_rules_features_are_mostly_discrete_and_noise_flips_labels():
    prior = PRIORS["rules"]()
    distinct = []
    for seed in range(30):
        t = prior.sample(seed, 300, 8, "classification")
        distinct += [np.unique(t.x[:, j]).size for j in range(8)]
    assert np.mean(np.array(distinct) <= 16) > 0.6  # categorical or small-integer columns
    noisy = PRIORS["rules"](PriorConfig(rules_noise_prob=1.0, rules_flip_rate=(0.2, 0.2)))
    rates = []
    for seed in range(20):
        x, _, rule = _rule_and_rows(noisy, seed, 1000, 6, "classification", 2)
        t = noisy.sample(seed, 1000, 6, "classification", n_classes=2)
        rates.append(np.mean(t.y != rule(x)))
    assert 0.07 < np.median(rates) < 0.13  # 0.2 flips, half of them to the same class


def _gam_r2(table):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, SplineTransformer

    cat = table.categorical
    gam = make_pipeline(
        ColumnTransformer([
            ("spline", SplineTransformer(n_knots=12), np.flatnonzero(~cat)),
            ("onehot", OneHotEncoder(handle_unknown="ignore"), np.flatnonzero(cat)),
        ]),
        RidgeCV(alphas=np.logspace(-6, 1, 8)),
    )
    n = table.n_rows * 3 // 4
    gam.fit(table.x[:n], table.y[:n])
    return gam.score(table.x[n:], table.y[n:])


def test_additive_regression_is_smooth_when_noise_is_low():
    def r2s(noise):
        cfg = PriorConfig(additive_noise=(noise, noise), additive_n_interactions=(0, 0))
        prior = PRIORS["additive"](cfg)
        return [_gam_r2(prior.sample(seed, 800, 5, "regression")) for seed in range(8)]

    low, high = r2s(1e-3), r2s(0.5)
    assert np.median(low) > 0.99 and min(low) > 0.9
    assert np.median(high) < 0.9  # the noise level really sets the achievable R2


def test_additive_linear_classification_boundary():
    from sklearn.linear_model import LogisticRegression

    cfg = PriorConfig(additive_noise=(1e-3, 1e-3), additive_n_smooth=(0, 0),
                      additive_n_interactions=(0, 0), additive_categorical_share=(0.0, 0.0),
                      additive_softmax_prob=0.0)
    prior = PRIORS["additive"](cfg)
    for seed in range(6):
        t = prior.sample(seed, 500, 6, "classification", n_classes=2)
        assert LogisticRegression(C=1e4, max_iter=2000).fit(t.x, t.y).score(t.x, t.y) > 0.98


def test_new_prior_config_validation_and_round_trip():
    cfg = PriorConfig(rules_modes=(("table", 1.0), ("score", 2.0)), feature_quantize_prob=0.3)
    assert PriorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="rules_levels"):
        PriorConfig(rules_levels=(1, 3))
    with pytest.raises(ValueError, match="additive_noise"):
        PriorConfig(additive_noise=(0.0, 0.1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PriorConfig(feature_copula_prob=2.0)
    with pytest.raises(ValueError, match="rules_modes"):
        PRIORS["rules"](PriorConfig(rules_modes=(("tables", 1.0),)))
    with pytest.raises(ValueError, match="additive_smooth_kinds"):
        PRIORS["additive"](PriorConfig(additive_smooth_kinds=("wavelet",)))


def test_v2_mixture_and_settings():
    from pretraining.priors import V2_MIXTURE_SPEC, V2_PRIOR_SETTINGS

    assert Mixture().weights == pytest.approx(dict(PriorConfig().mixture))  # default unchanged
    cfg = PriorConfig().replace(**V2_PRIOR_SETTINGS)
    mix = Mixture(config=cfg)
    assert mix.weights == pytest.approx(dict(parse_mixture(V2_MIXTURE_SPEC)))
    assert sum(mix.weights.values()) == pytest.approx(1.0)
    seen = set()
    for seed in range(30):
        t = mix.sample(seed, 64, 4, "classification")
        _assert_valid(t, 64, 4, "classification")
        seen.add(t.prior)
    assert {"rules", "additive"} <= seen
