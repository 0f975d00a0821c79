"""Muon, the weight average (EMA) and warm starts across depth (issue 25): more model per CPU-hour."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mitra_sklearn.model import MitraModel
from pretraining.cli import main as cli_main
from pretraining.config import TrainConfig, preset
from pretraining.optim import (
    MuonWithAdamW,
    build_optimizer,
    load_optimizer_state,
    muon_parameters,
)
from pretraining.runfolder import RunFolder, latest_checkpoint
from pretraining.train import layer_mapping, model_config, train

from .test_train import _records, _weights

CPU = torch.device("cpu")
NEW_FIELDS = ("optimizer", "muon_lr", "muon_momentum", "ema_decay", "head_lr_scale")


def _training_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return RunFolder.read_state(checkpoint)["training_weights"]


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], **tolerance: float) -> None:
    assert a.keys() == b.keys()
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, **({"rtol": 0, "atol": 0} | tolerance), msg=name)


def _with_fake_gradients(model: MitraModel) -> None:
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)


# ---------------------------------------------------------------------------- Muon
def test_muon_groups_hold_every_parameter_once_and_only_layer_matrices_in_muon():
    config = preset("tiny", optimizer="muon")
    model = MitraModel(model_config(config))
    optimizer = build_optimizer(model, config, CPU)
    assert isinstance(optimizer, MuonWithAdamW)
    grouped = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))
    names = {id(p): name for name, p in model.named_parameters()}
    in_muon = [names[id(p)] for group in optimizer.muon.param_groups for p in group["params"]]
    # q/k/v/o of both attentions and the four MLP linears, in every layer; nothing else.
    assert len(in_muon) == 12 * config.n_layers
    assert all(n.startswith("layers.") and n.endswith(".weight") and "layer_norm" not in n for n in in_muon)
    assert {id(p) for p in muon_parameters(model)} == {id(p) for g in optimizer.muon.param_groups for p in g["params"]}
    # The AdamW groups keep their decay / no-decay settings; the head's matrix still decays.
    decay, no_decay = optimizer.adamw.param_groups
    assert [names[id(p)] for p in decay["params"]] == ["final_layer.weight"] and decay["weight_decay"] == 0.01
    assert no_decay["weight_decay"] == 0.0 and optimizer.muon.param_groups[0]["lr"] == config.muon_lr
    plain = build_optimizer(model, preset("tiny"), CPU)  # the default: the AdamW of before issue 25
    before = torch.optim.AdamW(model.optimizer_groups(config.weight_decay), lr=config.lr,
                               betas=(config.beta1, config.beta2), fused=False)
    assert type(plain) is torch.optim.AdamW and plain.state_dict() == before.state_dict()


def test_muon_state_dict_has_one_optimizers_layout_and_loads_back():
    config = preset("tiny", optimizer="muon")
    model = MitraModel(model_config(config))
    optimizer = build_optimizer(model, config, CPU)
    _with_fake_gradients(model)
    optimizer.step()
    saved = optimizer.state_dict()
    n_params = len(list(model.parameters()))
    assert sorted(saved["state"]) == list(range(n_params))  # every parameter has a state after a step
    assert sorted(i for g in saved["param_groups"] for i in g["params"]) == list(range(n_params))
    assert "momentum_buffer" in saved["state"][n_params - 1] and "exp_avg" in saved["state"][0]
    fresh = build_optimizer(model, config, CPU)
    fresh.load_state_dict(saved)
    for old, new in zip(optimizer.state_dict()["state"].values(), fresh.state_dict()["state"].values(), strict=True):
        _assert_equal(old, new)
    assert fresh.param_groups[-1] is fresh.muon.param_groups[0]  # the scheduler sets what Muon reads


def test_a_switch_to_muon_keeps_the_adam_moments_of_the_adamw_parameters():
    model = MitraModel(model_config(preset("tiny")))
    adamw_config, muon_config = preset("tiny"), preset("tiny", optimizer="muon")
    before = build_optimizer(model, adamw_config, CPU)
    _with_fake_gradients(model)
    before.step()
    after = build_optimizer(model, muon_config, CPU)
    load_optimizer_state(after, before.state_dict(), model, muon_config, adamw_config, CPU)
    matrices = {id(p) for p in muon_parameters(model)}
    assert len(after.muon.state) == 0  # Muon's momentum starts afresh
    kept = [p for p in model.parameters() if id(p) not in matrices]
    assert len(after.adamw.state) == len(kept)
    for p in kept:
        _assert_equal(before.state[p], after.adamw.state[p])


def test_a_head_lr_scale_gives_the_head_its_own_rate_and_keeps_its_moments_on_resume():
    model = MitraModel(model_config(preset("tiny")))
    plain_config, scaled_config = preset("tiny"), preset("tiny", head_lr_scale=30.0)
    before = build_optimizer(model, plain_config, CPU)
    _with_fake_gradients(model)
    before.step()
    after = build_optimizer(model, scaled_config, CPU)
    load_optimizer_state(after, before.state_dict(), model, scaled_config, plain_config, CPU)
    head = {id(p) for p in model.final_layer.parameters()}
    rates = {id(p): group["lr"] for group in after.param_groups for p in group["params"]}
    assert len(rates) == len(list(model.parameters()))  # every parameter in exactly one group
    assert {rates[i] for i in head} == {plain_config.lr * 30.0}
    assert {rate for i, rate in rates.items() if i not in head} == {plain_config.lr}
    decays = {id(p): group["weight_decay"] for group in after.param_groups for p in group["params"]}
    assert decays[id(model.final_layer.weight)] > 0 and decays[id(model.final_layer.bias)] == 0
    for p in model.parameters():
        _assert_equal(before.state[p], after.state[p])
    with pytest.raises(ValueError, match="head_lr_scale"):
        preset("tiny", head_lr_scale=0.0)


def test_muon_run_trains_and_resumes_to_the_uninterrupted_weights(tmp_path):
    config = preset("tiny", optimizer="muon", steps=12, save_every=4, log_every=2)
    full = train(config, tmp_path / "full", progress=False)
    losses = _records(full.log_path, "loss")
    assert len(losses) == 6 and all(np.isfinite(r["loss"]) for r in losses)
    assert losses[0]["muon_lr"] == pytest.approx(config.muon_lr * losses[0]["lr"] / config.lr)
    assert train(config, tmp_path / "split", progress=False, stop_after=5).step == 5
    second = train(config, tmp_path / "split", progress=False)
    _assert_equal(_weights(full.checkpoint), _weights(second.checkpoint))


# ---------------------------------------------------------------------------- weight average
def test_checkpoints_export_the_weight_average(tmp_path):
    config = preset("tiny", steps=4, save_every=1, keep_checkpoints=10, ema_decay=0.5, eval_every=100)
    train(config, tmp_path / "run", progress=False)
    folders = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))
    assert [RunFolder.read_state(f)["ema_updates"] for f in folders] == [1, 2, 3, 4]
    for previous, current in itertools.pairwise(folders):
        n = RunFolder.read_state(previous)["ema_updates"]
        weight = 1 - min(0.5, (1 + n) / (10 + n))  # the warm-up of the decay
        average, weights = _weights(previous), _training_weights(current)
        expected = {k: average[k] + weight * (weights[k] - average[k]) for k in average}
        _assert_equal(expected, _weights(current), atol=1e-6, rtol=1e-6)
        assert not torch.equal(_weights(current)["final_layer.weight"], weights["final_layer.weight"])
    evals = _records(tmp_path / "run" / "log.jsonl", "eval_prior_loss")
    assert evals[-1]["step"] == 4 and "eval_prior_loss_raw" in evals[-1]


def test_weight_average_resumes_exactly(tmp_path):
    config = preset("tiny", steps=12, save_every=4, ema_decay=0.9)
    full = train(config, tmp_path / "full", progress=False)
    train(config, tmp_path / "split", progress=False, stop_after=6)
    second = train(config, tmp_path / "split", progress=False)
    _assert_equal(_weights(full.checkpoint), _weights(second.checkpoint))
    _assert_equal(_training_weights(full.checkpoint), _training_weights(second.checkpoint))


def test_weight_average_switched_on_at_resume_starts_from_the_weights_then(tmp_path):
    first = train(preset("tiny", steps=10, save_every=5), tmp_path / "run", progress=False, stop_after=5)
    then = _weights(first.checkpoint)  # no average yet: the training weights
    second = train(preset("tiny", steps=10, save_every=5, ema_decay=0.999), tmp_path / "run", progress=False,
                   stop_after=6)
    assert RunFolder.read_state(second.checkpoint)["ema_updates"] == 1
    now = _training_weights(second.checkpoint)
    expected = {k: then[k] + 0.9 * (now[k] - then[k]) for k in then}  # first decay: min(0.999, 1 / 10)
    _assert_equal(expected, _weights(second.checkpoint), atol=1e-6, rtol=1e-6)


def test_campaign_switches_to_muon_and_averaging_on_resume(tmp_path):
    """``resume --set optimizer=muon --set ema_decay=...`` on a campaign saved with AdamW, no average."""
    campaign = tmp_path / "campaign"
    train(preset("tiny", steps=12, save_every=4), tmp_path / "run", progress=False, stop_after=4, campaign=campaign)
    assert cli_main(["resume", str(campaign), "--out", str(tmp_path / "run"), "--set", "optimizer=muon",
                     "--set", "ema_decay=0.99", "--stop-after", "8", "--no-progress"]) == 0
    manifest = json.loads((campaign / "state" / "manifest.json").read_text())
    assert manifest["train_state"]["ema_updates"] == 4 and len(manifest["optimizer_param_groups"]) == 3
    assert any(name.startswith("training/") for name in manifest["dtypes"])
    saved = TrainConfig.from_dict(json.loads((campaign / "train_config.json").read_text()))
    assert (saved.optimizer, saved.ema_decay) == ("muon", 0.99)
    assert cli_main(["resume", str(campaign), "--out", str(tmp_path / "fresh"), "--no-progress"]) == 0
    resumed = latest_checkpoint(tmp_path / "fresh")
    assert resumed.name == "step-0000012" and RunFolder.read_state(resumed)["ema_updates"] == 8
    saved, unpacked = (tmp_path / folder / "checkpoints" / "step-0000008" for folder in ("run", "fresh"))
    # bf16 packing: the average and the training weights close to, not equal to, the saved ones
    _assert_equal(_weights(saved), _weights(unpacked), atol=0.05, rtol=0.05)
    _assert_equal(_training_weights(saved), _training_weights(unpacked), atol=0.05, rtol=0.05)
    assert "muon_lr" in _records(tmp_path / "fresh" / "log.jsonl", "loss")[-1]


# ---------------------------------------------------------------------------- older runs
def test_a_run_saved_without_the_new_fields_resumes_as_before(tmp_path):
    assert all(getattr(TrainConfig.from_dict({}), name) == getattr(TrainConfig(), name) for name in NEW_FIELDS)
    assert (TrainConfig().optimizer, TrainConfig().ema_decay) == ("adamw", None)
    config = preset("tiny", steps=8, save_every=4)
    full = train(config, tmp_path / "full", progress=False)
    first = train(config, tmp_path / "old", progress=False, stop_after=4)
    old_config = {k: v for k, v in config.to_dict().items() if k not in NEW_FIELDS}  # as written before issue 25
    (tmp_path / "old" / "train_config.json").write_text(json.dumps(old_config))
    state = RunFolder.read_state(first.checkpoint)
    torch.save({**state, "config": json.dumps(old_config)}, first.checkpoint / "train_state.pt")
    resumed = train(TrainConfig.from_dict(old_config), tmp_path / "old", progress=False)
    _assert_equal(_weights(full.checkpoint), _weights(resumed.checkpoint))
    assert "training_weights" not in RunFolder.read_state(resumed.checkpoint)


def test_invalid_settings_are_refused():
    for changes in ({"optimizer": "sgd"}, {"muon_lr": 0.0}, {"muon_momentum": 1.0}, {"ema_decay": 1.0}):
        with pytest.raises(ValueError):
            preset("tiny", **changes)


def test_dry_run_states_the_optimizer_and_the_weight_average(capsys):
    assert cli_main(["train", "--preset", "tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "optimiser         AdamW lr 0.003" in out and "weight average    none" in out
    assert cli_main(["train", "--preset", "tiny", "--dry-run", "--set", "optimizer=muon",
                     "--set", "ema_decay=0.999"]) == 0
    out = capsys.readouterr().out
    assert "Muon lr 0.02 (momentum 0.95" in out and "AdamW lr 0.003" in out and "EMA decay 0.999" in out


# ---------------------------------------------------------------------------- warm start across depth
def test_layer_mapping_repeats_each_layer_in_order():
    assert layer_mapping(3, 6) == [0, 0, 1, 1, 2, 2]
    assert layer_mapping(2, 5) == [0, 0, 0, 1, 1]
    assert layer_mapping(3, 3) == [0, 1, 2]
    with pytest.raises(ValueError):
        layer_mapping(3, 2)


def test_deeper_warm_start_copies_the_layers_and_refuses_another_width(tmp_path):
    first = train(preset("tiny", steps=2, save_every=2), tmp_path / "first", progress=False)
    config = preset("tiny", n_layers=4, steps=1, save_every=1, lr=1e-12, warmup_steps=1,
                    init_from=str(first.checkpoint))
    deeper = train(config, tmp_path / "deeper", progress=False)
    source, target = _weights(first.checkpoint), _weights(deeper.checkpoint)
    assert sum(name.startswith("layers.3.") for name in target) == sum(name.startswith("layers.1.") for name in source)
    for name, tensor in target.items():
        if name.startswith("layers."):
            index, rest = name.removeprefix("layers.").split(".", 1)
            name = f"layers.{layer_mapping(2, 4)[int(index)]}.{rest}"  # 0, 0, 1, 1
        torch.testing.assert_close(tensor, source[name], atol=1e-6, rtol=0, msg=name)
    for shape in ({"dim": 64, "n_layers": 4}, {"n_layers": 1}):
        with pytest.raises(ValueError, match=r"dim 32 x 2 layers, 4 heads.*this run asks for dim"):
            train(preset("tiny", steps=1, init_from=str(first.checkpoint), **shape), tmp_path / "bad", progress=False)


def test_identity_growth_starts_the_deeper_model_as_the_source_function(tmp_path):
    from mitra_sklearn.checkpoint import load_model
    from pretraining.data import SyntheticTableStream

    first = train(preset("tiny", steps=2, save_every=2), tmp_path / "first", progress=False)
    batch = SyntheticTableStream("classification", 4, preset("tiny").priors, seed=3).make_batch(0)
    source = load_model(str(first.checkpoint)).eval()
    with torch.no_grad():
        expected = source(batch["x_support"], batch["y_support"], batch["x_query"])
    outputs = {}
    for grow in ("identity", "repeat"):
        config = preset("tiny", n_layers=4, steps=1, save_every=1, lr=1e-12, warmup_steps=1,
                        init_from=str(first.checkpoint), grow_layers=grow)
        deeper = load_model(str(train(config, tmp_path / grow, progress=False).checkpoint)).eval()
        assert deeper.config.n_layers == 4
        with torch.no_grad():
            outputs[grow] = deeper(batch["x_support"], batch["y_support"], batch["x_query"])
    torch.testing.assert_close(outputs["identity"], expected, atol=1e-5, rtol=1e-5)
    assert (outputs["repeat"] - expected).abs().max() > 1e-3  # repeating a layer changes the function
    with pytest.raises(ValueError, match="grow_layers must be one of"):
        preset("tiny", grow_layers="zeros")
