"""Paths for tables beyond the model's limits: many classes, many features, many rows, memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn import model as model_module
from mitra_sklearn._inference import auto_query_chunk, is_out_of_memory, support_cache_bytes
from mitra_sklearn._retrieval import build_local_support
from mitra_sklearn.config import OFFICIAL_SHAPE
from mitra_sklearn.ensemble import decode_class_probabilities, plan_members
from mitra_sklearn.model import MitraConfig, MitraModel


def test_plans_within_limits_are_unchanged_by_the_limits():
    y = np.arange(100) % 4
    plain = plan_members(5, 100, 12, np.random.RandomState(3), y_codes=y, n_classes=4, max_support_rows=50)
    limited = plan_members(5, 100, 12, np.random.RandomState(3), y_codes=y, n_classes=4, max_support_rows=50,
                           max_features=12, n_label_ids=10)
    for a, b in zip(plain, limited):
        np.testing.assert_array_equal(a.feature_order, b.feature_order)
        np.testing.assert_array_equal(a.feature_signs, b.feature_signs)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_array_equal(a.support_rows, b.support_rows)


def test_feature_subsets_cover_every_feature():
    members = plan_members(2, 50, 23, np.random.RandomState(0), max_features=5)
    assert len(members) == 5  # ceil(23 / 5) members at least
    covered = np.concatenate([m.feature_order for m in members])
    assert set(covered.tolist()) == set(range(23))
    assert all(len(m.feature_order) <= 5 for m in members)
    assert all(len(m.feature_signs) == len(m.feature_order) for m in members)


def test_class_groups_separate_every_pair_twice():
    members = plan_members(1, 300, 4, np.random.RandomState(0), y_codes=np.arange(300) % 30, n_classes=30,
                           n_label_ids=10)
    assert len(members) >= 6
    for m in members:
        assert sorted(np.bincount(m.class_ids).tolist()) == [3] * 10  # balanced groups
    separated = sum((m.class_ids[:, None] != m.class_ids[None, :]).astype(int) for m in members)
    np.fill_diagonal(separated, 99)
    assert separated.min() >= 2


def test_decoding_recovers_the_class_distribution():
    rng = np.random.RandomState(0)
    members = plan_members(1, 300, 4, rng, y_codes=np.arange(300) % 30, n_classes=30, n_label_ids=10)
    truth = rng.dirichlet(np.ones(30) * 0.3, size=5)
    group_probabilities = []
    for m in members:
        p = np.zeros((5, 10))
        np.add.at(p.T, m.class_ids, truth.T)
        group_probabilities.append(p)
    decoded = decode_class_probabilities(group_probabilities, members, 30, iterations=5000, tolerance=1e-14)
    np.testing.assert_allclose(decoded.sum(axis=1), 1.0)
    np.testing.assert_allclose(decoded, truth, atol=1e-3)


def test_thirty_classes_give_probabilities_over_all_classes(tiny_classifier_checkpoint):
    rng = np.random.RandomState(0)
    X = rng.randn(300, 4)
    y = np.array([f"class-{i:02d}" for i in range(30)])[np.arange(300) % 30]
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=2, random_state=0).fit(X, y)
    proba = clf.predict_proba(X[:20])
    assert proba.shape == (20, 30)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba >= 0).all()
    assert set(clf.predict(X[:20])) <= set(y)


def test_thirty_classes_with_the_shipped_checkpoint_beat_chance_clearly():
    """The decoded probabilities carry the members' signal: far above chance (1/30) on easy blobs.

    (A random-weight checkpoint sits at chance here, so this needs trained weights.)
    """
    rng = np.random.RandomState(0)
    centres = rng.randn(30, 3) * 6
    y = np.arange(900) % 30
    X = centres[y] + rng.randn(900, 3) * 0.3
    clf = MitraClassifier(n_estimators=2, random_state=0).fit(X[:600], y[:600])
    proba = clf.predict_proba(X[600:])
    assert proba.shape == (300, 30)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    accuracy = (clf.classes_[proba.argmax(axis=1)] == y[600:]).mean()
    assert accuracy > 0.5, accuracy  # chance: 0.033; the v1 shipped checkpoint reaches 0.97


def test_many_features_are_split_across_members(tiny_classifier_checkpoint):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 30)
    y = (X[:, 0] > 0).astype(int)
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=1, max_features=8, random_state=0).fit(X, y)
    assert len(clf.members_) == 4
    assert set(np.concatenate([m.feature_order for m in clf.members_]).tolist()) == set(range(30))
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_within_limits_results_do_not_depend_on_the_limits(tiny_classifier_checkpoint):
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 6), rng.randint(0, 3, 60)
    base = MitraClassifier(tiny_classifier_checkpoint, n_estimators=3, random_state=0)
    a = clone(base).fit(X, y).predict_proba(X)
    b = (clone(base).set_params(max_features=6, support_selection="nearest", max_support_rows=60)
         .fit(X, y).predict_proba(X))
    np.testing.assert_array_equal(a, b)


def test_local_support_index_covers_queries_once_with_neighbours_of_their_centre():
    rng = np.random.RandomState(0)
    X_train = rng.randn(500, 3)
    X_query = rng.randn(120, 3)
    index = build_local_support(X_train, max_support_rows=50, seed=0)
    assert index.centres.shape == (20, 3) and index.support_rows.shape == (20, 50)
    pairs = index.assign(X_query)
    seen = np.concatenate([q for q, _ in pairs])
    assert sorted(seen.tolist()) == list(range(120))
    train_z = (X_train - index.mean) / index.std
    for query_rows, support_rows in pairs:
        assert len(support_rows) == 50 == len(np.unique(support_rows))
        # the support set is the 50 training rows nearest the centre the queries are closest to
        query_z = (X_query[query_rows] - index.mean) / index.std
        centre = np.argmin(((query_z[:, None, :] - index.centres[None]) ** 2).sum(-1), axis=1)
        assert len(np.unique(centre)) == 1
        distance = ((train_z - index.centres[centre[0]]) ** 2).sum(-1)
        np.testing.assert_array_equal(np.sort(np.argsort(distance)[:50]), support_rows)
    assert build_local_support(X_train, max_support_rows=500, seed=0) is None


def test_nearest_support_predictions_are_row_independent(tiny_classifier_checkpoint):
    rng = np.random.RandomState(0)
    X, y = rng.randn(300, 4), rng.randint(0, 3, 300)
    # float32: under bf16 autocast (auto on bf16 CPUs) a row moves by ~1e-3 with its batch's shape.
    clf = MitraClassifier(tiny_classifier_checkpoint, n_estimators=2, max_support_rows=64,
                          inference_precision="float32", support_selection="nearest", random_state=0).fit(X, y)
    query = rng.randn(40, 4)
    full = clf.predict_proba(query)
    np.testing.assert_allclose(clf.predict_proba(query[:5]), full[:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(query[::-1]), full[::-1], rtol=1e-5, atol=1e-6)
    again = clone(clf).fit(X, y)
    np.testing.assert_array_equal(again.local_support_.support_rows, clf.local_support_.support_rows)
    other = clone(clf).set_params(random_state=1).fit(X, y)
    assert not np.array_equal(other.local_support_.centres, clf.local_support_.centres)


def test_nearest_support_selection_end_to_end(tiny_regressor_checkpoint):
    rng = np.random.RandomState(0)
    X = rng.randn(400, 3)
    target = X[:, 0] * 2
    reg = MitraRegressor(tiny_regressor_checkpoint, n_estimators=2, max_support_rows=64,
                         support_selection="nearest", batch_size=32, random_state=0).fit(X, target)
    pred, std = reg.predict(X[:50], return_std=True)
    assert pred.shape == std.shape == (50,)
    assert np.isfinite(pred).all() and (std >= 0).all()


def test_return_std_is_the_member_spread(tiny_regressor_checkpoint):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3)
    reg = MitraRegressor(tiny_regressor_checkpoint, n_estimators=3, random_state=0).fit(X, X[:, 0])
    mean, std = reg.predict(X, return_std=True)
    members = reg._predict_members(X)
    np.testing.assert_allclose(mean, np.mean(members, axis=0))
    np.testing.assert_allclose(std, np.std(members, axis=0))
    np.testing.assert_array_equal(reg.predict(X), mean)
    single = clone(reg).set_params(n_estimators=1).fit(X, X[:, 0])
    assert (single.predict(X, return_std=True)[1] == 0).all()


def test_row_slicing_does_not_change_outputs(monkeypatch):
    torch.manual_seed(0)
    model = MitraModel(MitraConfig(dim=16, dim_output=10, n_layers=2, n_heads=2)).eval()
    xs, xq = torch.randn(1, 300, 5), torch.randn(1, 70, 5)
    ys = torch.randint(0, 4, (1, 300))
    with torch.no_grad():
        whole = model(xs, ys, xq)
        monkeypatch.setattr(model_module, "_ROW_SLICE_CELLS", 100)
        sliced = model(xs, ys, xq)
    torch.testing.assert_close(sliced, whole, atol=1e-5, rtol=0)


def _three_support_sets(model):
    """Three encoded support sets of different sizes (5 features) for `model`."""
    caches = []
    for rows in (40, 300, 90):
        xs, ys = torch.randn(1, rows, 5), torch.randint(0, 4, (1, rows))
        caches.append(model.encode_support(xs, ys))
    return caches


def test_grouped_queries_give_each_group_its_own_support_predictions():
    torch.manual_seed(0)
    model = MitraModel(MitraConfig(dim=16, dim_output=10, n_layers=2, n_heads=2)).eval()
    caches, sizes = _three_support_sets(model), [3, 1, 6]
    xq = torch.randn(1, sum(sizes), 5)
    grouped = model.predict_query_groups(caches, xq, sizes)
    apart = torch.cat([model.predict_query(c, part) for c, part in zip(caches, xq.split(sizes, dim=1))], dim=1)
    torch.testing.assert_close(grouped, apart, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="do not cover"):
        model.predict_query_groups(caches, xq, [3, 1, 5])


def test_grouped_runner_batches_by_chunk_and_falls_back_on_out_of_memory(monkeypatch):
    from mitra_sklearn._inference import InferenceRunner

    torch.manual_seed(0)
    model = MitraModel(MitraConfig(dim=16, dim_output=10, n_layers=2, n_heads=2)).eval()
    caches = _three_support_sets(model)
    # chunk of 4 rows: the first two groups share a batch, 7 runs on its own, then 3
    caches, sizes = caches + caches[:1], [2, 1, 7, 3]
    runner = InferenceRunner(model, torch.device("cpu"), torch.float32, batch_size=4)
    xq = np.random.RandomState(0).randn(sum(sizes), 5)
    apart = np.concatenate([runner.predict(None, None, part, cache=c)
                            for c, part in zip(caches, np.split(xq, np.cumsum(sizes)[:-1]))])
    np.testing.assert_allclose(runner.predict_groups(caches, xq, sizes), apart, atol=1e-5)

    real, failed = model.predict_query_groups, []

    def out_of_memory(caches, x_query, group_rows, **kwargs):  # batches of several groups run out of memory
        if len(caches) > 1:
            failed.append(group_rows)
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(caches, x_query, group_rows, **kwargs)

    monkeypatch.setattr(model, "predict_query_groups", out_of_memory)
    np.testing.assert_allclose(runner.predict_groups(caches, xq, sizes), apart, atol=1e-5)
    assert failed == [[2, 1]]  # the batch failed and its groups ran one by one


def test_a_single_bf16_query_row_attends_as_in_float32():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 1, 8), torch.randn(3, 2, 512, 8), torch.randn(3, 2, 512, 8)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    got = model_module._sdpa(q.bfloat16(), k.bfloat16(), v.bfloat16(), None)
    assert got.shape == expected.shape and got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, atol=2e-2, rtol=0)


def test_auto_chunk_and_cache_size_estimates():
    config = MitraConfig(**OFFICIAL_SHAPE)
    rows = auto_query_chunk(config, 8192, 20, torch.device("cpu"), torch.float32)
    assert 64 <= rows <= 16384 and rows % 64 == 0
    assert support_cache_bytes(config, 1024, 20, torch.float32) == 2 * 12 * 21 * 1024 * 512 * 4


def _fitted_on_small_table(checkpoint, batch_size, support_cache="predict"):
    """A one-member classifier on 50 rows, the rows and its undisturbed predictions."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(50, 3), rng.randint(0, 2, 50)
    clf = MitraClassifier(checkpoint, n_estimators=1, batch_size=batch_size, support_cache=support_cache,
                          random_state=0).fit(X, y)
    return clf, X, clf.predict_proba(X)


def test_out_of_memory_retries_with_smaller_query_slices_then_explains(tiny_classifier_checkpoint, monkeypatch):
    from mitra_sklearn.exceptions import MitraOutOfMemoryError
    from mitra_sklearn.model import Layer

    clf, X, expected = _fitted_on_small_table(tiny_classifier_checkpoint, batch_size=40)
    original, sizes = Layer.query_step, []

    def flaky(self, query, *args, **kwargs):
        sizes.append(query.shape[1])
        if query.shape[1] > 10:
            raise torch.OutOfMemoryError("simulated")
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(Layer, "query_step", flaky)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert max(sizes) == 40 and min(sizes) <= 10

    def always(self, *args, **kwargs):
        raise RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)")  # MPS: a plain RuntimeError

    monkeypatch.setattr(Layer, "query_step", always)
    with pytest.raises(MitraOutOfMemoryError, match="max_support_rows"):
        clf.predict_proba(X)


def test_out_of_memory_in_the_support_pass_explains(tiny_classifier_checkpoint, monkeypatch):
    from mitra_sklearn.exceptions import MitraOutOfMemoryError
    from mitra_sklearn.model import Layer

    clf, X, _ = _fitted_on_small_table(tiny_classifier_checkpoint, batch_size=10)

    def no_room(self, *args, **kwargs):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(Layer, "support_step", no_room)
    with pytest.raises(MitraOutOfMemoryError, match="50 support rows x 3 features"):
        clf.predict_proba(X)
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


@pytest.mark.parametrize("support_cache", ["off", "fit"])
def test_out_of_memory_retries_chunks_when_the_support_is_rerun_or_cached(
    tiny_classifier_checkpoint, monkeypatch, support_cache
):
    from mitra_sklearn.exceptions import MitraOutOfMemoryError

    clf, X, expected = _fitted_on_small_table(tiny_classifier_checkpoint, batch_size=40, support_cache=support_cache)
    # The pass over query rows: against the support set encoded in fit, or re-running it per chunk.
    method = "predict_query" if support_cache == "fit" else "forward"
    original, sizes = getattr(MitraModel, method), []

    def flaky(self, *args, **kwargs):
        sizes.append(args[-1].shape[1])  # the query rows of this chunk
        if args[-1].shape[1] > 10:
            raise torch.OutOfMemoryError("simulated")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MitraModel, method, flaky)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert max(sizes) == 40 and min(sizes) <= 10

    def always(self, *args, **kwargs):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(MitraModel, method, always)
    with pytest.raises(MitraOutOfMemoryError, match="max_support_rows"):
        clf.predict_proba(X)


@pytest.mark.parametrize("batch_size", [7, 64, 1000])
def test_layer_by_layer_predictions_match_and_progress_counts_every_row(batch_size):
    from mitra_sklearn._inference import InferenceRunner

    torch.manual_seed(0)
    model = MitraModel(MitraConfig(dim=16, dim_output=10, n_layers=3, n_heads=2)).eval()
    rng = np.random.RandomState(0)
    xs, ys, xq = rng.randn(40, 4).astype(np.float32), rng.randint(0, 3, 40), rng.randn(64, 4).astype(np.float32)

    class Counter:
        total = 0

        def update(self, n):
            self.total += n

    counter = Counter()
    cpu = torch.device("cpu")
    by_layer = InferenceRunner(model, cpu, torch.float32, batch_size=batch_size).predict(xs, ys, xq, progress=counter)
    per_chunk = InferenceRunner(model, cpu, torch.float32, batch_size=batch_size,
                                support_cache="off").predict(xs, ys, xq)
    np.testing.assert_allclose(by_layer, per_chunk, atol=1e-5, rtol=0)
    assert counter.total == len(xq)
