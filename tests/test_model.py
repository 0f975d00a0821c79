"""The model: parity with the official implementation, layout, invariances, padding, cache."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mitra_sklearn import Task, load_model
from mitra_sklearn.model import MitraConfig, MitraModel

from .conftest import PARITY

TASKS = ["classification", "regression"]


def _cases(task: str) -> dict[str, dict[str, torch.Tensor]]:
    tensors = load_file(str(PARITY / task / "cases.safetensors"))
    cases: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        case, name = key.split(".", 1)
        cases.setdefault(case, {})[name] = value
    return cases


@pytest.mark.parametrize("task", TASKS)
def test_parity_with_official_float32(task):
    """Same random weights, same inputs: our outputs match the official Tab2D to 1e-4."""
    model = load_model(PARITY / task, use_cache=False)
    cases = _cases(task)
    assert len(cases) >= 5
    for name, case in cases.items():
        with torch.no_grad():
            ours = model(case["x_support"], case["y_support"], case["x_query"])
        with torch.enable_grad():
            joint = model(case["x_support"], case["y_support"], case["x_query"]).detach()
        assert ours.shape == case["output"].shape, name
        torch.testing.assert_close(ours, case["output"], atol=1e-4, rtol=0, msg=name)
        torch.testing.assert_close(joint, case["output"], atol=1e-4, rtol=0, msg=name)


@pytest.mark.parametrize("task", TASKS)
def test_parity_with_official_bfloat16_autocast(task):
    """Under bf16 autocast (the official pipeline's precision) we stay within bf16 rounding."""
    model = load_model(PARITY / task, use_cache=False)
    for name, case in _cases(task).items():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            ours = model(case["x_support"], case["y_support"], case["x_query"]).float()
        torch.testing.assert_close(ours, case["output_bf16"], atol=3e-2, rtol=0, msg=name)


@pytest.mark.parametrize("task", TASKS)
def test_cached_support_gives_the_same_numbers(task):
    model = load_model(PARITY / task, use_cache=False)
    for name, case in _cases(task).items():
        with torch.enable_grad():  # with gradients enabled forward() runs both streams jointly, layer by layer
            joint = model(case["x_support"], case["y_support"], case["x_query"]).detach()
        with torch.no_grad():
            cache = model.encode_support(case["x_support"], case["y_support"])
            halves = [model.predict_query(cache, part) for part in case["x_query"].chunk(2, dim=1)]
            by_layer = model.predict_by_layer(case["x_support"], case["y_support"], case["x_query"],
                                              map_rows=lambda fn, x: torch.cat([fn(p) for p in x.split(3, dim=1)], 1))
        torch.testing.assert_close(torch.cat(halves, dim=1), joint, atol=1e-6, rtol=0, msg=name)
        torch.testing.assert_close(by_layer, joint, atol=1e-6, rtol=0, msg=name)


def test_inputs_are_not_modified():
    model = load_model(PARITY / "classification", use_cache=False)
    case = next(iter(_cases("classification").values()))
    xs, ys, xq = (case[k].clone() for k in ("x_support", "y_support", "x_query"))
    pad = torch.zeros(xs.shape[:2], dtype=torch.bool)
    pad[0, -1] = True
    with torch.no_grad():
        model(xs, ys, xq, padding_obs_support=pad)
    for key, tensor in zip(("x_support", "y_support", "x_query"), (xs, ys, xq)):
        assert torch.equal(tensor, case[key])


@pytest.mark.parametrize(
    "config, n_tensors, n_parameters",
    [
        (MitraConfig(512, 10, 12, 4, "CLASSIFICATION"), 392, 75_670_026),
        (MitraConfig(512, 1, 12, 4, "REGRESSION"), 393, 75_661_313),
    ],
)
def test_released_shape_state_dict_layout(config, n_tensors, n_parameters):
    """Names, count and sizes of the official checkpoints (Appendix A of the reference)."""
    with torch.device("meta"):
        model = MitraModel(config)
    state = model.state_dict()
    assert len(state) == n_tensors
    assert sum(t.numel() for t in state.values()) == n_parameters
    assert state["layers.11.attention2.o.weight"].shape == (512, 512)
    assert state["layers.0.linear1.weight"].shape == (2048, 512)
    assert state["final_layer.weight"].shape == (config.dim_output, 512)
    if config.task is Task.REGRESSION:
        assert state["y_embedding.y_embedding.weight"].shape == (512, 1)
        assert "y_embedding.y_embedding.bias" in state
    else:
        assert state["y_embedding.y_embedding.weight"].shape == (10, 512)
    assert list(state)[:2] == ["x_embedding.x_embedding.weight", "x_embedding.x_embedding.bias"]


def test_config_round_trip_and_validation(tmp_path):
    model = MitraModel(MitraConfig(dim=8, dim_output=3, n_layers=1, n_heads=2, task="classification"))
    model.save_pretrained(str(tmp_path))
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw == {"dim": 8, "dim_output": 3, "n_layers": 1, "n_heads": 2, "task": "CLASSIFICATION"}
    assert MitraConfig.from_dict(raw) == model.config
    with pytest.raises(ValueError, match="divisible"):
        MitraConfig(dim=10, n_heads=4)
    with pytest.raises(ValueError, match="task"):
        MitraConfig(task="ranking")
    with pytest.raises(ValueError, match="missing"):
        MitraConfig.from_dict({"dim": 8})


def _tiny(task="CLASSIFICATION", dim_output=None, seed=0):
    torch.manual_seed(seed)
    dim_output = dim_output or (10 if task == "CLASSIFICATION" else 1)
    return MitraModel(MitraConfig(dim=16, dim_output=dim_output, n_layers=2, n_heads=2, task=task)).eval()


def _table(n_support=30, n_query=7, n_features=4, seed=0, task="CLASSIFICATION"):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(1, n_support, n_features, generator=g)
    xq = torch.randn(1, n_query, n_features, generator=g)
    if task == "CLASSIFICATION":
        ys = torch.randint(0, 3, (1, n_support), generator=g)
    else:
        ys = torch.rand(1, n_support, generator=g)
    return xs, ys, xq


def test_permutation_invariance_and_query_independence():
    model = _tiny()
    xs, ys, xq = _table()
    with torch.no_grad():
        base = model(xs, ys, xq)
        rows = torch.randperm(xs.shape[1])
        torch.testing.assert_close(model(xs[:, rows], ys[:, rows], xq), base, atol=1e-5, rtol=0)
        cols = torch.tensor([2, 0, 3, 1])
        torch.testing.assert_close(model(xs[..., cols], ys, xq[..., cols]), base, atol=1e-5, rtol=0)
        torch.testing.assert_close(model(xs, ys, xq[:, 2:3]), base[:, 2:3], atol=1e-5, rtol=0)


@pytest.mark.parametrize("task", ["CLASSIFICATION", "REGRESSION"])
def test_padded_batch_equals_separate_tables(task):
    """Tables of different sizes in one padded batch give their unpadded results."""
    model = _tiny(task)
    shapes = [(30, 7, 4), (18, 5, 2), (25, 3, 3)]
    tables = [_table(*shape, seed=i, task=task) for i, shape in enumerate(shapes)]
    s_max, q_max, f_max = (max(s[i] for s in shapes) for i in range(3))
    b = len(shapes)
    xs = torch.zeros(b, s_max, f_max)
    ys = torch.zeros(b, s_max, dtype=tables[0][1].dtype)
    xq = torch.zeros(b, q_max, f_max)
    pad_s = torch.ones(b, s_max, dtype=torch.bool)
    pad_q = torch.ones(b, q_max, dtype=torch.bool)
    pad_f = torch.ones(b, f_max, dtype=torch.bool)
    for i, ((s, q, f), (t_xs, t_ys, t_xq)) in enumerate(zip(shapes, tables)):
        xs[i, :s, :f], ys[i, :s], xq[i, :q, :f] = t_xs[0], t_ys[0], t_xq[0]
        pad_s[i, :s], pad_q[i, :q], pad_f[i, :f] = False, False, False
    if task == "CLASSIFICATION":
        ys[pad_s] = -100
    with torch.enable_grad():  # the joint, trainable path
        joint = model(xs, ys, xq, pad_f, pad_s, pad_q).detach()
    with torch.no_grad():
        batched = model(xs, ys, xq, pad_f, pad_s, pad_q)
        cache = model.encode_support(xs, ys, pad_f, pad_s)
        cached = model.predict_query(cache, xq)
        for i, ((_s, q, _f), table) in enumerate(zip(shapes, tables)):
            alone = model(*table)
            torch.testing.assert_close(joint[i, :q], alone[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(batched[i, :q], alone[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(cached[i, :q], alone[0], atol=1e-5, rtol=0)


def test_gradient_checkpointing_gives_same_loss_and_gradients():
    model = _tiny()
    xs, ys, xq = _table()
    model.train()
    out = model(xs, ys, xq).sum()
    out.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing = True
    out2 = model(xs, ys, xq).sum()
    out2.backward()
    torch.testing.assert_close(out2, out)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], msg=n)


def test_binned_regression_head_and_zero_feature_table():
    model = _tiny("REGRESSION", dim_output=8)
    xs, _, xq = _table(task="REGRESSION")
    ys = torch.randint(0, 8, (1, xs.shape[1]))
    with torch.no_grad():
        assert model(xs, ys, xq).shape == (1, xq.shape[1], 8)
    scalar = _tiny("REGRESSION")
    with torch.no_grad():
        assert scalar(xs, ys.float() / 7, xq).shape == (1, xq.shape[1])


def test_float64_model_runs():
    model = _tiny().double()
    xs, ys, xq = _table()
    with torch.no_grad():
        out = model(xs.double(), ys, xq.double())
    assert out.dtype == torch.float64


def test_quantiles_equal_torch_quantile_and_have_no_size_limit():
    from mitra_sklearn.model import N_QUANTILE_LEVELS, fit_quantile_stats

    torch.manual_seed(0)
    x = torch.randn(2, 37, 5)  # (b, s, f) with ties below
    x[:, :10, 0] = 1.0
    levels = torch.arange(1, N_QUANTILE_LEVELS + 1, dtype=torch.float32) / 1000
    stats = fit_quantile_stats(x)
    expected = torch.quantile(x.transpose(1, 2), levels, dim=-1).permute(1, 2, 0)
    assert torch.equal(stats.boundaries, expected)
    pad = torch.zeros(2, 37, dtype=torch.bool)
    pad[1, 30:] = True
    padded = fit_quantile_stats(x, pad)
    expected = torch.nanquantile(x.transpose(1, 2).masked_fill(pad[:, None, :], float("nan")), levels, dim=-1)
    assert torch.equal(padded.boundaries, expected.permute(1, 2, 0))
    # torch.quantile refuses more than 2**24 values; ours does not.
    big = torch.randn(1, 4100, 4100)
    assert fit_quantile_stats(big).boundaries.shape == (1, 4100, N_QUANTILE_LEVELS)


def test_training_under_cpu_bf16_autocast_attends_in_float32(monkeypatch):
    # The CPU flash kernel's bf16 backward is about 2x slower than its float32 one: training
    # (gradients on) runs the attention in float32 and the rest in bf16; prediction keeps bf16.
    import torch.nn.functional as F

    import mitra_sklearn.model as model_module

    seen, sdpa = [], F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, **kwargs):
        seen.append(q.dtype)
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(model_module.F, "scaled_dot_product_attention", recording_sdpa)
    torch.manual_seed(0)
    model = MitraModel(MitraConfig(dim=32, n_layers=1, n_heads=2, dim_output=3, task="CLASSIFICATION"))
    x_support, x_query = torch.randn(2, 40, 3), torch.randn(2, 8, 3)
    y_support = torch.randint(0, 3, (2, 40))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x_support, y_support, x_query)
    assert seen and set(seen) == {torch.float32}
    assert logits.dtype == torch.bfloat16
    logits.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)

    seen.clear()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(x_support, y_support, x_query)
    assert seen and set(seen) == {torch.bfloat16}
