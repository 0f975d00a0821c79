"""Scoring on a real Dask cluster: ``dask_ml.wrappers.ParallelPostFit`` and ``map_partitions``.

A `distributed.LocalCluster` of 2 worker processes x 1 thread on the loopback interface (the
``[dask]`` extra; skipped without it). The estimator travels to the workers without its weights;
each worker loads the model once and encodes each member's support set once, whatever the number
of partitions it scores, and the probabilities are those of a local call (to 1e-6 in float32).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
wrappers = pytest.importorskip("dask_ml.wrappers")

from distributed import Client, LocalCluster  # noqa: E402 - after the skips above

from mitra_sklearn import MitraClassifier, MitraRegressor  # noqa: E402
from mitra_sklearn._runtime import process_cache_info  # noqa: E402

N_PARTITIONS = 8


@pytest.fixture(scope="module")
def client():
    # Processes, loopback only, no dashboard: what CI can run; the workers inherit the tests'
    # offline Hub settings from the environment (conftest).
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def table():
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(600, 6), columns=[f"x{i}" for i in range(6)])
    X["colour"] = pd.Categorical(rng.choice(["red", "green", "blue"], len(X)))
    y_class = np.where(X["x0"] + X["x1"] * (X["colour"] == "red") > 0, "yes", "no")
    y_value = X["x0"] - 2 * X["x1"] + 0.1 * rng.randn(len(X))
    return X, y_class, y_value


def _worker_counts(client) -> dict[str, dict[str, int]]:
    return client.run(process_cache_info)


def test_parallel_post_fit_scores_a_dask_dataframe_as_a_local_call(client, table):
    X, y, _ = table
    train, test = X.iloc[:200], X.iloc[200:]
    clf = MitraClassifier("mitra-small-classifier", n_estimators=3, inference_precision="float32",
                          random_state=0).fit(train, y[:200])
    expected_proba, expected_labels = clf.predict_proba(test), clf.predict(test)
    before = _worker_counts(client)

    model = wrappers.ParallelPostFit(clf)
    ddf = dd.from_pandas(test, npartitions=N_PARTITIONS)
    proba = model.predict_proba(ddf).compute()
    np.testing.assert_allclose(proba, expected_proba, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(model.predict(ddf).compute(), expected_labels)

    # Each worker built the model at most once and encoded each member's support set at most once
    # for the 2 x 8 partitions it shared with the other worker: a partition costs only its rows.
    after = _worker_counts(client)
    built = {w: after[w]["models_built"] - before[w]["models_built"] for w in after}
    encoded = {w: after[w]["support_sets_encoded"] - before[w]["support_sets_encoded"] for w in after}
    assert all(n <= 1 for n in built.values()) and sum(built.values()) >= 1, built
    assert all(n <= clf.n_estimators_ for n in encoded.values()) and sum(encoded.values()) >= clf.n_estimators_, (
        encoded)


def test_map_partitions_scores_a_regressor_as_a_local_call(client, table):
    X, _, y = table
    reg = MitraRegressor("mitra-small-regressor", n_estimators=2, inference_precision="float32",
                         random_state=0).fit(X.iloc[:200], y[:200])
    expected = reg.predict(X.iloc[200:])
    ddf = dd.from_pandas(X.iloc[200:], npartitions=N_PARTITIONS)
    predicted = ddf.map_partitions(lambda part, est: pd.Series(est.predict(part), index=part.index), reg,
                                   meta=("prediction", "f8")).compute()
    np.testing.assert_allclose(predicted.to_numpy(), expected, rtol=0, atol=1e-6)
    assert predicted.index.equals(X.index[200:])


def test_the_default_precision_scores_within_its_documented_tolerance(client, table):
    # 'auto' is bf16 autocast on CPUs with native bf16: probabilities within 0.01 of a local call
    # (equal on other CPUs, where 'auto' is float32).
    X, y, _ = table
    clf = MitraClassifier("mitra-small-classifier", n_estimators=2, random_state=0).fit(X.iloc[:200], y[:200])
    ddf = dd.from_pandas(X.iloc[200:], npartitions=N_PARTITIONS)
    proba = wrappers.ParallelPostFit(clf).predict_proba(ddf).compute()
    np.testing.assert_allclose(proba, clf.predict_proba(X.iloc[200:]), rtol=0, atol=0.01)


def test_a_fitted_estimator_ships_to_the_workers_without_its_weights(client, table):
    X, y, _ = table
    clf = MitraClassifier("mitra-small-classifier", n_estimators=2, random_state=0).fit(X.iloc[:200], y[:200])
    clf.predict_proba(X.iloc[:5])  # loaded and used here: the weights are in this process
    weights_bytes = sum(t.numel() * t.element_size() for t in clf._inference_model().state_dict().values())
    assert len(pickle.dumps(clf)) < weights_bytes / 4
    shipped = client.scatter(clf, broadcast=True)

    def on_worker(est):
        state = est.__dict__
        return "_runtime" in state and not state["_runtime"].models and len(est.predict_proba(X.iloc[:5]))

    assert client.submit(on_worker, shipped).result() == 5
