"""AutoGluon's official ``Tab2D`` for the benchmark scripts (dev only, not part of the package)."""

from __future__ import annotations

import sys

import torch

__all__ = ["official_tab2d"]


def official_tab2d(dim: int, n_layers: int, n_heads: int, device: torch.device,
                   path: str | None = None) -> torch.nn.Module:
    """The official classifier model of this shape on ``device``, with random weights.

    ``path`` is a folder holding the ``autogluon`` package (``scripts/vendor_official.py`` writes
    one), put first on ``sys.path``. Raises ``ImportError`` when the official code is missing.
    """
    if path:
        sys.path.insert(0, path)
    from autogluon.tabular.models.mitra._internal.models.tab2d import Tab2D

    return Tab2D(dim=dim, dim_output=10, n_layers=n_layers, n_heads=n_heads, task="CLASSIFICATION",
                 use_pretrained_weights=False, path_to_weights="", device=str(device)).to(device)
