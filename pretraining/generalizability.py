"""The Mitra paper's generalizability matrix G and real-data performance vector P (§3.2, App. C.1).

``G[i, j]`` is the metric of the model pretrained on prior ``i`` when it is evaluated on fresh
synthetic tables drawn from prior ``j``; ``P[i]`` is the same model's metric on real data. The
paper reads them as follows: a high ``P[i]`` means prior ``i`` is useful on real data; a low
diagonal ``G[i, i]`` means prior ``i`` is *diverse* (hard even for a model trained on it); a
prior ``j`` is *distinctive* for a mixture when no model of the mixture predicts its tables
well, i.e. ``max_i G[i, j]`` over the mixture's models is low.

Protocol (paper App. C.1): 100 tables per prior, 1,000 rows each, split 800 support / 200
query; AUC (one-vs-one macro average over class pairs for multiclass), accuracy and
cross-entropy. Every model is evaluated on exactly the same tables: table ``t`` of prior ``j``
is generated from ``numpy.random.default_rng([seed, crc32(j), t])``. Each table is read by the
scikit-learn estimator (``MitraClassifier(checkpoint, n_estimators=1)`` by default), i.e. the
same preprocessing as at inference time; categorical columns stay integer codes, as in the
pretraining stream.

Intended workflow
-----------------
1. Train one model per prior with the same preset and budget (the trainer's job, e.g.)::

       python -m pretraining train --preset <preset> --prior scm  --out runs/scm
       python -m pretraining train --preset <preset> --prior et   --out runs/et
       ... (gb, dt, rf, dsrf, and optionally the mixture)

2. Run this tool on the resulting checkpoint folders::

       python -m pretraining.generalizability \\
           --checkpoint scm=runs/scm/final --checkpoint et=runs/et/final ... \\
           --priors scm,et,gb,dt,rf,dsrf --out docs/results/generalizability

   It writes ``G_<metric>.csv`` (models x priors, plus a ``P`` column), ``generalizability.json``,
   ``per_table.csv`` and ``G_<metric>.png`` heatmaps, and prints the AUC matrix as markdown.
   Use ``--n-tables 10 --n-support 200 --n-query 50`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mitra_sklearn.progress import progress_bar

from .config import PriorConfig
from .data import split_support_query
from .evaluate import checkpoint_task, evaluate_checkpoint, quick_validation, summarize
from .evaluate.metrics import HIGHER_IS_BETTER, Task, expand_proba, score_predictions
from .evaluate.reports import pyplot
from .priors import PriorGenerationError, get_prior
from .realdata import SUITES, markdown_table

__all__ = [
    "G_METRICS",
    "EvalTable",
    "GeneralizabilityResult",
    "make_eval_tables",
    "generalizability_matrix",
    "save_generalizability",
    "plot_generalizability",
    "distinctiveness",
    "markdown",
    "main",
    "run",
]

#: The metrics of G per task: the paper's short name -> the metric of
#: `pretraining.evaluate.metrics` (which also says whether higher is better).
G_METRICS: dict[Task, dict[str, str]] = {
    Task.CLASSIFICATION: {"auc": "roc_auc", "accuracy": "accuracy", "ce": "log_loss"},
    Task.REGRESSION: {"rmse": "rmse", "r2": "r2"},
}
_SPLIT_TRIES = 10  # re-shuffles so the support set holds every class of the table
_TABLE_TRIES = 10  # re-draws of a table that fails to generate or to split


@dataclass(frozen=True)
class EvalTable:
    """One synthetic evaluation task: a support set and a query set.

    Attributes
    ----------
    prior : str
        Prior that generated it.
    index : int
        Table number within its prior.
    x_support, y_support, x_query, y_query : ndarray
        Features (float32, categorical columns as integer codes) and targets (int64 class codes
        ``0..n_classes-1`` or float32).
    n_classes : int
        Classes of the table (0 for regression). Every query class is in the support set.
    """

    prior: str
    index: int
    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    n_classes: int


def _table_seed(seed: int, prior: str, index: int, attempt: int) -> list[int]:
    # crc32 (not hash()) so the tables are the same in every process and Python version.
    return [seed, zlib.crc32(prior.encode()), index, attempt]


def _draw(rng: np.random.Generator, value: int | tuple[int, int] | None, default: tuple[int, int]) -> int:
    if value is None:
        value = default
    if isinstance(value, (tuple, list)):
        return int(rng.integers(value[0], value[1] + 1))
    return int(value)


def make_eval_tables(
    prior: str,
    *,
    n_tables: int = 100,
    n_support: int = 800,
    n_query: int = 200,
    n_features: int | tuple[int, int] | None = None,
    n_classes: int | tuple[int, int] | None = None,
    task: Task | str = Task.CLASSIFICATION,
    seed: int = 0,
    config: PriorConfig | None = None,
) -> list[EvalTable]:
    """Draw the evaluation tables of one prior (deterministic in ``seed`` and the prior name).

    Parameters
    ----------
    prior : str
        Registry name (``"scm"``, ``"et"``, ...) or mixture spec (``"scm=0.5,et=0.5"``).
    n_tables : int, default=100
    n_support, n_query : int, default=800, 200
        Rows of each table's support and query sets.
    n_features : int, (low, high) or None
        Feature count, fixed or drawn uniformly per table; None draws from ``config.n_features``.
    n_classes : int, (low, high) or None
        Class count (classification), fixed or uniform; None lets the prior draw it
        (``config.binary_prob`` / ``max_classes``), as during pretraining.
    task : {"classification", "regression"}, default="classification"
    seed : int, default=0
    config : PriorConfig, optional
        Generator settings; default ``PriorConfig()``.

    Returns
    -------
    list of EvalTable
    """
    config = config if config is not None else PriorConfig()
    generator = get_prior(prior, config)
    tables = []
    for index in range(n_tables):
        for attempt in range(_TABLE_TRIES):
            rng = np.random.default_rng(_table_seed(seed, prior, index, attempt))
            d = _draw(rng, n_features, config.n_features)
            k = None if task is Task.REGRESSION or n_classes is None else min(_draw(rng, n_classes, (2, 2)), n_support)
            try:
                table = generator.sample(rng, n_support + n_query, d, task, k)
            except PriorGenerationError:
                continue
            rows = split_support_query(rng, table.y, n_support, task, table.n_classes, tries=_SPLIT_TRIES)
            if rows is None:
                continue  # a class never made it into the support set: draw another table
            support, query = rows
            if task is Task.REGRESSION and np.ptp(table.y[support]) == 0:
                continue  # a constant support target says nothing about a model
            tables.append(EvalTable(prior, index, table.x[support], table.y[support], table.x[query],
                                    table.y[query], table.n_classes))
            break
        else:
            raise RuntimeError(f"prior {prior!r}: no usable {task} table #{index} in {_TABLE_TRIES} draws")
    return tables


def _score_table(estimator: Any, table: EvalTable, task: Task) -> dict[str, float]:
    """Fit ``estimator`` on the support set and score the query set (one-vs-one AUC, as the paper)."""
    estimator.fit(table.x_support, table.y_support)
    if task is Task.CLASSIFICATION:
        prediction = expand_proba(estimator.predict_proba(table.x_query), estimator.classes_.astype(int),
                                  table.n_classes)
    else:
        prediction = estimator.predict(table.x_query)
    m = score_predictions(task, table.y_query, prediction, table.y_support, multi_class="ovo")
    return {short: m[metric] for short, metric in G_METRICS[task].items()}


def _real_data_vector(checkpoint: str, task: Task, real_data: str, seed: int, device: str) -> dict[str, float]:
    """P for one model: metrics on the "sklearn" quick suite or one split of a benchmark suite."""
    names = G_METRICS[task]
    if real_data == "sklearn":
        q = quick_validation(checkpoint, task, seed=seed, device=device, multi_class="ovo")
        return {short: q[metric] for short, metric in names.items()}
    frame = evaluate_checkpoint(checkpoint, task, real_data, n_estimators=1, n_repeats=1, seed=seed,
                                device=device, multi_class="ovo")
    summary = summarize(frame, task)  # means over datasets, failed fits left out
    if summary.empty:
        return {short: float("nan") for short in names}
    return {short: float(summary[metric].iloc[0]) for short, metric in names.items()}


@dataclass(frozen=True)
class GeneralizabilityResult:
    """G (models x priors) and P (models) of every metric, with the per-table scores.

    Attributes
    ----------
    task : {"classification", "regression"}
    models : list of str
        Row names of G (usually the prior each model was trained on).
    priors : list of str
        Column names of G: the evaluation priors.
    G : dict of str to ndarray of shape (n_models, n_priors)
        Metric (the keys of ``G_METRICS`` for the task) -> mean over the prior's tables.
    G_std : dict of str to ndarray of shape (n_models, n_priors)
        Standard deviation over the tables.
    P : dict of str to ndarray of shape (n_models,)
        Metric -> real-data score of each model (NaN without real data).
    per_table : pandas.DataFrame
        One row per model and table: ``model, prior, table, n_classes, n_features``, the
        metrics and ``seconds``.
    settings : dict
        How the result was made (checkpoints, table sizes, seed, real-data suite, ...).
    """

    task: Task
    models: list[str]
    priors: list[str]
    G: dict[str, np.ndarray]
    G_std: dict[str, np.ndarray]
    P: dict[str, np.ndarray]
    per_table: pd.DataFrame = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        """Metric names, in ``G_METRICS`` order."""
        return list(self.G)

    def higher_is_better(self, metric: str) -> bool:
        """Whether a larger value of ``metric`` (a key of ``G``) is better."""
        self._check(metric)
        return HIGHER_IS_BETTER[G_METRICS[self.task][metric]]

    def frame(self, metric: str = "auc") -> pd.DataFrame:
        """G of one metric as a DataFrame (index: models; columns: priors, then ``P``)."""
        self._check(metric)
        frame = pd.DataFrame(self.G[metric], index=self.models, columns=self.priors)
        frame["P"] = self.P[metric]
        frame.index.name = "model"
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-table scores, as plain Python (``generalizability.json``)."""
        return {
            "task": self.task,
            "models": self.models,
            "priors": self.priors,
            "metrics": {m: {"higher_is_better": self.higher_is_better(m)} for m in self.metrics},
            "G": self.G,
            "G_std": self.G_std,
            "P": self.P,
            "distinctiveness": {m: distinctiveness(self, m) for m in self.metrics},
            "settings": self.settings,
        }

    def _check(self, metric: str) -> None:
        if metric not in self.G:
            raise ValueError(f"unknown metric {metric!r} for {self.task}; choose from {self.metrics}")


def generalizability_matrix(
    checkpoints: Mapping[str, str | os.PathLike],
    priors: Sequence[str],
    *,
    n_tables: int = 100,
    n_support: int = 800,
    n_query: int = 200,
    n_features: int | tuple[int, int] | None = None,
    n_classes: int | tuple[int, int] | None = None,
    task: Task | str = Task.CLASSIFICATION,
    seed: int = 0,
    n_estimators: int = 1,
    real_data: str | None = "sklearn",
    device: str = "auto",
    config: PriorConfig | None = None,
    verbose: bool = False,
) -> GeneralizabilityResult:
    """Compute G (models x priors) and P (models) for every metric.

    Parameters
    ----------
    checkpoints : mapping of str to path
        Model name (usually the prior it was trained on) -> checkpoint folder.
    priors : sequence of str
        Priors whose tables form the columns of G (registry names or mixture specs).
    n_tables : int, default=100
        Tables per prior (paper: 100).
    n_support, n_query : int, default=800, 200
        Support and query rows per table (paper: 800 / 200).
    n_features : int, (low, high) or None
        Feature count per table; None draws from ``PriorConfig().n_features`` (2..16).
    n_classes : int, (low, high) or None
        Class count per table; None lets the prior draw it as in pretraining.
    task : {"classification", "regression"}, default="classification"
    seed : int, default=0
        Seed of the tables (the same for every model) and of the estimators.
    n_estimators : int, default=1
        Ensemble members of each model (1 = the raw pretrained model).
    real_data : str or None, default="sklearn"
        Suite for P: ``"sklearn"`` runs `pretraining.evaluate.quick_validation`; a benchmark
        suite (``"benchmark"``, ``"benchmark-select"``, ``"benchmark-report"``) one split of
        each of its datasets; None skips P.
    device : str, default="auto"
        Estimator device.
    config : PriorConfig, optional
        Generator settings of the evaluation tables.
    verbose : bool, default=False
        Progress lines on stderr.

    Returns
    -------
    GeneralizabilityResult

    Raises
    ------
    ValueError
        Unknown task or real-data suite, no checkpoint or prior, or a checkpoint of the other
        task.
    """
    from mitra_sklearn import MitraClassifier, MitraRegressor

    task = Task.parse(task)
    if not checkpoints or not priors:
        raise ValueError("need at least one checkpoint and one prior")
    if real_data is not None and real_data not in SUITES:
        raise ValueError(f"real_data must be None or a suite ({', '.join(SUITES)}), got {real_data!r}")
    for name, checkpoint in checkpoints.items():
        found = checkpoint_task(checkpoint)
        if found != task:
            raise ValueError(f"checkpoint {name}={checkpoint} is a {found} model, but task={task!r}")

    start = time.perf_counter()
    tables = {}
    for prior in priors:
        tables[prior] = make_eval_tables(prior, n_tables=n_tables, n_support=n_support, n_query=n_query,
                                         n_features=n_features, n_classes=n_classes, task=task, seed=seed,
                                         config=config)
        if verbose:
            print(f"generated {n_tables} {prior} tables ({time.perf_counter() - start:.1f}s)", file=sys.stderr)

    estimator_cls = MitraClassifier if task is Task.CLASSIFICATION else MitraRegressor
    names = list(checkpoints)
    metric_names = list(G_METRICS[task])
    rows = []
    bar = progress_bar(len(names) * sum(len(tables[prior]) for prior in priors), "G matrix", "table", enabled=verbose)
    # Model-major loop: one model stays loaded (and cached) while it reads every table.
    for model in names:
        for prior in priors:
            t0 = time.perf_counter()
            for table in tables[prior]:
                estimator = estimator_cls(checkpoint=os.fspath(checkpoints[model]), n_estimators=n_estimators,
                                          random_state=seed, device=device)
                t1 = time.perf_counter()
                scores = _score_table(estimator, table, task)
                rows.append({"model": model, "prior": prior, "table": table.index, "n_classes": table.n_classes,
                             "n_features": table.x_support.shape[1], **scores,
                             "seconds": time.perf_counter() - t1})
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                bar.write(f"{model} on {prior}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    if bar is not None:
        bar.close()
    per_table = pd.DataFrame(rows)

    grouped = per_table.groupby(["model", "prior"], sort=False)[metric_names]
    mean, std = grouped.mean(), grouped.std(ddof=0)
    G = {m: mean[m].unstack("prior").reindex(index=names, columns=list(priors)).to_numpy() for m in metric_names}
    G_std = {m: std[m].unstack("prior").reindex(index=names, columns=list(priors)).to_numpy() for m in metric_names}

    P = {m: np.full(len(names), np.nan) for m in metric_names}
    if real_data is not None:
        for i, model in enumerate(names):
            vector = _real_data_vector(os.fspath(checkpoints[model]), task, real_data, seed, device)
            for m in metric_names:
                P[m][i] = vector[m]
    return GeneralizabilityResult(
        task=task, models=names, priors=list(priors), G=G, G_std=G_std, P=P, per_table=per_table,
        settings={
            "checkpoints": {k: os.fspath(v) for k, v in checkpoints.items()},
            "n_tables": n_tables, "n_support": n_support, "n_query": n_query,
            "n_features": n_features, "n_classes": n_classes, "seed": seed, "n_estimators": n_estimators,
            "real_data": real_data, "auc_multiclass": "ovo",
            "seconds": time.perf_counter() - start,
        },
    )


# ============================================================================ reading G
def distinctiveness(result: GeneralizabilityResult, metric: str = "auc") -> dict[str, dict[str, float]]:
    """Per prior: its diagonal entry and the best score of any *other* model on it.

    Parameters
    ----------
    result : GeneralizabilityResult
        Output of `generalizability_matrix`.
    metric : str, default="auc"

    Returns
    -------
    dict
        prior -> ``{"diagonal": G[j, j] (NaN when no model has the prior's name),
        "best_other": best over models not named after the prior}``. A low diagonal means a
        diverse prior; a low ``best_other`` means the other priors' models do not cover it.
    """
    higher = result.higher_is_better(metric)
    G = np.asarray(result.G[metric], dtype=float)
    models, priors = result.models, result.priors
    out = {}
    for j, prior in enumerate(priors):
        own = [i for i, m in enumerate(models) if m == prior]
        others = [G[i, j] for i, m in enumerate(models) if m != prior and not np.isnan(G[i, j])]
        best = (max(others) if higher else min(others)) if others else float("nan")
        out[prior] = {"diagonal": float(G[own[0], j]) if own else float("nan"), "best_other": float(best)}
    return out


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


# ============================================================================ CLI
def _range(text: str | None) -> int | tuple[int, int] | None:
    if text is None:
        return None
    parts = [int(p) for p in text.replace("-", " ").replace(",", " ").split()]
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m pretraining.generalizability``."""
    parser = argparse.ArgumentParser(
        prog="python -m pretraining generalizability",
        description="Generalizability matrix G (model trained on prior i, tested on prior j) and real-data P.",
    )
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=FOLDER",
                        help="model trained on one prior, named after it (repeatable)")
    parser.add_argument("--priors", help="comma-separated evaluation priors (default: the checkpoint names "
                                         "that are registry priors, else scm,et,gb,dt,rf,dsrf)")
    parser.add_argument("--task", choices=[t.value for t in Task], type=Task.parse, default="classification",
                        help="task of the checkpoints (default classification)")
    parser.add_argument("--n-tables", type=int, default=100, help="evaluation tables per prior (default 100)")
    parser.add_argument("--n-support", type=int, default=800, help="support rows per table (default 800)")
    parser.add_argument("--n-query", type=int, default=200, help="query rows per table (default 200)")
    parser.add_argument("--n-features", help="fixed count or range 'LOW-HIGH' (default: PriorConfig range)")
    parser.add_argument("--n-classes", help="fixed count or range 'LOW-HIGH' (default: drawn by the prior)")
    parser.add_argument("--n-estimators", type=int, default=1, help="ensemble members per prediction (default 1)")
    parser.add_argument("--real-data", choices=[*SUITES, "none"], default="sklearn",
                        help="suite for P (default sklearn); benchmark-select while choosing priors")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tables and the estimators (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
    parser.add_argument("--out", default="docs/results/generalizability",
                        help="folder for G and P as CSV, JSON and heatmaps (default docs/results/generalizability)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-prior lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m pretraining.generalizability``).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0).
    """
    run(argv)
    return 0


def run(argv: Sequence[str] | None = None) -> GeneralizabilityResult:
    """Run the CLI and return the `generalizability_matrix` result.

    Parameters
    ----------
    argv : sequence of str, optional

    Returns
    -------
    GeneralizabilityResult
    """
    from .priors import PRIORS

    args = build_parser().parse_args(argv)
    checkpoints: dict[str, str] = {}
    for value in args.checkpoint:
        name, sep, folder = value.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=FOLDER, got {value!r}")
        checkpoints[name.strip()] = folder.strip()
    if args.priors:
        priors = [p.strip() for p in args.priors.split(",") if p.strip()]
    else:
        priors = [n for n in checkpoints if n in PRIORS] or list(PRIORS)
    result = generalizability_matrix(
        checkpoints, priors, n_tables=args.n_tables, n_support=args.n_support, n_query=args.n_query,
        n_features=_range(args.n_features), n_classes=_range(args.n_classes), task=args.task, seed=args.seed,
        n_estimators=args.n_estimators, real_data=None if args.real_data == "none" else args.real_data,
        device=args.device, verbose=not args.quiet,
    )
    written = save_generalizability(result, args.out)
    for metric in result.metrics:
        print(f"\n### G ({metric}; rows: trained on, columns: tested on; P = real data)\n")
        print(markdown(result, metric))
    print("\nwrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
