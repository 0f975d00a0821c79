"""Summaries of a results table: mean metrics, average rank, win rate against RandomForest and
per-group breakdowns, as DataFrames, markdown and a figure.

Every summary starts from the same per-dataset means (each dataset's repeats averaged first),
ranks methods on the task's primary metric (`PRIMARY_METRIC`: ROC-AUC or RMSE; 1 = best, ties
averaged, a failed method last) and compares them with ``REFERENCE_METHOD`` on that metric. The
groups are those of `pretraining.realdata.dataset_groups`, recomputed from the results' shape
columns.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..realdata import GROUPS, MissingPackageError, dataset_groups, load_dataset, markdown_table
from .metrics import HIGHER_IS_BETTER, METRIC_COLUMNS, METRIC_LABELS, PRIMARY_METRIC, TASK_METRICS, Task

__all__ = [
    "REFERENCE_METHOD",
    "summarize",
    "win_rates",
    "group_summary",
    "per_dataset_table",
    "paired_differences",
    "average_over_seeds",
    "markdown_report",
    "plot_results",
    "merge_results",
]

#: The baseline every method's win rate is measured against.
REFERENCE_METHOD = "RF"
_SHAPE_COLUMNS = ("n_rows", "n_features", "n_categorical", "n_classes")


# ============================================================================ building blocks
def _task_rows(results: pd.DataFrame, task: Task) -> pd.DataFrame:
    return results[results["task"] == task]


def _dataset_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over repeats of every metric, per (task, dataset, method)."""
    columns = [c for c in (*METRIC_COLUMNS, "seconds") if c in results]
    return results.groupby(["task", "dataset", "method"], sort=False)[columns].mean().reset_index()


def _ranks(means: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rank of each method within each dataset (1 = best; a failed method ranks last)."""
    ascending = not HIGHER_IS_BETTER[metric]
    ranked = means.copy()
    ranked["rank"] = ranked.groupby("dataset")[metric].rank(ascending=ascending, na_option="bottom")
    return ranked


def _wins(values: pd.DataFrame, method: str, reference: str, higher_is_better: bool) -> pd.Series:
    """Per dataset: 1 if ``method`` beats ``reference``, 0.5 for a tie, 0 if it loses.

    ``values`` is datasets x methods; a NaN (the method failed) loses to any number, and two
    NaNs tie. Datasets where either method was not run at all are left out by the caller.
    """
    sign = 1.0 if higher_is_better else -1.0
    a = sign * values[method].to_numpy(dtype=float)
    b = sign * values[reference].to_numpy(dtype=float)
    a = np.where(np.isnan(a), -np.inf, a)  # failed = worst, as in the ranks
    b = np.where(np.isnan(b), -np.inf, b)
    return pd.Series(np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)), index=values.index)


def _win_rates_of(means: pd.DataFrame, metric: str, reference: str) -> pd.Series:
    """Win rate of every method against ``reference`` on the datasets both were run on."""
    ran = means.pivot(index="dataset", columns="method", values=metric)
    present = means.assign(one=1.0).pivot(index="dataset", columns="method", values="one").notna()
    if reference not in ran:
        return pd.Series(dtype=float)
    out = {}
    for method in ran.columns:
        both = present[method] & present[reference]
        if both.any():
            out[method] = float(_wins(ran[both], method, reference, HIGHER_IS_BETTER[metric]).mean())
    return pd.Series(out, dtype=float)


def _shape_info(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, dataset): the shape columns the groups are computed from.

    Results written before these columns existed miss ``n_rows``/``n_categorical``; they are
    then read from the dataset itself (by name) when it can be loaded.
    """
    columns = [c for c in _SHAPE_COLUMNS if c in results]
    info = results.groupby(["task", "dataset"], sort=False)[columns].first()
    for column in _SHAPE_COLUMNS:
        if column not in info:
            info[column] = np.nan
    info = info.astype(float)
    for task, name in info.index[info.isna().any(axis=1)]:
        try:
            data = load_dataset(name)
        except (KeyError, LookupError, MissingPackageError):
            continue
        info.loc[(task, name), list(_SHAPE_COLUMNS)] = [data.n_rows, data.n_features,
                                                        int(data.categorical_mask.sum()), data.n_classes]
    return info


def _groups_by_dataset(results: pd.DataFrame, task: Task) -> dict[str, tuple[str, ...]]:
    """Dataset name -> its groups (`pretraining.realdata.dataset_groups`); unknown shapes warn."""
    info = _shape_info(_task_rows(results, task))
    out, unknown = {}, []
    for (_, name), row in info.iterrows():
        if row.isna().any():
            unknown.append(name)
            continue
        out[name] = dataset_groups(task, int(row["n_rows"]), int(row["n_features"]), int(row["n_categorical"]),
                                   int(row["n_classes"]))
    if unknown:
        warnings.warn(f"no group for {', '.join(unknown)}: their shape is not in the results and they cannot be "
                      "loaded", UserWarning, stacklevel=3)
    return out


# ============================================================================ summaries
def summarize(results: pd.DataFrame, task: Task) -> pd.DataFrame:
    """One row per method: mean metrics over datasets, average rank, win rate and time.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows from `pretraining.evaluate.evaluate_checkpoint` / `pretraining.evaluate.evaluate_baselines`
        (both tasks may be mixed).
    task : {"classification", "regression"}

    Returns
    -------
    pandas.DataFrame
        Columns ``method, datasets, <metrics>, avg_rank``, ``win_vs_RF`` (only when
        ``REFERENCE_METHOD`` is in the results; see `pretraining.evaluate.win_rates`), ``seconds``, ``failed``.
        Sorted by average rank. Rank uses ROC-AUC (classification) or RMSE (regression), per
        dataset after averaging its repeats.
    """
    task = Task.parse(task)
    rows = _task_rows(results, task)
    means = _dataset_means(rows)
    if means.empty:
        return pd.DataFrame()
    metric = PRIMARY_METRIC[task]
    ranked = _ranks(means, metric)
    table = ranked.groupby("method", sort=False).agg(
        datasets=("dataset", "nunique"),
        **{m: (m, "mean") for m in TASK_METRICS[task]},
        avg_rank=("rank", "mean"),
        seconds=("seconds", "mean"),
    )
    wins = _win_rates_of(means, metric, REFERENCE_METHOD)
    if not wins.empty:
        table.insert(table.columns.get_loc("avg_rank") + 1, f"win_vs_{REFERENCE_METHOD}", wins.reindex(table.index))
    failed = rows[rows["error"] != ""].groupby("method")["dataset"].nunique()
    table["failed"] = failed.reindex(table.index).fillna(0).astype(int)
    return table.sort_values("avg_rank").reset_index()


def win_rates(results: pd.DataFrame, task: Task, reference: str = REFERENCE_METHOD) -> pd.Series:
    """Pairwise win rate of every method against ``reference`` on the task's primary metric.

    The share of datasets (each averaged over its repeats) on which the method is better than
    the reference; a tie counts half, a failed method loses to one that has a score, and only
    datasets on which both methods were run count. The reference scores 0.5 against itself.

    Parameters
    ----------
    results : pandas.DataFrame
    task : {"classification", "regression"}
    reference : str, default="RF"
        Method to compare with.

    Returns
    -------
    pandas.Series
        Method -> win rate in [0, 1]; empty when ``reference`` is not in the results.
    """
    task = Task.parse(task)
    means = _dataset_means(_task_rows(results, task))
    if means.empty:
        return pd.Series(dtype=float)
    return _win_rates_of(means, PRIMARY_METRIC[task], reference)


def group_summary(results: pd.DataFrame, task: Task) -> pd.DataFrame:
    """Average rank, mean primary metric and win rate of every method within each group.

    Ranks are computed among all methods on each dataset (as in `summarize`) and then averaged
    over the datasets of the group, so a group's ranks are comparable with the overall ones.

    Parameters
    ----------
    results : pandas.DataFrame
    task : {"classification", "regression"}

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (group, method): ``group, datasets, method, <primary
        metric>, avg_rank`` and ``win_vs_RF`` (when ``REFERENCE_METHOD`` is in the results).
        Groups are those of `pretraining.realdata.GROUPS` for the task, in that order; a group
        without datasets is left out.
    """
    task = Task.parse(task)
    means = _dataset_means(_task_rows(results, task))
    if means.empty:
        return pd.DataFrame()
    metric = PRIMARY_METRIC[task]
    ranked = _ranks(means, metric)
    groups = _groups_by_dataset(results, task)
    order = list(dict.fromkeys(summarize(results, task)["method"]))
    parts = []
    for group in GROUPS[task]:
        members = [name for name, g in groups.items() if group in g]
        if not members:
            continue
        sub = ranked[ranked["dataset"].isin(members)]
        table = sub.groupby("method", sort=False).agg(**{metric: (metric, "mean")}, avg_rank=("rank", "mean"))
        wins = _win_rates_of(sub, metric, REFERENCE_METHOD)
        if not wins.empty:
            table[f"win_vs_{REFERENCE_METHOD}"] = wins.reindex(table.index)
        table = table.reindex([m for m in order if m in table.index]).reset_index()
        table.insert(0, "datasets", len(members))
        table.insert(0, "group", group)
        parts.append(table)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def per_dataset_table(results: pd.DataFrame, task: Task, metric: str | None = None) -> pd.DataFrame:
    """Datasets x methods table of one metric (mean over repeats).

    Parameters
    ----------
    results : pandas.DataFrame
    task : {"classification", "regression"}
    metric : str, optional
        Default: ROC-AUC or RMSE.

    Returns
    -------
    pandas.DataFrame
    """
    task = Task.parse(task)
    metric = metric or PRIMARY_METRIC[task]
    means = _dataset_means(_task_rows(results, task))
    if means.empty:
        return pd.DataFrame()
    order = list(dict.fromkeys(means["method"]))
    table = means.pivot(index="dataset", columns="method", values=metric)
    return table.reindex(columns=order, index=list(dict.fromkeys(means["dataset"]))).reset_index()


def paired_differences(
    results: pd.DataFrame,
    task: Task,
    comparisons: Sequence[tuple[str, str]],
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired differences between two methods over the datasets, with bootstrap intervals.

    For each pair ``(a, b)`` and each metric of the task: the mean over datasets of
    ``a - b`` (each dataset first averaged over its repeats), a percentile bootstrap interval
    of that mean over datasets (datasets resampled with replacement) and the number of datasets
    on which ``a`` is strictly better. Only datasets on which both methods have a score count,
    so a failed fit drops its dataset from that metric's comparison.

    Parameters
    ----------
    results : pandas.DataFrame
    task : {"classification", "regression"}
    comparisons : sequence of (str, str)
        Pairs of method names ``(a, b)``; the difference is ``a - b``.
    n_resamples : int, default=10000
        Bootstrap resamples of the datasets.
    confidence : float, default=0.95
        Coverage of the interval.
    seed : int, default=0
        Seed of the resampling (one generator per pair and metric, so a row does not depend
        on the other rows).

    Returns
    -------
    pandas.DataFrame
        One row per (pair, metric): ``a, b, metric, datasets, difference, low, high, a_better``.

    Raises
    ------
    ValueError
        If a named method has no results for the task, or ``confidence`` is not in (0, 1).
    """
    task = Task.parse(task)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    means = _dataset_means(_task_rows(results, task))
    methods = set(means["method"])
    missing = sorted({m for pair in comparisons for m in pair} - methods)
    if missing:
        raise ValueError(f"no {task} results for method(s) {', '.join(map(repr, missing))}; "
                         f"methods present: {', '.join(sorted(methods))}")
    # Datasets x methods, once per metric (every pair reads the same tables).
    by_metric = {metric: means.pivot(index="dataset", columns="method", values=metric)
                 for metric in TASK_METRICS[task]}
    rows = []
    for a, b in comparisons:
        for metric, values in by_metric.items():
            table = values[[a, b]].dropna()
            difference = (table[a] - table[b]).to_numpy(dtype=float)
            sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
            low = high = np.nan
            if len(difference):
                rng = np.random.default_rng(seed)
                picks = rng.integers(0, len(difference), size=(n_resamples, len(difference)))
                low, high = np.quantile(difference[picks].mean(axis=1), [(1 - confidence) / 2, (1 + confidence) / 2])
            rows.append({"a": a, "b": b, "metric": metric, "datasets": len(difference),
                         "difference": float(difference.mean()) if len(difference) else np.nan,
                         "low": float(low), "high": float(high),
                         "a_better": int((sign * difference > 0).sum())})
    return pd.DataFrame(rows, columns=["a", "b", "metric", "datasets", "difference", "low", "high", "a_better"])


#: Issue 25's rule for shipping a new small checkpoint, per task: on each of these metrics the
#: candidate beats the incumbent with a paired interval over the datasets that excludes 0, and
#: beats the reference (RandomForest) on the mean over the datasets both were run on.
SHIP_METRICS: dict[Task, tuple[str, ...]] = {Task.CLASSIFICATION: ("roc_auc", "log_loss"), Task.REGRESSION: ("r2",)}


def ship_check(
    results: pd.DataFrame,
    task: Task | str,
    candidate: str,
    incumbent: str,
    reference: str = REFERENCE_METHOD,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Issue 25's shipping rule for ``candidate`` against ``incumbent`` and ``reference``.

    For each metric of `SHIP_METRICS`: the paired difference ``candidate - incumbent``
    (`paired_differences`) must have its whole interval on the candidate's side of 0, and the
    mean difference ``candidate - reference`` over the datasets both ran on must favour the
    candidate. ``candidate`` ships when every criterion passes.

    Parameters
    ----------
    results : pandas.DataFrame
    task : {"classification", "regression"}
    candidate, incumbent, reference : str
        Method names as in ``results``.
    n_resamples, confidence, seed
        Of the bootstrap intervals (`paired_differences`).

    Returns
    -------
    pandas.DataFrame
        One row per criterion: ``metric``, ``against``, ``rule``, ``difference``, ``low``,
        ``high``, ``datasets`` and ``passed`` (bool).

    Raises
    ------
    ValueError
        If a named method has no results for the task.
    """
    task = Task.parse(task)
    pairs = paired_differences(results, task, [(candidate, incumbent), (candidate, reference)],
                               n_resamples=n_resamples, confidence=confidence, seed=seed)
    rows = []
    for metric in SHIP_METRICS[task]:
        sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        for against, rule in ((incumbent, "interval excludes 0"), (reference, "mean better")):
            pair = pairs[(pairs["b"] == against) & (pairs["metric"] == metric)].iloc[0]
            # Against the incumbent the interval's worse end, against the reference the mean, must favour it.
            bounds = (pair["low"], pair["high"]) if against == incumbent else (pair["difference"],)
            worst = min(sign * bound for bound in bounds)
            rows.append({"metric": metric, "against": against, "rule": rule, "difference": pair["difference"],
                         "low": pair["low"], "high": pair["high"], "datasets": int(pair["datasets"]),
                         "passed": bool(pair["datasets"] > 0 and worst > 0)})
    return pd.DataFrame(rows, columns=["metric", "against", "rule", "difference", "low", "high", "datasets", "passed"])


def _ship_markdown(candidate: str, checks: pd.DataFrame) -> list[str]:
    """A ship check as markdown lines: its criteria table and the verdict."""
    table = pd.DataFrame({
        "criterion": [f"{METRIC_LABELS[r.metric]}: {candidate} - {r.against}, {r.rule}" for r in checks.itertuples()],
        "difference [interval]": [f"{r.difference:+.4f} [{r.low:+.3f}, {r.high:+.3f}]" for r in checks.itertuples()],
        "datasets": checks["datasets"].tolist(),
        "passed": ["yes" if passed else "no" for passed in checks["passed"]],
    })
    verdict = "every criterion passes" if checks["passed"].all() else "does not pass"
    return [markdown_table(table), "", f"**{candidate}: {verdict}.**", ""]


def average_over_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """Pool the models of one recipe trained with different seeds into one method.

    Methods named ``"<name> seed <N>"`` become ``"<name> (<K> seeds)"``, K being the number of
    seeds of that name; every summary then averages each dataset over all seeds and splits (a
    paired difference compares seed means per dataset; a failed fit is left out of the mean,
    as a failed split is). Other methods keep their names.

    Parameters
    ----------
    results : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        A copy with the new method names.
    """
    parts = results["method"].astype(str).str.extract(r"^(?P<name>.+) seed (?P<seed>\d+)$")
    seeds = parts.dropna().groupby("name")["seed"].nunique()
    pooled = parts["name"].map(lambda name: f"{name} ({seeds[name]} seed{'s' if seeds[name] > 1 else ''})"
                               if isinstance(name, str) else None)
    out = results.copy()
    out["method"] = pooled.where(pooled.notna(), results["method"])
    return out


def _paired_markdown(pairs: pd.DataFrame) -> str:
    """The comparisons as one markdown row per pair: difference [interval] and datasets better per metric."""
    rows = []
    for (a, b), sub in pairs.groupby(["a", "b"], sort=False):
        row = {"comparison": f"{a} - {b}"}
        for item in sub.itertuples(index=False):
            label = METRIC_LABELS[item.metric]
            row[f"{label} difference"] = f"{item.difference:+.4f} [{item.low:+.3f}, {item.high:+.3f}]"
            row[f"{label}: a better"] = f"{item.a_better} / {item.datasets}"
        rows.append(row)
    return markdown_table(pd.DataFrame(rows))


# ============================================================================ markdown and figure
def _group_pivot(groups: pd.DataFrame, value: str) -> pd.DataFrame:
    """Methods x groups table of one column of `group_summary` (header: group and dataset count)."""
    labels = {g: f"{g} ({n})" for g, n in zip(groups["group"], groups["datasets"], strict=True)}
    table = groups.pivot(index="method", columns="group", values=value)
    table = table.reindex(index=list(dict.fromkeys(groups["method"])), columns=list(labels))
    return table.rename(columns=labels).reset_index()


def markdown_report(
    results: pd.DataFrame, title: str = "Real-data evaluation", comparisons: Sequence[tuple[str, str]] = (),
    ship_checks: Sequence[tuple[str, str]] = (),
) -> str:
    """Markdown tables (summary, groups, paired differences, ship checks, per dataset) for each task.

    Parameters
    ----------
    results : pandas.DataFrame
    title : str
    comparisons : sequence of (str, str), default=()
        Method pairs ``(a, b)`` for a table of paired differences ``a - b``
        (`paired_differences`); a pair is used for each task in which both methods have results.
    ship_checks : sequence of (str, str), default=()
        Pairs ``(candidate, incumbent)`` for issue 25's shipping rule (`ship_check`, against
        RF); a pair is used for each task in which both methods and RF have results.

    Returns
    -------
    str
    """
    parts = [f"## {title}", ""]
    for task in TASK_METRICS:
        sub = _task_rows(results, task)
        if sub.empty:
            continue
        metric = PRIMARY_METRIC[task]
        label = METRIC_LABELS[metric]
        repeats = int(sub["repeat"].max()) + 1
        summary = summarize(results, task)
        win = f"win_vs_{REFERENCE_METHOD}"
        parts += [
            f"### {task.capitalize()} ({sub['dataset'].nunique()} datasets, {repeats} split(s) each)",
            "",
            (f"Average rank by {label} (1 = best); metrics are means over datasets; "
             + (f"`{win}` = share of datasets where the method beats {REFERENCE_METHOD} on {label} (ties "
                "count half); " if win in summary else "")
             + "seconds = fit + predict per split."),
            "",
            markdown_table(summary),
            "",
        ]
        groups = group_summary(results, task)
        if not groups.empty:
            definitions = "; ".join(f"{g}: {d}" for g, d in GROUPS[task].items())
            parts += [f"By group ({definitions}; datasets per group in brackets). Average rank by {label}:", "",
                      markdown_table(_group_pivot(groups, "avg_rank"), "{:.2f}"), "",
                      f"Mean {label} by group:", "", markdown_table(_group_pivot(groups, metric)), ""]
            if win in groups:
                parts += [f"Win rate against {REFERENCE_METHOD} by group:", "",
                          markdown_table(_group_pivot(groups, win), "{:.2f}"), ""]
        methods = set(sub["method"])
        pairs = [(a, b) for a, b in comparisons if a in methods and b in methods]
        if pairs:
            parts += ["Paired differences over the datasets (a - b; each dataset averaged over its splits first; "
                      "95 % bootstrap interval over datasets, 10,000 resamples; 'a better': datasets where a is "
                      "strictly better):", "", _paired_markdown(paired_differences(results, task, pairs)), ""]
        for candidate, incumbent in ship_checks:
            if {candidate, incumbent, REFERENCE_METHOD} <= methods:
                rules = ", ".join(METRIC_LABELS[m] for m in SHIP_METRICS[task])
                parts += [f"Ship check (issue 25): on {rules}, {candidate} beats {incumbent} with a paired 95 % "
                          f"interval that excludes 0, and beats {REFERENCE_METHOD} on the mean:", ""]
                parts += _ship_markdown(candidate, ship_check(results, task, candidate, incumbent))
        parts += [f"Per-dataset {metric} (mean over splits):", "", markdown_table(per_dataset_table(results, task)),
                  ""]
    return "\n".join(parts)


def pyplot(what: str) -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend, or None (with a warning that no ``what``
    is written) when matplotlib is not installed: plots are optional, results are not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn(f"matplotlib is not installed (pip install matplotlib); no {what} written", UserWarning,
                      stacklevel=3)
        return None
    return plt


def plot_results(results: pd.DataFrame, path: str | os.PathLike) -> Path | None:
    """Draw, per task, the average rank and the per-dataset primary metric of each method.

    Parameters
    ----------
    results : pandas.DataFrame
    path : str or path-like
        PNG file to write.

    Returns
    -------
    Path or None
        None (with a warning) when matplotlib is not installed.
    """
    plt = pyplot("plot")
    if plt is None:
        return None
    tasks = [t for t in TASK_METRICS if (results["task"] == t).any()]
    if not tasks:
        return None
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 4.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        summary = summarize(results, task)
        metric = PRIMARY_METRIC[task]
        ax = axes[row, 0]
        ax.barh(summary["method"][::-1], summary["avg_rank"][::-1], color="tab:blue")
        for y, (rank, value) in enumerate(zip(summary["avg_rank"][::-1], summary[metric][::-1], strict=True)):
            ax.text(rank, y, f" {rank:.2f}  ({metric} {value:.3f})", va="center", fontsize=8)
        ax.set_xlabel("average rank (1 = best)")
        ax.set_title(f"{task}: average rank over {_task_rows(results, task)['dataset'].nunique()} datasets")
        ax.set_xlim(0, summary["avg_rank"].max() * 1.6 if len(summary) else 1)

        ax = axes[row, 1]
        table = per_dataset_table(results, task)
        x = np.arange(len(table))
        for method in table.columns[1:]:
            ax.plot(x, table[method], marker="o", linestyle="", label=method, alpha=0.8)
        ax.set_xticks(x, table["dataset"], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(metric)
        ax.set_title(f"{task}: {metric} per dataset ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)")
        ax.legend(fontsize=7, ncols=2)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def merge_results(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate result tables; a later row replaces an earlier one of the same method and split.

    Parameters
    ----------
    frames : sequence of DataFrame
        Tables as written to ``results.csv`` (by separate runs, e.g. the main run and an ablation).

    Returns
    -------
    pandas.DataFrame
    """
    merged = pd.concat(list(frames), ignore_index=True)
    keys = ["task", "method", "dataset", "split_id"]
    return merged.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)
