"""Parity with the official code for Mitra v2's 1,000-bin regression head (issue 24).

The fixture (tests/fixtures/parity/regression-binned/, made by scripts/make_parity_fixture_v2.py
with AutoGluon 1.6.3 and mitra-finetune 0.3.0) holds a random-weight official Tab2D with a
1,000-bin head, and for each case what the official pipeline computed: the scaled support
targets, their bin ids, the logits, the point predictions (stock AutoGluon's argmax-bin centre
and mitra-finetune's mean of the bin centres) and mitra-finetune's RegressionDistribution
(mean, CDF, quantiles). Predictions in units of y are compared relative to the target range:
the official decode runs in float32, so its last bit is about 1e-7 of the range. Measured (CPU,
torch 2.13.0): logits within 8.3e-7, point predictions within 7.7e-8 of the range, the
distribution's mean, quantiles and CDF within 5e-9.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from mitra_sklearn import load_model
from mitra_sklearn.tasks import (
    RegressionTask,
    TargetScaling,
    regression_bin_centres,
    regression_bin_edges,
)

from .conftest import PARITY

FIXTURE = PARITY / "regression-binned"
META = json.loads((FIXTURE / "cases.json").read_text())
TENSORS = load_file(str(FIXTURE / "cases.safetensors"))
TASK = RegressionTask(n_bins=1000)


def _members(case: dict) -> list[tuple[str, dict]]:
    """(tensor-name prefix, metadata) of each member of a case."""
    name = f"case_{case['name']}."
    if case["n_members"] == 1:
        return [(name, case["members"][0])]
    return [(f"{name}member{m['member']}.", m) for m in case["members"]]


def _member(mirror: bool) -> SimpleNamespace:
    return SimpleNamespace(mirror_target=mirror, mirror=lambda s: 1.0 - s if mirror else s)


CASES = META["cases"]


def test_bin_edges_and_centres_are_the_official_float32_values():
    np.testing.assert_array_equal(regression_bin_edges(1000), TENSORS["bins.edges"].astype(np.float64))
    np.testing.assert_array_equal(regression_bin_centres(1000), TENSORS["bins.centres"].astype(np.float64))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_targets_map_to_the_official_scaled_values_and_bins(case):
    y = TENSORS[f"case_{case['name']}.y_support"][0]
    for prefix, meta in _members(case):
        scaling = TargetScaling(meta["y_min"], meta["y_max"])
        scaled = _member(meta["mirror"]).mirror(scaling.scale(y)).astype(np.float32)
        np.testing.assert_array_equal(scaled, TENSORS[prefix + "y_support_scaled"][0])
        np.testing.assert_array_equal(TASK._bin_ids(scaled), TENSORS[prefix + "y_support_bins"][0])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_model_gives_the_official_logits(case):
    model = load_model(FIXTURE, use_cache=False)
    assert model.config.dim_output == 1000
    name = f"case_{case['name']}."
    for prefix, _ in _members(case):
        with torch.no_grad():
            ours = model(torch.as_tensor(TENSORS[name + "x_support"]),
                         torch.as_tensor(TENSORS[prefix + "y_support_bins"]),
                         torch.as_tensor(TENSORS[name + "x_query"]))
        np.testing.assert_allclose(ours.numpy(), TENSORS[prefix + "logits"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_point_prediction_is_mitra_finetunes_mean_of_the_bin_centres(case):
    predictions = []
    for prefix, meta in _members(case):
        scaling = TargetScaling(meta["y_min"], meta["y_max"])
        span = meta["y_max"] - meta["y_min"]
        ours = TASK.member_prediction(_member(meta["mirror"]), TENSORS[prefix + "logits"][0], scaling)
        np.testing.assert_allclose(ours, TENSORS[prefix + "pred_mean"][0], rtol=0, atol=1e-6 * span)
        predictions.append(ours)
    if case["n_members"] > 1:  # the bag average of the members' predictions
        name = f"case_{case['name']}."
        span = max(m["y_max"] - m["y_min"] for m in case["members"])
        np.testing.assert_allclose(TASK.combine(predictions, []), TENSORS[name + "pred_mean_bagged"][0],
                                   rtol=0, atol=1e-6 * span)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_distribution_is_mitra_finetunes_mixture(case):
    name = f"case_{case['name']}."
    rows = []
    for prefix, meta in _members(case):
        rows.append(TASK.member_histogram(_member(meta["mirror"]), TENSORS[prefix + "logits"][0],
                                          TargetScaling(meta["y_min"], meta["y_max"])))
        # Each member's bins in y units (a mirrored member's mirrored), as the official collector maps them.
        edges = TASK.distribution([rows[-1]]).bin_edges[0]
        np.testing.assert_allclose(edges, TENSORS[prefix + "bin_edges_y"], rtol=1e-12, atol=0)
    distribution = TASK.distribution(rows)
    span = max(m["y_max"] - m["y_min"] for m in case["members"])
    np.testing.assert_allclose(distribution.mean(), TENSORS[name + "dist_mean"][0], rtol=0, atol=1e-6 * span)
    levels = META["quantile_levels"]
    np.testing.assert_allclose(distribution.quantile(levels), TENSORS[name + "dist_quantiles"][0], rtol=0,
                               atol=1e-7 * span)
    y_true = TENSORS[name + "y_query_true"][0]
    np.testing.assert_allclose(distribution.cdf(y_true), TENSORS[name + "dist_cdf"][0], atol=1e-7)
