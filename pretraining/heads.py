"""A binned regression head made from a trained scalar one, so a binned regressor starts where the
scalar one stands instead of from scratch.

A scalar regressor embeds a support target ``t`` (scaled to [0, 1]) as ``w_y * t + b_y`` and
predicts ``f(h) = w . h + c`` from the query's final label token ``h``. The binned head made
here:

* embeds bin ``b`` as the scalar embedding of its centre ``m_b``: ``w_y * m_b + b_y``, so the
  support rows look to the trunk as before (up to the rounding of targets to bin centres);
* predicts logits ``(m_b f(h) - m_b^2 / 2) / sigma^2``: the softmax of those is a Gaussian of
  width ``sigma`` around the scalar prediction discretised on the bins (``-(f - m_b)^2 / 2
  sigma^2`` differs from them only by a term shared by all bins), and it is linear in ``h``, so
  it is exactly a ``Linear(dim, n_bins)`` layer.

Training on (cross-entropy over the bins) then learns each table's real uncertainty.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mitra_sklearn.checkpoint import load_model_files, resolve_checkpoint, save_model
from mitra_sklearn.config import MitraConfig, Task
from mitra_sklearn.model import MitraModel
from mitra_sklearn.tasks import regression_bin_centres

__all__ = ["binned_from_scalar", "save_binned_from_scalar"]


def binned_from_scalar(scalar: MitraModel, n_bins: int, sigma: float = 0.05) -> MitraModel:
    """A binned regressor with ``n_bins`` bins whose trunk is ``scalar``'s and whose head is
    ``scalar``'s prediction spread as a Gaussian of std ``sigma`` (in scaled target units).

    Raises
    ------
    ValueError
        When ``scalar`` is not a scalar-head regressor, or ``n_bins < 2`` or ``sigma <= 0``.
    """
    config = scalar.config
    if config.task is not Task.REGRESSION or config.dim_output != 1:
        raise ValueError(f"binned_from_scalar needs a scalar-head regressor, got {config}.")
    if n_bins < 2 or not sigma > 0:
        raise ValueError(f"need n_bins >= 2 and sigma > 0, got n_bins={n_bins}, sigma={sigma}.")
    binned = MitraModel(MitraConfig(dim=config.dim, dim_output=n_bins, n_layers=config.n_layers,
                                    n_heads=config.n_heads, task=Task.REGRESSION))
    source = scalar.state_dict()
    state = {name: tensor for name, tensor in source.items()
             if not name.startswith(("y_embedding.y_embedding.", "final_layer."))}
    centres = torch.as_tensor(regression_bin_centres(n_bins), dtype=torch.float32)
    w_y, b_y = source["y_embedding.y_embedding.weight"][:, 0], source["y_embedding.y_embedding.bias"]
    state["y_embedding.y_embedding.weight"] = centres[:, None] * w_y[None, :] + b_y[None, :]
    w, c = source["final_layer.weight"][0], source["final_layer.bias"][0]
    state["final_layer.weight"] = centres[:, None] * w[None, :] / sigma**2
    state["final_layer.bias"] = (centres * c - centres**2 / 2) / sigma**2
    binned.load_state_dict(state)
    return binned


def save_binned_from_scalar(checkpoint: str | os.PathLike, out: str | os.PathLike, n_bins: int,
                            sigma: float = 0.05) -> Path:
    """`binned_from_scalar` of a checkpoint (shipped name, folder or repo id), saved to ``out``."""
    scalar = load_model_files(resolve_checkpoint(checkpoint), device=torch.device("cpu"))
    save_model(binned_from_scalar(scalar, n_bins, sigma), out)
    return Path(out)
