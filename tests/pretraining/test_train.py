"""The pretraining loop: loss goes down, resume is exact, DDP works, checkpoints load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mitra_sklearn import MitraClassifier, MitraRegressor
from pretraining.cli import main as cli_main
from pretraining.config import TrainConfig, preset
from pretraining.runfolder import latest_checkpoint
from pretraining.train import lr_factor, train

ROOT = Path(__file__).resolve().parents[2]


def _records(log_path: Path, key: str) -> list[dict]:
    return [r for r in map(json.loads, log_path.read_text().splitlines()) if key in r]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_tiny_run_lowers_the_loss_and_its_checkpoint_predicts(tmp_path, capsys):
    result = train(preset("tiny"), tmp_path / "run", progress=False)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""  # progress=False: nothing printed
    assert result.step == 30 and not result.stopped_early
    evals = _records(result.log_path, "eval_prior_loss")
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 30
    assert evals[-1]["eval_prior_loss"] < 0.9 * evals[0]["eval_prior_loss"]
    assert (tmp_path / "run" / "latest").resolve() == result.checkpoint.resolve()
    assert len(list((tmp_path / "run" / "checkpoints").glob("step-*"))) == 2  # keep_checkpoints
    rng = np.random.RandomState(0)
    X, y = rng.randn(40, 4), rng.randint(0, 3, 40)
    clf = MitraClassifier(str(tmp_path / "run" / "latest"), n_estimators=2, random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (40, 3)


def test_regression_run_checkpoint_loads_in_the_regressor(tmp_path):
    result = train(preset("tiny", task="regression", steps=6, save_every=6, eval_every=6), tmp_path / "r",
                   progress=False)
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    reg = MitraRegressor(str(result.checkpoint), n_estimators=1).fit(X, X[:, 0])
    assert np.isfinite(reg.predict(X)).all()


def test_binned_regression_head_trains_and_its_checkpoint_predicts(tmp_path):
    config = preset("tiny", task="regression", dim_output=16, steps=20, save_every=20, eval_every=20)
    result = train(config, tmp_path / "b", progress=False)
    evals = _records(result.log_path, "eval_prior_mse")
    assert [r["step"] for r in evals] == [0, 20]
    assert evals[-1]["eval_prior_loss"] < evals[0]["eval_prior_loss"]  # cross-entropy over the 16 bins
    assert evals[-1]["eval_prior_loss"] > 0.5 and evals[-1]["eval_prior_mse"] < 1.0  # CE, MSE: two scales
    assert _weights(result.checkpoint)["final_layer.weight"].shape[0] == 16
    assert "y_embedding.y_embedding.weight" in _weights(result.checkpoint)  # bin ids in, as in the estimator
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    reg = MitraRegressor(str(result.checkpoint), n_estimators=2, random_state=0).fit(X, 5 + X[:, 0])
    pred = reg.predict(X)
    assert np.isfinite(pred).all() and (pred > 5 + X[:, 0].min() - 2).all() and (pred < 5 + X[:, 0].max() + 2).all()


def test_binned_loss_and_mean_agree_with_the_estimator_bins():
    from mitra_sklearn.tasks import RegressionTask, binned_regression_loss, binned_regression_mean, regression_bin_ids

    scaled = torch.tensor([-1.0, -0.5, 0.0, 0.26, 0.5, 0.99, 1.0, 1.5, 3.0])
    task = RegressionTask(n_bins=8)
    # The official rule: bin k holds edges[k] < s <= edges[k + 1], so a value on an edge goes to the bin below.
    expected = [0, 0, 1, 3, 3, 5, 5, 7, 7]
    assert regression_bin_ids(scaled, 8).tolist() == task._bin_ids(scaled.numpy()).tolist() == expected
    sure = torch.full((len(scaled), 8), -30.0)
    sure[torch.arange(len(scaled)), regression_bin_ids(scaled, 8)] = 30.0
    assert float(binned_regression_loss(sure, scaled)) < 1e-6
    centres = torch.tensor([-0.375, -0.125, 0.125, 0.375, 0.625, 0.875, 1.125, 1.375])
    assert torch.allclose(binned_regression_mean(sure), centres[regression_bin_ids(scaled, 8)])
    valid = torch.tensor([True] * 8 + [False])
    wrong_last = sure.clone()
    wrong_last[-1] = sure[0]  # a wrong prediction on a padded row does not count
    assert float(binned_regression_loss(wrong_last, scaled, valid)) < 1e-6


def test_mean_loss_weight_adds_the_mse_of_the_bins_mean_to_the_cross_entropy():
    from mitra_sklearn.tasks import binned_regression_loss, binned_regression_mean
    from pretraining.train import compute_loss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 16, generator=generator, requires_grad=True)
    batch = {"y_query": torch.rand(2, 5, generator=generator),
             "padding_obs_query": torch.tensor([[False] * 5, [False] * 3 + [True] * 2])}
    valid = ~batch["padding_obs_query"]
    cross_entropy = binned_regression_loss(logits, batch["y_query"], valid)
    errors = (binned_regression_mean(logits) - batch["y_query"]) ** 2
    mse = errors[valid].mean()
    plain, extra = compute_loss(logits, batch, "regression")
    weighted, weighted_extra = compute_loss(logits, batch, "regression", mean_loss_weight=50.0)
    assert torch.allclose(plain, cross_entropy) and torch.allclose(extra["mse"], mse)
    assert torch.allclose(weighted, cross_entropy + 50.0 * mse)
    assert torch.allclose(weighted_extra["mse"], mse) and not weighted_extra["mse"].requires_grad
    # The mean's term changes the gradient of the real rows only.
    (grad_plain,) = torch.autograd.grad(plain, logits)
    (grad_weighted,) = torch.autograd.grad(weighted, logits)
    assert not torch.allclose(grad_plain, grad_weighted)
    assert torch.equal(grad_weighted[1, 3:], torch.zeros_like(grad_weighted[1, 3:]))  # padded rows: no gradient
    # A target far outside the bins' range [-0.5, 1.5] (a query beyond its support's range) counts
    # as the edge, where the cross-entropy puts it too; the logged MSE keeps the real error.
    far = {**batch, "y_query": batch["y_query"].clone()}
    far["y_query"][0, 0] = 40.0
    edge = {**batch, "y_query": batch["y_query"].clone()}
    edge["y_query"][0, 0] = 1.5
    far_loss, far_extra = compute_loss(logits, far, "regression", mean_loss_weight=50.0)
    edge_loss, edge_extra = compute_loss(logits, edge, "regression", mean_loss_weight=50.0)
    assert torch.allclose(far_loss, edge_loss)
    assert float(far_extra["mse"]) > 100 * float(edge_extra["mse"])


def test_mean_loss_weight_is_refused_without_a_binned_regression_head():
    with pytest.raises(ValueError, match="binned regression head"):
        preset("tiny", mean_loss_weight=1.0)  # classification
    with pytest.raises(ValueError, match="binned regression head"):
        preset("tiny", task="regression", mean_loss_weight=1.0)  # scalar head
    with pytest.raises(ValueError, match=">= 0"):
        preset("tiny", task="regression", dim_output=16, mean_loss_weight=-1.0)
    assert preset("tiny", task="regression", dim_output=16, mean_loss_weight=1.0).mean_loss_weight == 1.0


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    config = preset("tiny", steps=20, save_every=5)
    full = train(config, tmp_path / "full", progress=False)
    first = train(config, tmp_path / "split", progress=False, stop_after=8)  # saved at step 8 (final step)
    assert first.step == 8
    second = train(config, tmp_path / "split", progress=False)
    assert second.step == 20
    a, b = _weights(full.checkpoint), _weights(second.checkpoint)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_resume_drops_the_log_records_after_its_checkpoint(tmp_path):
    config = preset("tiny", steps=12, save_every=4, log_every=1, eval_every=100)
    train(config, tmp_path / "run", progress=False, stop_after=8)
    with open(tmp_path / "run" / "log.jsonl", "a") as log:  # what a run killed after step 8 leaves
        log.write(json.dumps({"step": 9, "loss": 123.0}) + "\n")
    train(config, tmp_path / "run", progress=False)
    steps = [r["step"] for r in _records(tmp_path / "run" / "log.jsonl", "loss")]
    assert steps == list(range(1, 13))
    assert all(r["loss"] != 123.0 for r in _records(tmp_path / "run" / "log.jsonl", "loss"))


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL at an arbitrary moment, restart: the final weights equal an uninterrupted run's."""
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "pretraining", "train", "--preset", "tiny", "--out", str(out), "--no-progress",
            "--set", "steps=40", "--set", "save_every=3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while latest_checkpoint(out) is None and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = latest_checkpoint(out)
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed = latest_checkpoint(out)
    assert resumed.name == "step-0000040"
    reference = train(preset("tiny", steps=40, save_every=3), tmp_path / "reference", progress=False)
    a, b = _weights(reference.checkpoint), _weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=f"{name} (killed after {killed_at})")


def test_two_process_gloo_ddp_run(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
               "-m", "pretraining", "train", "--preset", "tiny", "--out", str(out), "--device", "cpu",
               "--no-progress", "--set", "steps=6", "--set", "save_every=6", "--set", "eval_every=6"]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None and checkpoint.name == "step-0000006"
    losses = _records(out / "log.jsonl", "loss")
    assert losses and all(np.isfinite(r["loss"]) for r in losses)
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3), rng.randint(0, 2, 30)
    assert MitraClassifier(str(checkpoint), n_estimators=1).fit(X, y).predict(X).shape == (30,)


def test_learning_rate_schedule():
    config = preset("tiny", steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(step, config) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert lr_factor(100, config) == pytest.approx(0.1)


def test_cooldown_falls_linearly_from_the_cosine_without_a_jump():
    full = preset("tiny", steps=1000, warmup_steps=10, min_lr_ratio=0.1)
    cooled = full.replace(steps=600, cooldown_steps=100, cosine_steps=1000)
    # Before the cooldown the schedule is the uninterrupted run's, the cosine's horizon kept.
    assert [lr_factor(s, cooled) for s in range(0, 501, 50)] == [lr_factor(s, full) for s in range(0, 501, 50)]
    start = lr_factor(500, full)
    assert lr_factor(550, cooled) == pytest.approx((start + 0.1) / 2)
    assert lr_factor(600, cooled) == pytest.approx(0.1)
    factors = [lr_factor(s, cooled) for s in range(500, 601)]
    assert all(a > b for a, b in zip(factors, factors[1:]))
    with pytest.raises(ValueError, match="cooldown_steps"):
        full.replace(cooldown_steps=1001)


def test_resume_cooldown_finishes_a_campaign_early(tmp_path):
    campaign = tmp_path / "campaign"
    config = preset("tiny", steps=40, save_every=5, warmup_steps=2, log_every=1)
    train(config, tmp_path / "run", progress=False, stop_after=10, campaign=campaign)
    assert cli_main(["resume", str(campaign), "--out", str(tmp_path / "run"), "--cooldown", "4", "--no-progress"]) == 0
    assert latest_checkpoint(tmp_path / "run").name == "step-0000014"
    saved = TrainConfig.from_dict(json.loads((campaign / "train_config.json").read_text()))
    assert (saved.steps, saved.cooldown_steps, saved.cosine_steps) == (14, 4, 40)
    lrs = {r["step"]: r["lr"] for r in _records(tmp_path / "run" / "log.jsonl", "lr")}
    # The learning rate goes on from the uninterrupted schedule's, then falls to the floor.
    assert lrs[10] == pytest.approx(config.lr * lr_factor(10, config))
    assert lrs[12] == pytest.approx(config.lr * (lr_factor(10, config) + 0.1) / 2)
    with pytest.raises(SystemExit, match="already cooling down"):
        cli_main(["resume", str(campaign), "--out", str(tmp_path / "run"), "--cooldown", "4", "--no-progress"])


def test_resume_refuses_another_model_shape(tmp_path):
    train(preset("tiny", steps=2, save_every=2), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="Cannot resume"):
        train(preset("tiny", steps=4, dim=64), tmp_path / "run", progress=False)


def test_cli_dry_run_and_help(capsys):
    assert cli_main(["train", "--preset", "mitra-full", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "75,670,026 parameters" in out and "2048" in out and "22,000" in out
    assert "loss              cross-entropy over each table's classes" in out
    cli_main(["train", "--preset", "tiny", "--task", "regression", "--set", "dim_output=64", "--set",
              "mean_loss_weight=100", "--dry-run"])
    assert "loss              cross-entropy over 64 bins + 100 x MSE of their mean" in capsys.readouterr().out
    assert cli_main(["presets"]) == 0
    presets_text = capsys.readouterr().out
    for name in ("cpu-small", "gpu-8min", "mitra-full"):
        assert name in presets_text
    with pytest.raises(SystemExit):
        cli_main(["train", "--set", "no_such_field=1", "--dry-run"])


def test_bad_prior_mixture_fails_before_the_run_folder_exists(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="unknown prior 'xgb'"):
        cli_main(["train", "--preset", "tiny", "--prior", "scm=0.5,xgb=0.5", "--out", str(out), "--no-progress"])
    assert not out.exists()


def test_prior_registry_and_config_names_agree():
    from pretraining.config import PRIOR_NAMES
    from pretraining.priors import PRIORS

    assert tuple(PRIORS) == PRIOR_NAMES


def test_pack_and_unpack_move_a_run_in_small_files(tmp_path):
    first = train(preset("tiny", steps=10, save_every=5), tmp_path / "run", progress=False, stop_after=5)
    files = cli_main(["pack", str(tmp_path / "run"), str(tmp_path / "packed"), "--max-mib", "0.01"])
    assert files == 0
    shards = sorted((tmp_path / "packed").glob("pack-*.safetensors"))
    assert len(shards) > 3 and all(p.stat().st_size <= 0.01 * 2**20 + 200_000 for p in shards)
    assert cli_main(["unpack", str(tmp_path / "packed"), str(tmp_path / "moved")]) == 0
    moved = latest_checkpoint(tmp_path / "moved")
    assert moved.name == first.checkpoint.name
    a, b = _weights(first.checkpoint), _weights(moved)
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=0.02, rtol=0.01, msg=name)
    resumed = train(preset("tiny", steps=10, save_every=5), tmp_path / "moved", progress=False)
    assert resumed.step == 10
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 3), rng.randint(0, 2, 30)
    assert MitraClassifier(str(moved), n_estimators=1).fit(X, y).predict(X).shape == (30,)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_chunked_forward_passes_give_the_batch_gradient(task):
    """Splitting a batch of large tables into chunks bounds memory and leaves the gradient as it is."""
    from mitra_sklearn.model import MitraModel
    from pretraining.data import SyntheticTableStream
    from pretraining.train import _chunks, compute_loss, model_config

    config = preset("tiny", task=task)
    batch = SyntheticTableStream(task, 8, config.priors, seed=1).make_batch(0)
    torch.manual_seed(0)
    model = MitraModel(model_config(config))

    def gradients(max_cells):
        model.zero_grad()
        chunks = _chunks(batch, max_cells)
        for chunk, share in chunks:
            loss, _ = compute_loss(model(chunk["x_support"], chunk["y_support"], chunk["x_query"]), chunk, task)
            (loss * share).backward()
        return len(chunks), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    n_whole, whole = gradients(None)
    n_chunked, chunked = gradients(300)
    assert n_whole == 1 and n_chunked > 2
    for name, grad in whole.items():
        torch.testing.assert_close(chunked[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_init_from_warm_starts_and_refuses_another_shape(tmp_path):
    first = train(preset("tiny", steps=4, save_every=4), tmp_path / "first", progress=False)
    config = preset("tiny", steps=1, save_every=1, lr=1e-12, warmup_steps=1, init_from=str(tmp_path / "first"))
    second = train(config, tmp_path / "second", progress=False)
    a, b = _weights(first.checkpoint), _weights(second.checkpoint)
    for name in a:  # one step at a negligible learning rate: the warm-start weights
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=0, msg=name)
    with pytest.raises(ValueError, match="init_from"):
        train(preset("tiny", steps=1, dim=64, init_from=str(first.checkpoint)), tmp_path / "third", progress=False)


def test_a_changed_learning_rate_takes_effect_on_resume(tmp_path):
    config = preset("tiny", steps=20, save_every=5, warmup_steps=2, log_every=1)
    train(config, tmp_path / "run", progress=False, stop_after=5)
    train(config.replace(lr=config.lr / 10), tmp_path / "run", progress=False, stop_after=6)
    step6 = [r for r in _records(tmp_path / "run" / "log.jsonl", "lr") if r["step"] == 6][-1]
    assert step6["lr"] == pytest.approx(config.lr / 10 * lr_factor(6, config))


def test_every_evaluation_reads_the_weights_of_its_own_step(tmp_path, monkeypatch):
    import pretraining.train as train_module

    seen = []
    monkeypatch.setattr(train_module, "_real_data_metrics", lambda checkpoint, task: seen.append(checkpoint.name) or {})
    config = preset("tiny", steps=12, save_every=5, eval_every=3, real_data_eval=True)
    train(config, tmp_path / "run", progress=False)
    assert seen == [f"step-{s:07d}" for s in (3, 6, 9, 12)]


def test_a_run_folder_with_a_shorter_log_keeps_the_campaigns_history(tmp_path):
    # The run folder already holds the campaign's step, so resuming unpacks nothing; its log lost
    # the early records (deleted, or the run began in another folder). Packing must not copy the
    # shorter log over the campaign's.
    campaign, run = tmp_path / "campaign", tmp_path / "run"
    config = preset("tiny", steps=20, save_every=5)
    train(config, run, progress=False, stop_after=10, campaign=campaign)
    (run / "log.jsonl").unlink()
    assert cli_main(["resume", str(campaign), "--out", str(run), "--stop-after", "15", "--no-progress"]) == 0
    assert [r["step"] for r in _records(campaign / "log.jsonl", "loss")] == [5, 10, 15]
    assert [r["step"] for r in _records(run / "log.jsonl", "loss")] == [15]


def test_campaign_state_continues_on_a_fresh_run_folder(tmp_path):
    campaign = tmp_path / "campaign"
    config = preset("tiny", steps=20, save_every=5)
    train(config, tmp_path / "run", progress=False, stop_after=10, campaign=campaign)
    assert (campaign / "state" / "manifest.json").is_file() and (campaign / "train_config.json").is_file()
    # The campaign's log is the run's, the evaluation of the last saved step included.
    assert (campaign / "log.jsonl").read_text() == (tmp_path / "run" / "log.jsonl").read_text()
    assert _records(campaign / "log.jsonl", "eval_prior_loss")[-1]["step"] == 10
    assert sum(p.stat().st_size for p in (campaign / "state").iterdir()) < 2**20
    assert cli_main(["resume", str(campaign), "--out", str(tmp_path / "fresh"), "--no-progress"]) == 0
    resumed = latest_checkpoint(tmp_path / "fresh")
    assert resumed.name == "step-0000020"
    steps = [r["step"] for r in _records(tmp_path / "fresh" / "log.jsonl", "loss")]
    assert steps == [5, 10, 15, 20]  # the campaign's log came along, then the new steps
    reference = train(config, tmp_path / "reference", progress=False)
    a, b = _weights(reference.checkpoint), _weights(resumed)
    for name in a:  # bf16 packing: close to, not equal to, the uninterrupted run
        torch.testing.assert_close(b[name], a[name], atol=0.05, rtol=0.05, msg=name)


def test_held_out_scores_of_a_checkpoint_match_the_runs_own_evaluation(tmp_path, capsys):
    from pretraining.train import held_out_scores

    config = preset("tiny", steps=6, save_every=6, eval_every=6)
    result = train(config, tmp_path / "run", progress=False)
    logged = _records(result.log_path, "eval_prior_loss")[-1]
    assert logged["step"] == 6 and result.checkpoint.name == "step-0000006"
    (scores,) = held_out_scores(config, [result.checkpoint])
    assert scores["eval_prior_loss"] == pytest.approx(logged["eval_prior_loss"], rel=1e-5)
    assert scores["eval_prior_accuracy"] == pytest.approx(logged["eval_prior_accuracy"], rel=1e-5)
    assert cli_main(["held-out", str(tmp_path / "run"), str(result.checkpoint)]) == 0
    printed = capsys.readouterr().out.split("eval_prior_loss ")[1].split(",")[0]
    assert float(printed) == pytest.approx(logged["eval_prior_loss"], abs=1e-5)
    regression = train(preset("tiny", task="regression", steps=1, save_every=1, eval_every=1), tmp_path / "r",
                       progress=False)
    with pytest.raises(ValueError, match="holds a regression model"):
        held_out_scores(config, [regression.checkpoint])
    with pytest.raises(SystemExit, match="holds no train_config.json"):
        cli_main(["held-out", str(tmp_path / "nowhere"), str(result.checkpoint)])
