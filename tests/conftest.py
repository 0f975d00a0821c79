"""Shared fixtures: tiny random-weight checkpoints (no downloads) and the parity fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mitra_sklearn.model import MitraConfig, MitraModel

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
