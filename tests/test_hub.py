"""Checkpoint resolution: local folders, the Hub cache, offline errors, integrity checks."""

from __future__ import annotations

import shutil
import socket

import pytest
import torch

from mitra_sklearn import checkpoint as hub
from mitra_sklearn import load_model
from mitra_sklearn.checkpoint import resolve_checkpoint, write_checksums
from mitra_sklearn.exceptions import CheckpointIntegrityError, CheckpointNotFoundError
from mitra_sklearn.model import MitraModel

from .conftest import fake_hub_cache, make_tiny_checkpoint


def test_save_and_load_round_trip(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "REGRESSION")
    model = load_model(folder, use_cache=False)
    again = load_model(folder, use_cache=False)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert not model.training
    assert resolve_checkpoint(folder).source == "local"


def test_model_cache_returns_the_same_object_until_the_files_change(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    first = load_model(folder, use_cache=True)
    assert load_model(folder, use_cache=True) is first
    make_tiny_checkpoint(folder, "CLASSIFICATION", seed=1)  # rewritten at once: same mtime tick, new weights
    assert load_model(folder, use_cache=True) is not first


def test_public_loaders_return_a_model_of_the_callers_own(tmp_path):
    # Changing a model from from_pretrained must not change fitted estimators (which share one).
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    shared = load_model(folder, use_cache=True)
    for mine in (load_model(folder), MitraModel.from_pretrained(str(folder))):
        assert mine is not shared
        with torch.no_grad():
            mine.final_layer.bias.add_(1.0)
    assert torch.equal(shared.final_layer.bias, load_model(folder).final_layer.bias)


def test_relative_folder_names_are_not_taken_for_shipped_names(tmp_path, monkeypatch):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    monkeypatch.chdir(folder)
    assert resolve_checkpoint(".").source == "local"
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("ckpt").source == "local"


def test_folder_missing_a_file(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match="missing model.safetensors"):
        load_model(folder)


def test_not_a_folder_nor_repo_id():
    with pytest.raises(CheckpointNotFoundError, match="neither a folder"):
        resolve_checkpoint("./no/such/folder/here")


def test_truncated_weights_give_a_clear_error(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointIntegrityError, match="model.safetensors"):
        load_model(folder, use_cache=False)


def test_checksum_mismatch_is_detected(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    write_checksums(folder)
    load_model(folder, use_cache=False)  # matching checksums load
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor: safetensors alone cannot notice this
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match="SHA-256"):
        load_model(folder, use_cache=False)


def test_weights_that_do_not_fit_the_config(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "a", "CLASSIFICATION", dim=16)
    other = make_tiny_checkpoint(tmp_path / "b", "CLASSIFICATION", dim=32)
    shutil.copy(other / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(CheckpointIntegrityError, match="has shape"):
        load_model(folder, use_cache=False)


def test_bad_config_file(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointIntegrityError, match="config"):
        load_model(folder, use_cache=False)


def test_hub_cache_is_used_without_network(tmp_path, monkeypatch):
    source = make_tiny_checkpoint(tmp_path / "src", "CLASSIFICATION")
    cache = tmp_path / "hf-cache"
    fake_hub_cache(cache, "someone/mitra-test", source)

    def no_network(*args, **kwargs):
        raise AssertionError("the network must not be touched when the file is cached")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    files = resolve_checkpoint("someone/mitra-test", cache_dir=cache)
    assert files.source == "hub"
    model = load_model("someone/mitra-test", cache_dir=cache, use_cache=False)
    assert model.config.dim == 16


def test_local_files_only_error_names_the_alternatives(tmp_path, no_network):
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint("autogluon/mitra-classifier", cache_dir=tmp_path, local_files_only=True)
    message = str(info.value)
    for needle in ("local_files_only", "HF_HUB_OFFLINE", "shipped", "local folder"):
        assert needle in message


def test_offline_mode_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_checkpoint("autogluon/mitra-classifier", cache_dir=tmp_path)


def test_no_network_fails_fast_with_a_clear_message(tmp_path, no_network, sleeps):
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint("autogluon/mitra-regressor", cache_dir=tmp_path)
    assert sleeps == [] and no_network  # one attempt, no retry waits
    message = str(info.value)
    assert "cannot be resolved" in message
    assert "local_files_only" in message and "HF_HUB_OFFLINE" in message


def test_default_checkpoint_without_a_shipped_one_is_the_official_repo_or_its_error(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(hub, "SHIPPED_CHECKPOINTS_DIR", tmp_path / "none")
    with pytest.raises(CheckpointNotFoundError, match="HF_HUB_OFFLINE is set"):  # no fallback to offer
        hub.default_checkpoint("classification")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    fake_hub_cache(tmp_path / "hub", "autogluon/mitra-regressor", make_tiny_checkpoint(tmp_path / "r", "REGRESSION"))
    assert hub.default_checkpoint("regression") == "autogluon/mitra-regressor"
    shipped = tmp_path / "shipped"
    make_tiny_checkpoint(shipped / "mitra-small-classifier", "CLASSIFICATION")
    monkeypatch.setattr(hub, "SHIPPED_CHECKPOINTS_DIR", shipped)
    assert hub.default_checkpoint("classification") == "mitra-small-classifier"
    assert resolve_checkpoint("mitra-small-classifier").source == "shipped"


def test_half_precision_weights_load_as_float32(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "ckpt", "CLASSIFICATION")
    model = load_model(folder, use_cache=False)
    model.to(torch.bfloat16).save_pretrained(str(tmp_path / "bf16"))
    again = load_model(tmp_path / "bf16", use_cache=False)
    assert all(p.dtype == torch.float32 for p in again.parameters())
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a.float(), b, msg=name)


# ---------------------------------------------------------------------------- issue 12: hints and checks
@pytest.mark.parametrize(("estimator", "mine", "other"), [
    ("MitraRegressor", "mitra-small-regressor", "mitra-small-classifier"),
    ("MitraClassifier", "mitra-small-classifier", "mitra-small-regressor"),
])
def test_offline_hints_fit_the_estimator_and_task(estimator, mine, other):  # offline: conftest
    import numpy as np

    import mitra_sklearn

    repo = "autogluon/" + mine.replace("small-", "")
    cls = getattr(mitra_sklearn, estimator)
    with pytest.raises(CheckpointNotFoundError) as info:
        cls(checkpoint=repo).fit(np.random.rand(10, 2), np.arange(10) % 2)
    message = str(info.value)
    assert f"{estimator}(checkpoint={mine!r})" in message
    assert other not in message
    assert "local_files_only" not in message  # the estimators have no such argument
    assert "set HF_HUB_OFFLINE" not in message  # it is set already
    assert "HF_HUB_OFFLINE is set" in message


def test_library_offline_hints_name_the_task_of_an_official_repo_and_skip_what_is_set(tmp_path, monkeypatch,
                                                                                       no_network):
    from huggingface_hub import constants

    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint("autogluon/mitra-regressor", cache_dir=tmp_path, local_files_only=True)
    message = str(info.value)
    assert "checkpoint='mitra-small-regressor'" in message and "mitra-small-classifier" not in message
    assert "set HF_HUB_OFFLINE=1" in message and "pass local_files_only=True" not in message
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointNotFoundError) as info:
        resolve_checkpoint("someone/else", cache_dir=tmp_path)
    message = str(info.value)
    assert "set HF_HUB_OFFLINE" not in message and "pass local_files_only=True" in message
    assert "'mitra-small-classifier' (classification)" in message  # unknown task: every shipped one


def test_config_tensor_mismatch_message_is_capped_and_names_the_fields(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "a", "CLASSIFICATION", dim=16, n_layers=4)
    other = make_tiny_checkpoint(tmp_path / "b", "CLASSIFICATION", dim=32, n_layers=4)
    shutil.copy(other / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(CheckpointIntegrityError) as info:
        load_model(folder, use_cache=False)
    message = str(info.value)
    assert "config.json says dim=16, the tensors have dim=32" in message
    assert "more tensors of other shapes" in message
    assert len(message) < 1500


def _with_config(folder, **changes):
    import json

    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def test_every_config_field_the_files_can_tell_is_checked(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "heads", "CLASSIFICATION", dim=16, n_heads=2)
    _with_config(folder, n_heads=4)  # 4 divides 16: only the saved config can tell
    with pytest.raises(CheckpointIntegrityError, match="n_heads=4, the weights were saved with n_heads=2"):
        load_model(folder, use_cache=False)
    folder = make_tiny_checkpoint(tmp_path / "layers", "CLASSIFICATION", n_layers=2)
    _with_config(folder, n_layers=3)
    with pytest.raises(CheckpointIntegrityError, match="n_layers=3, the tensors have n_layers=2"):
        load_model(folder, use_cache=False)
    folder = make_tiny_checkpoint(tmp_path / "task", "REGRESSION", dim_output=1)
    _with_config(folder, task="CLASSIFICATION")
    with pytest.raises(CheckpointIntegrityError, match="task=classification, the tensors have task=regression"):
        load_model(folder, use_cache=False)


def test_without_saved_config_n_heads_cannot_be_checked(tmp_path):
    """Official files carry no config in their header: n_heads is invisible in the shapes (documented)."""
    from safetensors.torch import load_file, save_file

    folder = make_tiny_checkpoint(tmp_path / "official-like", "CLASSIFICATION", dim=16, n_heads=2)
    weights = folder / "model.safetensors"
    save_file(load_file(str(weights)), str(weights))  # no metadata, as in the official repos
    _with_config(folder, n_heads=4)
    assert load_model(folder, use_cache=False).config.n_heads == 4
