"""Shared fixtures: tiny random-weight checkpoints (no downloads), fake Hub caches, no network.

The tests never reach the Hugging Face Hub, and never read the user's Hub cache: this module
points ``HF_HOME`` / ``HF_HUB_CACHE`` at an empty folder and sets ``HF_HUB_OFFLINE=1`` before
``huggingface_hub`` is imported (so subprocesses inherit it too), and `_no_hub_network` keeps it
so in every test. ``checkpoint=None`` therefore resolves to the shipped checkpoints here,
whatever is cached on the machine; tests of the online paths turn the offline flag off
themselves and fake the network (`no_network`, `fake_hub_cache`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from pathlib import Path

_TEST_HF_HOME = tempfile.mkdtemp(prefix="mitra-tests-hf-home-")
atexit.register(shutil.rmtree, _TEST_HF_HOME, True)
os.environ["HF_HOME"] = _TEST_HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_TEST_HF_HOME, "hub")
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402 - after the environment above
import torch  # noqa: E402

from mitra_sklearn import _runtime  # noqa: E402
from mitra_sklearn import checkpoint as checkpoint_module  # noqa: E402
from mitra_sklearn.model import MitraConfig, MitraModel  # noqa: E402

OFFICIAL_LIKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"

FIXTURES = Path(__file__).parent / "fixtures"
PARITY = FIXTURES / "parity"


def make_tiny_checkpoint(folder: Path, task: str, *, dim: int = 16, n_layers: int = 1, n_heads: int = 2,
                         dim_output: int | None = None, seed: int = 0) -> Path:
    """Save a random-weight model in the official format and return its folder."""
    if dim_output is None:
        dim_output = 10 if task == "CLASSIFICATION" else 1
    torch.manual_seed(seed)
    model = MitraModel(MitraConfig(dim=dim, dim_output=dim_output, n_layers=n_layers, n_heads=n_heads, task=task))
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_classifier_checkpoint(tmp_path_factory) -> str:
    return str(make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_cls"), "CLASSIFICATION"))


@pytest.fixture(scope="session")
def tiny_regressor_checkpoint(tmp_path_factory) -> str:
    return str(make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_reg"), "REGRESSION"))


@pytest.fixture(autouse=True)
def _no_hub_network(monkeypatch, tmp_path_factory):
    """Every test: offline, an empty Hub cache of the session, no DNS for the Hub, no remembered failures."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", os.environ["HF_HUB_CACHE"])
    monkeypatch.setattr(checkpoint_module, "_DEFAULT_DOWNLOAD_FAILURES", {})
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == "hf.co" or host.endswith(("huggingface.co", ".hf.co"))):
            raise socket.gaierror(-2, "Name or service not known (tests run offline)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache of this test (the estimators use the default cache)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Forget the once-per-process warnings already given, so this test sees them."""
    monkeypatch.setattr(_runtime, "_WARNED_ONCE", set())


@pytest.fixture
def no_network(monkeypatch):
    """HF_HUB_OFFLINE unset, but no network: every DNS look-up fails. Returns the list of hosts asked."""
    from huggingface_hub import constants

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked: list[str] = []

    def dns_failure(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", dns_failure)
    return asked


@pytest.fixture
def sleeps(monkeypatch):
    """``time.sleep`` records its argument instead of sleeping. Returns the list of delays asked for:
    "fails fast" is then a count of retries and waits, not a wall-clock bound (machines differ)."""
    import time

    asked: list[float] = []
    monkeypatch.setattr(time, "sleep", asked.append)
    return asked


def strip_metadata(folder: Path) -> Path:
    """Make a saved checkpoint official-format exactly: no config in the safetensors header."""
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    save_file(load_file(str(weights)), str(weights))
    return folder


def fake_hub_cache(cache_dir: Path, repo_id: str, source_folder: Path, commit: str = OFFICIAL_LIKE_COMMIT,
                   *, main: bool = True) -> Path:
    """Lay out a checkpoint as huggingface_hub's cache does (refs/main -> snapshots/<commit>/...).

    Returns the snapshot folder. ``main=False`` adds the snapshot without moving ``refs/main``.
    """
    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    if main:
        (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(source_folder) / name, snapshot / name)
    return snapshot
