"""Writing G and P: CSV, JSON, heatmaps and markdown."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate.reports import pyplot
from ..realdata import markdown_table
from .matrix import GeneralizabilityResult


def _json_ready(value: Any) -> Any:
    """Arrays -> lists, NaN -> null (strict JSON), other objects -> str."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def save_generalizability(result: GeneralizabilityResult, out: str | os.PathLike, *,
                          plot: bool = True) -> list[Path]:
    """Write G/P as CSV and JSON, the per-table scores as CSV and (optionally) the heatmaps.

    Parameters
    ----------
    result : GeneralizabilityResult
        Output of `generalizability_matrix`.
    out : str or path-like
        Output folder (created).
    plot : bool, default=True
        Also draw ``G_<metric>.png`` (skipped with a warning without matplotlib).

    Returns
    -------
    list of Path
        Files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in result.metrics:
        path = out / f"G_{metric}.csv"
        result.frame(metric).to_csv(path)
        written.append(path)

    path = out / "generalizability.json"
    path.write_text(json.dumps(_json_ready(result.to_dict()), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written.append(path)
    path = out / "per_table.csv"
    result.per_table.to_csv(path, index=False)
    written.append(path)
    if plot:
        for metric in result.metrics:
            png = plot_generalizability(result, out / f"G_{metric}.png", metric)
            if png is not None:
                written.append(png)
    return written


def plot_generalizability(result: GeneralizabilityResult, path: str | os.PathLike,
                          metric: str = "auc") -> Path | None:
    """Heatmap of G with annotated cells and P as an extra column.

    Parameters
    ----------
    result : GeneralizabilityResult
        Output of `generalizability_matrix`.
    path : str or path-like
        PNG to write.
    metric : str, default="auc"

    Returns
    -------
    Path or None
        None (with a warning) when matplotlib is not installed.
    """
    plt = pyplot("heatmap")
    if plt is None:
        return None
    higher = result.higher_is_better(metric)
    G = np.asarray(result.G[metric], dtype=float)
    P = np.asarray(result.P[metric], dtype=float)
    models, priors = result.models, result.priors
    cmap = "viridis" if higher else "viridis_r"  # brighter = better in both cases
    has_p = not np.all(np.isnan(P))
    width = len(priors) + (1.4 if has_p else 0)
    fig, axes = plt.subplots(
        1, 2 if has_p else 1, figsize=(1.0 + 0.9 * width + 1.5, 1.2 + 0.6 * len(models)), squeeze=False,
        gridspec_kw={"width_ratios": [len(priors), 1] if has_p else [1]},
    )
    finite = np.concatenate([G[np.isfinite(G)], P[np.isfinite(P)]])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5

    def draw(ax: Any, values: np.ndarray, columns: list[str], title: str) -> Any:
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (r, c), v in np.ndenumerate(values):
            if np.isfinite(v):
                shade = (v - vmin) / (vmax - vmin)
                light = shade < 0.5 if higher else shade > 0.5
                ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=8,
                        color="white" if light else "black")
        ax.set_xticks(range(len(columns)), columns)
        ax.set_yticks(range(len(models)), models)
        ax.set_title(title, fontsize=9)
        return image

    image = draw(axes[0, 0], G, list(priors), f"G ({metric})")
    axes[0, 0].set_xlabel("evaluation prior")
    axes[0, 0].set_ylabel("model (training prior)")
    if has_p:
        draw(axes[0, 1], P[:, None], [str(result.settings.get("real_data"))], "P (real data)")
        axes[0, 1].set_yticks([])
    fig.suptitle(
        f"Generalizability ({metric}, {'higher' if higher else 'lower'} is better): "
        "rows = model's training prior, columns = evaluation prior",
        fontsize=9,
        y=1.0 + 0.25 / (1.2 + 0.6 * len(models)),  # just above the panel titles, whatever the height
    )
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=metric)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def markdown(result: GeneralizabilityResult, metric: str = "auc") -> str:
    """G and P of one metric as a markdown table (rows: models; columns: priors, then P).

    Parameters
    ----------
    result : GeneralizabilityResult
    metric : str, default="auc"

    Returns
    -------
    str
    """
    return markdown_table(result.frame(metric).reset_index())


