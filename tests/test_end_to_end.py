"""End to end with the checkpoints shipped inside the package (offline, no arguments)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier, MitraRegressor, load_model
from mitra_sklearn.checkpoint import SHIPPED_CHECKPOINTS_DIR, default_checkpoint
from mitra_sklearn.exceptions import CheckpointIntegrityError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("task", "name"), [("classification", "mitra-small-classifier"),
                                            ("regression", "mitra-small-regressor")])
def test_the_default_checkpoints_are_shipped_and_verified(task, name):
    assert default_checkpoint(task) == name
    folder = SHIPPED_CHECKPOINTS_DIR / name
    for file in ("config.json", "model.safetensors"):
        assert (folder / (file + ".sha256")).is_file()
        assert (folder / file).stat().st_size < 30_000_000
    assert load_model(name).config.task.official_name == task.upper()


@pytest.mark.parametrize("release", ["-v1", "-v2"])
@pytest.mark.parametrize(("task", "name"), [("classification", "mitra-small-classifier"),
                                            ("regression", "mitra-small-regressor")])
def test_the_previous_releases_stay_loadable_by_name(task, name, release):
    # Each release that replaced the weights under the default names keeps the ones it replaced
    # shipped as "<name>-v1", "<name>-v2", ...: other weights of the same shape.
    current, previous = load_model(name), load_model(name + release)
    assert previous.config == current.config
    assert previous.config.task.official_name == task.upper()
    assert any(not torch.equal(a, b) for a, b in zip(previous.state_dict().values(), current.state_dict().values()))
    X, y = (load_iris if task == "classification" else load_diabetes)(return_X_y=True)
    estimator = (MitraClassifier if task == "classification" else MitraRegressor)(checkpoint=name + release,
                                                                                   n_estimators=1)
    assert estimator.fit(X[::2], y[::2]).score(X[1::2], y[1::2]) > 0.3


def test_default_classifier_on_a_real_dataset():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    clf = MitraClassifier(random_state=0).fit(X_train, y_train)
    assert clf.checkpoint_ == "mitra-small-classifier"
    assert roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1]) > 0.95
    assert clf.score(X_test, y_test) > 0.88


def test_default_classifier_multiclass_with_string_labels():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    X_train, X_test, y_train, y_test = train_test_split(X, labels, test_size=0.4, stratify=y, random_state=0)
    clf = MitraClassifier(n_estimators=2, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.85


def test_default_regressor_on_a_real_dataset():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    reg = MitraRegressor(random_state=0).fit(X_train, y_train)
    assert reg.checkpoint_ == "mitra-small-regressor"
    assert r2_score(y_test, reg.predict(X_test)) > 0.3


def test_corrupt_shipped_copy_fails_with_the_file_name(tmp_path):
    copy = tmp_path / "mitra-small-classifier"
    shutil.copytree(SHIPPED_CHECKPOINTS_DIR / "mitra-small-classifier", copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointIntegrityError, match="model.safetensors"):
        load_model(copy, use_cache=False)
    (copy / "model.safetensors").write_bytes(bytes(data[:1000]))  # truncated
    with pytest.raises(CheckpointIntegrityError, match="model.safetensors"):
        load_model(copy, use_cache=False)


@pytest.mark.parametrize("arguments", [[], ["--checkpoint", "default"]])
def test_quickstart_runs_offline_and_prints_a_score_next_to_a_baseline(arguments):
    # A fresh machine: an empty Hub cache (conftest's), no network.
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": os.environ["HF_HOME"]}
    completed = subprocess.run([sys.executable, "examples/quickstart.py", *arguments], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Mitra (mitra-small-classifier)" in completed.stdout
    assert "Mitra checkpoint: 'mitra-small-classifier' (shipped, sha256" in completed.stdout
    assert "RandomForest" in completed.stdout
    # Pinned to the shipped model: no fallback warning; checkpoint=None says why it falls back.
    assert ("uses the shipped checkpoint" in completed.stderr) == bool(arguments)
