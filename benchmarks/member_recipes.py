"""Ensemble recipes of one or more checkpoints, scored offline from cached member outputs.

A recipe ``"muon,v3:6"`` is what ``MitraClassifier(checkpoint=[muon, v3], n_estimators=6)``
runs: member i takes the i-th view of the ensemble plan (feature order, class permutation,
support rows) and the checkpoint ``i mod 2`` of the list. This script runs each checkpoint
once per dataset and split of a suite with as many members as the largest recipe asks for,
keeps every member's logits, and scores each recipe from them exactly as the estimator combines
its members (equal to the estimator's ``predict_proba`` to 1e-6 where checked: the shipped v3
with 4 members and the v4 candidate with 6). So member counts, the order of the checkpoints
(which views each one gets) and temperatures cost one run per checkpoint, not one per recipe.

    PYTHONPATH=. python benchmarks/member_recipes.py --checkpoint v3=mitra-small-classifier \\
        --checkpoint muon=<folder> --recipe v3:4 --recipe muon,v3:6 --recipe v3,muon:6 --out /tmp/recipes
    python -m pretraining evaluate --from-csv /tmp/recipes/results.csv --compare muon,v3:6 v3:4 --out /tmp/recipes

``results.csv`` has the evaluation's columns (one method per recipe), so ``--compare`` and
``--ship-check`` read it. With ``--task regression`` the same runs ``MitraRegressor`` on the
suite's regression tables: each member's mean predictions are kept and a recipe averages them
as the estimator does (so ``binned,v3:4`` also scores a mix of a binned and a scalar head, which
one estimator cannot hold, as two estimators' members averaged). A binned head's members keep
their raw bin logits and target scaling, so ``@T`` scores its softmax temperature (as
``MitraRegressor(softmax_temperature=T)``); it changes nothing for a scalar head.

Give each checkpoint as a folder whose ``config.json`` declares no ``ensemble_with``
partners (they would add members). Tune recipes on ``benchmark-select`` only.

With ``--cache DIR`` every run's member outputs are also written under ``DIR`` (keyed by the
weights' SHA-256, the package version, the table, split, random state and member count) and
read back by later calls, so a new candidate is compared with v3 without running v3 again.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from temperature_sweep import member_logits

from mitra_sklearn import MitraClassifier, MitraRegressor, __version__
from mitra_sklearn.ensemble import EnsembleMember, softmax
from mitra_sklearn.tasks import ClassificationTask, RegressionTask, TargetScaling
from pretraining.evaluate.metrics import classification_metrics, expand_proba, regression_metrics
from pretraining.evaluate.runner import RESULT_COLUMNS
from pretraining.evaluate.splits import cached_splits
from pretraining.realdata import load_suite


@dataclass(frozen=True)
class Recipe:
    """Checkpoint names in member order, the member count and the softmax temperature."""

    order: tuple[str, ...]
    n_members: int
    temperature: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Recipe:
        """``"a,b:6"`` or ``"a,b:6@0.9"`` (temperature 0.9)."""
        names, _, rest = text.partition(":")
        count, _, temperature = rest.partition("@")
        if not names or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--recipe {text!r}: write NAMES:N[@T], e.g. muon,v3:6 or v3:4@0.9")
        return cls(tuple(names.split(",")), int(count), float(temperature) if temperature else 1.0)


@dataclass
class SplitRun:
    """One checkpoint's members on one split: their views and outputs (a classifier's logits, a
    scalar regression head's mean predictions, a binned head's `binned_member_outputs`), and for
    each member count the number of members the estimator's own plan has (None where its views
    differ)."""

    members: list[EnsembleMember]
    logits: list[np.ndarray]
    plan_sizes: dict[int, int | None]
    task: ClassificationTask | RegressionTask


def run_checkpoint(checkpoint: str, n_members: int, counts: set[int], X_train, y_train, X_test,
                   random_state: int = 0, cache: Path | None = None, key: str = "",
                   task: str = "classification") -> SplitRun:
    """Fit with ``n_members`` members, keep their outputs; check which smaller plans are its prefix.

    With ``cache``, the outputs are read from ``cache`` when an earlier call stored them for the
    same weights, package version, ``key`` (table and split), random state and member count, else
    computed and stored there (a binned regression head's under a name of their own: other
    outputs). Fitting (planning the members) is cheap and always done.
    """
    estimator_class = MitraClassifier if task == "classification" else MitraRegressor
    estimator = estimator_class(checkpoint, n_estimators=n_members, random_state=random_state).fit(X_train, y_train)
    if len(estimator.checkpoint_infos_) > 1:
        raise SystemExit(f"{checkpoint!r} declares ensemble_with partners: give a copy of its weights whose "
                         "config.json declares none (each --checkpoint must run its own members only)")
    members = estimator.members_
    binned = task == "regression" and estimator.task_.n_bins > 0
    sizes = {}
    for count in counts:
        plan = estimator_class(checkpoint, n_estimators=count, random_state=random_state).fit(X_train, y_train).members_
        same = len(plan) <= len(members) and all(a.seed == b.seed for a, b in zip(plan, members))
        sizes[count] = len(plan) if same else None
    path = None
    if cache is not None:
        sha = estimator.checkpoint_infos_[0].sha256
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        kind = "-bins" if binned else ""
        path = cache / f"{sha[:16]}-{__version__}" / f"{name}-rs{random_state}-m{n_members}{kind}.npz"
    if path is not None and path.exists():
        with np.load(path) as stored:
            logits = list(stored["logits"])
        if len(logits) != len(members) or logits[0].shape[0] != len(X_test):
            raise SystemExit(f"{path} does not match this run's members or rows: delete the cache folder")
    else:
        if task == "classification":
            logits = member_logits(estimator, X_test)
        else:
            logits = binned_member_outputs(estimator, X_test) if binned else estimator._predict_members(X_test)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".partial.npz")
            np.savez(temporary, logits=np.stack(logits))
            temporary.replace(path)  # a killed run leaves no half-written entry behind
    return SplitRun(members, logits, sizes, estimator.task_)


def binned_member_outputs(estimator: MitraRegressor, X) -> list[np.ndarray]:
    """Every member's raw bin logits for the rows of ``X`` after its target scaling's ``low`` and
    ``high``: (rows, 2 + n_bins), so that `member_mean` can apply any temperature later."""
    n_bins = estimator.task_.n_bins

    def keep(member: EnsembleMember, outputs: np.ndarray, context: TargetScaling) -> np.ndarray:
        rows = np.empty((len(outputs), 2 + n_bins))
        rows[:, 0], rows[:, 1], rows[:, 2:] = context.low, context.high, outputs[:, :n_bins]
        return rows

    return estimator._run_members(estimator._encode_query(X), keep)


def member_mean(task: RegressionTask, member: EnsembleMember, outputs: np.ndarray, temperature: float) -> np.ndarray:
    """A regression member's mean predictions: a scalar head's as cached, a binned head's from its
    `binned_member_outputs` at ``temperature`` (the estimator's own arithmetic)."""
    if outputs.ndim == 1:
        return outputs
    tempered = dataclasses.replace(task, temperature=temperature)
    # One scaling per member: these runs give each member one support set (no "nearest" neighbourhoods).
    return tempered.member_prediction(member, outputs[:, 2:], TargetScaling(outputs[0, 0], outputs[0, 1]))


def recipe_output(recipe: Recipe, runs: dict[str, SplitRun]) -> np.ndarray:
    """What the estimator with this recipe predicts: class probabilities (rows, classes of the
    split) or, for regressors, the mean prediction per row."""
    size = runs[recipe.order[0]].plan_sizes[recipe.n_members]
    if size is None:
        raise ValueError(f"{recipe}: the estimator's plan is not a prefix of the cached one on this table")
    picks = [runs[recipe.order[i % len(recipe.order)]] for i in range(size)]
    members = [run.members[i] for i, run in enumerate(picks)]  # runs on other tables (features) plan other views
    if isinstance(picks[0].task, RegressionTask):
        means = [member_mean(run.task, member, run.logits[i], recipe.temperature)
                 for i, (run, member) in enumerate(zip(picks, members))]
        return picks[0].task.combine(means, members)
    probabilities = [softmax(run.logits[i] / recipe.temperature) for i, run in enumerate(picks)]
    return picks[0].task.combine(probabilities, members)


def recipe_rows(recipes: dict[str, Recipe], runs: dict[str, SplitRun], checkpoints: dict[str, str], dataset,
                split, present: np.ndarray | None, random_state: int) -> list[dict]:
    """One results row per recipe (the evaluation's columns) for one split and random state
    (``present``: the classes in the training rows; None for regression)."""
    rows = []
    y_test = dataset.y[split.test]
    for text, recipe in recipes.items():
        output = recipe_output(recipe, runs)
        if present is None:
            metrics = regression_metrics(y_test, output, dataset.y[split.train])
        else:
            metrics = classification_metrics(y_test, expand_proba(output, present, dataset.n_classes))
        rows.append(result_row(dataset, split, text, "+".join(checkpoints[n] for n in recipe.order),
                               recipe.n_members, metrics, random_state))
    return rows


def result_row(dataset, split, method: str, checkpoint: str, n_members: int, metrics: dict,
               random_state: int) -> dict:
    """One row of the evaluation's ``results.csv`` for a method's scores on one split."""
    return {
        "dataset": dataset.name, "task": dataset.task, "method": method, "checkpoint": checkpoint,
        "n_estimators": n_members, "fine_tune": False, "repeat": split.repeat,
        "split_id": f"{split.split_id}/rs{random_state}", "n_train": len(split.train), "n_test": len(split.test),
        "n_rows": dataset.n_rows, "n_features": dataset.n_features,
        "n_categorical": int(dataset.categorical_mask.sum()), "n_classes": dataset.n_classes, **metrics, "error": "",
    }


def suite_tables(suite: str, task: str, names: str | None = None) -> list:
    """The suite's datasets of one task (``names``: a comma-separated subset), loaded quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        datasets = [d for d in load_suite(suite) if d.task == task]
    if not names:
        return datasets
    wanted = set(names.split(","))
    return [d for d in datasets if d.name in wanted]


def split_tables(dataset, split, task: str) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray | None]:
    """A split's training and test features, training targets (class indices for classification)
    and the classes present in its training rows (None for regression)."""
    X_train, X_test = dataset.X.iloc[split.train], dataset.X.iloc[split.test]
    if task == "classification":
        present, y_train = np.unique(dataset.y[split.train], return_inverse=True)
        return X_train, X_test, y_train, present
    return X_train, X_test, dataset.y[split.train], None


def write_results(rows: list[dict], out: str | Path, task: str) -> None:
    """Write ``results.csv`` (the evaluation's columns) under ``out`` and print each method's means."""
    frame = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "results.csv", index=False)
    columns = ["roc_auc", "accuracy", "log_loss"] if task == "classification" else ["r2", "rmse"]
    print(frame.groupby("method")[columns].mean().to_string(float_format="{:.4f}".format))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=CHECKPOINT")
    parser.add_argument("--recipe", action="append", required=True, metavar="NAMES:N[@T]")
    parser.add_argument("--suite", default="benchmark-select")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification",
                        help="which of the suite's tables, with MitraClassifier or MitraRegressor")
    parser.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    parser.add_argument("--random-states", type=int, nargs="+", default=[0],
                        help="the estimators' random_state: each draws other member views; a recipe's rows for all of "
                             "them count as repeats of its splits, so reports average over them")
    parser.add_argument("--out", required=True, help="folder for results.csv")
    parser.add_argument("--cache", type=Path, help="folder that keeps every run's member logits for later calls")
    args = parser.parse_args()
    checkpoints = dict(entry.split("=", 1) for entry in args.checkpoint)
    recipes = {text: Recipe.parse(text) for text in args.recipe}
    unknown = {name for r in recipes.values() for name in r.order} - set(checkpoints)
    if unknown:
        raise SystemExit(f"recipes name unknown checkpoints {sorted(unknown)}; give them with --checkpoint NAME=...")
    counts = {r.n_members for r in recipes.values()}
    largest = max(counts)
    datasets = suite_tables(args.suite, args.task, args.datasets)
    rows = []
    for dataset in datasets:
        for split in cached_splits(dataset):
            X_train, X_test, y_train, present = split_tables(dataset, split, args.task)
            for state in args.random_states:
                runs = {name: run_checkpoint(path, largest, counts, X_train, y_train, X_test, state, args.cache,
                                             f"{dataset.name}-{split.split_id}", args.task)
                        for name, path in checkpoints.items()}
                rows += recipe_rows(recipes, runs, checkpoints, dataset, split, present, state)
        print(f"{dataset.name}: done", flush=True)
    write_results(rows, args.out, args.task)


if __name__ == "__main__":
    main()
