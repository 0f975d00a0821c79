"""Generalizability matrix G and performance vector P on tiny random checkpoints."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from pretraining import generalizability as gz

from ..conftest import make_tiny_checkpoint

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
SMALL = dict(n_tables=3, n_support=60, n_query=20)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gz")
    return {
        "scm": str(make_tiny_checkpoint(folder / "scm", "CLASSIFICATION", seed=1)),
        "dt": str(make_tiny_checkpoint(folder / "dt", "CLASSIFICATION", seed=2)),
    }


@pytest.fixture(scope="module")
def result(checkpoints):
    return gz.generalizability_matrix(checkpoints, ["scm", "dt"], **SMALL, seed=0, real_data="sklearn")


def test_eval_tables_are_seeded_and_valid():
    a = gz.make_eval_tables("dt", **SMALL, seed=5)
    b = gz.make_eval_tables("dt", **SMALL, seed=5)
    c = gz.make_eval_tables("dt", **SMALL, seed=6)
    assert len(a) == 3
    for ta, tb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ta.x_support, tb.x_support)
        np.testing.assert_array_equal(ta.y_query, tb.y_query)
    assert any(not np.array_equal(ta.x_support, tc.x_support) for ta, tc in zip(a, c, strict=True))
    for t in a:
        assert t.x_support.shape[0] == 60 and t.x_query.shape[0] == 20
        assert 2 <= t.x_support.shape[1] <= 16  # PriorConfig().n_features
        assert np.array_equal(np.unique(t.y_support), np.arange(t.n_classes))  # every class in support
        assert set(np.unique(t.y_query)) <= set(range(t.n_classes))
    fixed = gz.make_eval_tables("scm", n_tables=2, n_support=30, n_query=10, n_features=5, n_classes=3)
    assert all(t.x_support.shape[1] == 5 and t.n_classes <= 3 for t in fixed)


def test_matrix_shape_and_range(result):
    assert result.models == ["scm", "dt"] and result.priors == ["scm", "dt"]
    assert set(result.G) == {"auc", "accuracy", "ce"}
    for metric in ("auc", "accuracy"):
        G = result.G[metric]
        assert G.shape == (2, 2)
        assert np.all((G >= 0) & (G <= 1))
        assert result.P[metric].shape == (2,)
        assert np.all((result.P[metric] >= 0) & (result.P[metric] <= 1))
    assert np.all(result.G["ce"] > 0)
    per_table = result.per_table
    assert len(per_table) == 2 * 2 * 3
    # G is the mean of the per-table scores.
    mean = per_table[(per_table["model"] == "dt") & (per_table["prior"] == "scm")]["accuracy"].mean()
    assert result.G["accuracy"][1, 0] == pytest.approx(mean)


def test_every_model_sees_the_same_tables(result):
    per_table = result.per_table
    columns = ["prior", "table", "n_classes", "n_features"]
    shapes = [g[columns].to_numpy().tolist() for _, g in per_table.groupby("model")]
    assert len(shapes) == 2 and shapes[0] == shapes[1]


def test_files_written(result, tmp_path):
    written = gz.save_generalizability(result, tmp_path)
    names = {p.name for p in written}
    assert {"G_auc.csv", "G_accuracy.csv", "G_ce.csv", "generalizability.json", "per_table.csv"} <= names
    frame = pd.read_csv(tmp_path / "G_auc.csv", index_col="model")
    assert list(frame.columns) == ["scm", "dt", "P"] and list(frame.index) == ["scm", "dt"]
    np.testing.assert_allclose(frame[["scm", "dt"]].to_numpy(), result.G["auc"])
    payload = json.loads((tmp_path / "generalizability.json").read_text())
    assert np.array(payload["G"]["accuracy"]).shape == (2, 2)
    assert set(payload["distinctiveness"]["auc"]) == {"scm", "dt"}
    if not HAS_MATPLOTLIB:
        pytest.skip("matplotlib not installed: heatmap not drawn")
    assert (tmp_path / "G_auc.png").stat().st_size > 0


def test_cli_without_real_data(checkpoints, tmp_path, capsys):
    status = gz.main([
        "--checkpoint", f"scm={checkpoints['scm']}", "--checkpoint", f"dt={checkpoints['dt']}",
        "--n-tables", "2", "--n-support", "40", "--n-query", "10", "--n-features", "3-6",
        "--real-data", "none", "--out", str(tmp_path), "--quiet",
    ])
    assert status == 0  # `python -m pretraining generalizability` turns this into the exit code
    payload = json.loads((tmp_path / "generalizability.json").read_text())
    assert payload["priors"] == ["scm", "dt"]  # default: the checkpoint names that are priors
    assert all(v is None for v in payload["P"]["auc"])  # no real data asked for
    assert payload["settings"]["n_features"] == [3, 6]
    assert (tmp_path / "G_ce.csv").exists()
    assert "| model | scm | dt | P |" in capsys.readouterr().out


def test_task_mismatch_is_rejected(checkpoints, tmp_path):
    reg = make_tiny_checkpoint(tmp_path / "reg", "REGRESSION")
    with pytest.raises(ValueError, match="regression model"):
        gz.generalizability_matrix({"scm": reg}, ["scm"], **SMALL)


def test_regression_matrix(tmp_path):
    reg = str(make_tiny_checkpoint(tmp_path / "reg", "REGRESSION"))
    out = gz.generalizability_matrix({"scm": reg}, ["scm", "dsrf"], n_tables=2, n_support=40, n_query=10,
                                     task="regression", real_data=None)
    assert set(out.G) == {"rmse", "r2"} and out.G["rmse"].shape == (1, 2)
    assert np.isfinite(out.G["rmse"]).all()


# ----------------------------------------------------------------------------- the support/query split
def _replay(seed: int, n_rows: int, permutations: int) -> dict:
    rng = np.random.default_rng(seed)
    for _ in range(permutations):
        rng.permutation(n_rows)
    return rng.bit_generator.state


def test_split_puts_every_class_in_the_support_set():
    from pretraining.data import split_support_query

    y = np.repeat(np.arange(6), [30, 5, 5, 3, 2, 1])  # rare classes make first shuffles fail
    accepted = 0
    for seed in range(40):
        rows = split_support_query(np.random.default_rng(seed), y, 20, "classification", 6, tries=10)
        if rows is None:
            continue
        accepted += 1
        support, query = rows
        assert len(support) == 20 and len(query) == len(y) - 20
        assert np.array_equal(np.sort(np.concatenate([support, query])), np.arange(len(y)))
        assert np.array_equal(np.unique(y[support]), np.arange(6))
    assert 0 < accepted < 40  # some seeds need re-splits, some run out of tries
    # Fewer support rows than classes can never work.
    assert split_support_query(np.random.default_rng(0), y, 5, "classification", 6, tries=5) is None


def test_split_is_deterministic_and_costs_one_permutation_per_try():
    # The pretraining stream resumes on this: same rng calls in the same order as before.
    from pretraining.data import split_support_query

    y = np.repeat(np.arange(4), [40, 4, 4, 2])
    for seed in range(30):
        a = np.random.default_rng(seed)
        first = split_support_query(a, y, 12, "classification", 4)
        b = np.random.default_rng(seed)
        second = split_support_query(b, y, 12, "classification", 4)
        assert (first is None) == (second is None)
        if first is not None:
            np.testing.assert_array_equal(first[0], second[0])
            np.testing.assert_array_equal(first[1], second[1])
        # The state equals that of k plain permutations: k = the accepted try, or all 3 tries.
        states = [_replay(seed, len(y), k) for k in (1, 2, 3)]
        assert a.bit_generator.state in states
        if first is None:
            assert a.bit_generator.state == states[2]
        else:  # the first permutation that put every class in the support set was kept
            rng = np.random.default_rng(seed)
            tries = [rng.permutation(len(y)) for _ in range(states.index(a.bit_generator.state) + 1)]
            np.testing.assert_array_equal(first[0], tries[-1][:12])
            assert all(np.unique(y[t[:12]]).size < 4 for t in tries[:-1])
    # Regression takes the first shuffle.
    rng = np.random.default_rng(1)
    support, _ = split_support_query(rng, np.zeros(10), 4, "regression", 0)
    assert rng.bit_generator.state == _replay(1, 10, 1)
    np.testing.assert_array_equal(support, np.random.default_rng(1).permutation(10)[:4])


def test_split_rejects_bad_arguments():
    from pretraining.data import split_support_query

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="task must be"):
        split_support_query(rng, np.zeros(5), 2, "ranking", 2)
    with pytest.raises(ValueError, match="n_support"):
        split_support_query(rng, np.zeros(5), 6, "regression", 0)
    with pytest.raises(ValueError, match="tries"):
        split_support_query(rng, np.zeros(5), 2, "regression", 0, tries=0)


def test_stream_and_eval_tables_use_the_one_split(monkeypatch):
    import pretraining.data as data
    from pretraining.config import PriorConfig

    calls = []
    real = data.split_support_query

    def spy(rng, y, n_support, task, n_classes, tries=3):
        calls.append(tries)
        return real(rng, y, n_support, task, n_classes, tries)

    monkeypatch.setattr(data, "split_support_query", spy)
    monkeypatch.setattr(gz.tables, "split_support_query", spy)
    config = PriorConfig(n_support=(8, 16), n_query=(4, 8), n_features=(2, 4))
    data.SyntheticTableStream("classification", 2, config, prior="dt", seed=0, rank=0, world_size=1).make_batch(0)
    assert calls and set(calls) == {3}  # the stream: up to 3 re-splits
    calls.clear()
    gz.make_eval_tables("dt", n_tables=2, n_support=16, n_query=4)
    assert calls and set(calls) == {10}  # the evaluation tables: up to 10


# ----------------------------------------------------------------------------- the result object
def test_result_is_a_dataclass_with_metric_directions(result):
    from pretraining.evaluate import HIGHER_IS_BETTER

    assert isinstance(result, gz.GeneralizabilityResult)
    assert result.task == "classification" and result.metrics == ["auc", "accuracy", "ce"]
    for metric in result.metrics:
        assert result.higher_is_better(metric) == HIGHER_IS_BETTER[gz.G_METRICS["classification"][metric]]
    assert not result.higher_is_better("ce")
    frame = result.frame("accuracy")
    assert list(frame.columns) == ["scm", "dt", "P"] and frame.index.name == "model"
    np.testing.assert_array_equal(frame[["scm", "dt"]].to_numpy(), result.G["accuracy"])
    with pytest.raises(ValueError, match="unknown metric 'rmse'"):
        result.frame("rmse")
    payload = result.to_dict()
    assert payload["metrics"]["ce"] == {"higher_is_better": False} and "per_table" not in payload


def test_unknown_real_data_suite_is_rejected(checkpoints):
    with pytest.raises(ValueError, match="real_data must be None or a suite"):
        gz.generalizability_matrix(checkpoints, ["scm"], **SMALL, real_data="kaggle")


def test_progress_bar_only_when_verbose(checkpoints, capsys):
    kwargs = dict(priors=["scm"], n_tables=2, n_support=40, n_query=10, n_features=(3, 4), real_data=None)
    gz.generalizability_matrix({"scm": checkpoints["scm"]}, **kwargs)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    gz.generalizability_matrix({"scm": checkpoints["scm"]}, verbose=True, **kwargs)
    err = capsys.readouterr().err
    assert "G matrix" in err and "2/2" in err and "scm on scm" in err
