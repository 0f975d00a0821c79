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
