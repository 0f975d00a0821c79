"""G and P: every model scores every prior's tables and the real-data suite; reading G (distinctiveness)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mitra_sklearn.progress import progress_bar

from ..config import PriorConfig
from ..evaluate import checkpoint_task, evaluate_checkpoint, quick_validation, summarize
from ..evaluate.metrics import HIGHER_IS_BETTER, Task, expand_proba, score_predictions
from ..realdata import SUITES
from .tables import EvalTable, make_eval_tables

#: The metrics of G per task: the paper's short name -> the metric of
#: `pretraining.evaluate.metrics` (which also says whether higher is better).
G_METRICS: dict[Task, dict[str, str]] = {
    Task.CLASSIFICATION: {"auc": "roc_auc", "accuracy": "accuracy", "ce": "log_loss"},
    Task.REGRESSION: {"rmse": "rmse", "r2": "r2"},
}


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

    names = list(checkpoints)
    metric_names = list(G_METRICS[task])
    per_table = _score_every_table(checkpoints, tables, task, n_estimators=n_estimators, seed=seed, device=device,
                                   verbose=verbose)

    grouped = per_table.groupby(["model", "prior"], sort=False)[metric_names]
    G, G_std = (_models_by_priors(stat, metric_names, names, priors) for stat in (grouped.mean(), grouped.std(ddof=0)))

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


def _score_every_table(checkpoints: Mapping[str, str | os.PathLike], tables: dict[str, list[EvalTable]], task: Task,
                       *, n_estimators: int, seed: int, device: str, verbose: bool) -> pd.DataFrame:
    """One row per (model, prior, table): the table's metrics and the seconds it took."""
    from mitra_sklearn import MitraClassifier, MitraRegressor

    estimator_cls = MitraClassifier if task is Task.CLASSIFICATION else MitraRegressor
    rows = []
    bar = progress_bar(len(checkpoints) * sum(map(len, tables.values())), "G matrix", "table", enabled=verbose)
    # Model-major loop: one model stays loaded (and cached) while it reads every table.
    for model, checkpoint in checkpoints.items():
        for prior, prior_tables in tables.items():
            t0 = time.perf_counter()
            for table in prior_tables:
                estimator = estimator_cls(checkpoint=os.fspath(checkpoint), n_estimators=n_estimators,
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
    return pd.DataFrame(rows)


def _models_by_priors(stat: pd.DataFrame, metrics: list[str], models: list[str],
                      priors: Sequence[str]) -> dict[str, np.ndarray]:
    """Per metric, a (models x priors) array of a per-(model, prior) statistic."""
    return {m: stat[m].unstack("prior").reindex(index=models, columns=list(priors)).to_numpy() for m in metrics}


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


