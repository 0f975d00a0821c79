"""CUDA checks: run only where a CUDA GPU is present (``benchmarks/gpu_session.sh`` runs them).

CI has no GPU, so every test here is skipped there; they exist so that a lent GPU session checks
the CUDA paths (bf16 autocast, the sequence split of the attention kernels, real out-of-memory
retries, training and fine-tuning on the GPU) with one command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mitra_sklearn import MitraClassifier, MitraRegressor
from mitra_sklearn._inference import InferenceRunner
from mitra_sklearn.model import MitraConfig, MitraModel, MultiheadAttention

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda")


def _random_model(dim: int = 64, n_layers: int = 2, seed: int = 0) -> MitraModel:
    torch.manual_seed(seed)
    return MitraModel(MitraConfig(dim=dim, dim_output=10, n_layers=n_layers, n_heads=4)).eval()


def _table(n_support: int, n_query: int, n_features: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    return (rng.randn(n_support, n_features).astype(np.float32), rng.randint(0, 10, n_support),
            rng.randn(n_query, n_features).astype(np.float32))


def test_cuda_float32_matches_the_cpu():
    model = _random_model()
    x_support, y_support, x_query = _table(300, 200, 7)
    cpu_runner = InferenceRunner(model, torch.device("cpu"), torch.float32, batch_size=64)
    cpu = cpu_runner.predict(x_support, y_support, x_query)
    gpu_runner = InferenceRunner(model.to(CUDA), CUDA, torch.float32, batch_size=64)
    gpu = gpu_runner.predict(x_support, y_support, x_query)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)


def test_bf16_autocast_is_close_to_float32_and_the_support_schedule_changes_nothing():
    model = _random_model().to(CUDA)
    x_support, y_support, x_query = _table(500, 700, 12)
    exact = InferenceRunner(model, CUDA, torch.float32, batch_size=128).predict(x_support, y_support, x_query)
    cached = InferenceRunner(model, CUDA, torch.bfloat16, batch_size=128, support_cache="predict")
    rerun = InferenceRunner(model, CUDA, torch.bfloat16, batch_size=128, support_cache="off")
    a = cached.predict(x_support, y_support, x_query)
    b = rerun.predict(x_support, y_support, x_query)
    encoded = cached.predict(x_support, y_support, x_query, cache=cached.encode(x_support, y_support))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-2)
    np.testing.assert_allclose(encoded, b, rtol=0, atol=1e-2)
    assert np.abs(a - exact).max() < 0.05 * np.abs(exact).max()


def test_attention_over_more_sequences_than_a_cuda_grid_allows():
    torch.manual_seed(0)
    attention = MultiheadAttention(16, 2)
    x = torch.randn(70_000, 3, 16)  # 70,000 sequences > 65,535 (CUDA grid limit seen on the H100)
    with torch.no_grad():
        expected = attention(x)
        got = attention.to(CUDA)(x.to(CUDA)).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("support_cache", ["predict", "off"])
def test_a_real_out_of_memory_error_is_retried_with_smaller_chunks(support_cache):
    model = _random_model(dim=128, n_layers=2).to(CUDA)
    x_support, y_support, x_query = _table(256, 65_536, 20)
    runner = InferenceRunner(model, CUDA, torch.float32, batch_size=65_536, support_cache=support_cache)
    expected = InferenceRunner(model, CUDA, torch.float32, batch_size=4_096, support_cache="off").predict(
        x_support, y_support, x_query)
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    hog = torch.empty(free - (2 << 30), dtype=torch.uint8, device=CUDA)  # leave about 2 GiB
    try:
        with pytest.raises(torch.cuda.OutOfMemoryError), torch.inference_mode():  # the whole chunk does not fit
            model(*(torch.as_tensor(a, device=CUDA)[None] for a in (x_support, y_support, x_query)))
        torch.cuda.empty_cache()
        got = runner.predict(x_support, y_support, x_query)
    finally:
        del hog
        torch.cuda.empty_cache()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("estimator_class", [MitraClassifier, MitraRegressor])
def test_estimators_on_cuda_agree_with_the_cpu(estimator_class):
    rng = np.random.RandomState(0)
    X = rng.randn(400, 6)
    logits = X[:, 0] + X[:, 1] ** 2 - 1
    y = (logits > 0).astype(int) if estimator_class is MitraClassifier else logits
    X_train, X_test, y_train = X[:300], X[300:], y[:300]
    on_cpu = estimator_class(device="cpu", n_estimators=2, random_state=0).fit(X_train, y_train)
    on_gpu = estimator_class(device=CUDA.type, n_estimators=2, random_state=0).fit(X_train, y_train)
    assert on_gpu.device_.type == CUDA.type
    if estimator_class is MitraClassifier:  # bf16 autocast on CUDA against float32 on the CPU
        np.testing.assert_allclose(on_gpu.predict_proba(X_test), on_cpu.predict_proba(X_test), atol=0.03)
        assert (on_gpu.predict(X_test) == on_cpu.predict(X_test)).mean() >= 0.97
    else:
        np.testing.assert_allclose(on_gpu.predict(X_test), on_cpu.predict(X_test), atol=0.05 * np.std(y))


def test_fine_tuning_on_cuda_runs_and_keeps_the_shared_weights_intact():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5)
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    reference = MitraClassifier(device=CUDA.type, n_estimators=1, random_state=0).fit(X, y).predict_proba(X)
    tuned = MitraClassifier(device=CUDA.type, n_estimators=1, random_state=0, fine_tune=True,
                            fine_tune_steps=10).fit(X, y)
    assert tuned.fine_tune_losses_ is not None and np.isfinite(tuned.fine_tune_losses_).all()
    assert tuned.predict_proba(X).shape == (300, 2)
    again = MitraClassifier(device=CUDA.type, n_estimators=1, random_state=0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(again, reference)


def test_pretraining_on_cuda_with_one_process_nccl(tmp_path):
    out = tmp_path / "nccl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1", "--standalone",
               "-m", "pretraining", "train", "--preset", "tiny", "--out", str(out), "--device", CUDA.type,
               "--no-progress", "--set", "steps=8", "--set", "save_every=8", "--set", "eval_every=8"]
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    checkpoint = out / "latest"
    X = np.random.RandomState(0).randn(30, 3)
    clf = MitraClassifier(str(checkpoint), device=CUDA.type, n_estimators=1).fit(X, X[:, 0] > 0)
    assert clf.predict(X).shape == (30,)
