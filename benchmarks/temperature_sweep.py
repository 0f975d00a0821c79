"""Which softmax temperature suits a classification checkpoint? A sweep on real tables.

Runs the checkpoint once per dataset and split of a suite (the evaluation protocol's splits:
3 repeats, 20 % test, at most 2,000 training rows), keeps every member's logits, and scores the
ensemble's probabilities at each temperature (logits divided by it before each member's
softmax): mean log-loss, accuracy and ROC-AUC over the binary tables, the multiclass tables and
all of them. Choose on ``benchmark-select`` only; the report half judges the choice.

    PYTHONPATH=. python benchmarks/temperature_sweep.py --checkpoint mitra-small-classifier --suite benchmark-select

(from the repository root: it reads the suite and splits of ``pretraining/``).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from mitra_sklearn import MitraClassifier
from mitra_sklearn.ensemble import softmax
from pretraining.evaluate.metrics import classification_metrics, expand_proba
from pretraining.evaluate.splits import cached_splits
from pretraining.realdata import load_suite

TEMPERATURES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2)


def member_logits(estimator: MitraClassifier, X) -> list[np.ndarray]:
    """Every member's logits of the label ids in use, for the rows of ``X``."""
    n_groups = estimator.task_.n_groups
    encoded = estimator._encode_query(X)
    return estimator._run_members(encoded, lambda member, outputs, context: outputs[:, :n_groups].astype(np.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--suite", default="benchmark-select")
    parser.add_argument("--n-estimators", type=int, default=4)
    parser.add_argument("--temperatures", type=float, nargs="+", default=list(TEMPERATURES),
                        help="temperatures to score (on the report half: only 1 and the one chosen)")
    parser.add_argument("--out", help="write the per-split scores as CSV")
    args = parser.parse_args()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        datasets = [d for d in load_suite(args.suite) if d.task == "classification"]
    for dataset in datasets:
        for split in cached_splits(dataset):
            X_train, X_test = dataset.X.iloc[split.train], dataset.X.iloc[split.test]
            present, codes = np.unique(dataset.y[split.train], return_inverse=True)
            estimator = MitraClassifier(args.checkpoint, n_estimators=args.n_estimators, random_state=0,
                                        softmax_temperature=1.0).fit(X_train, codes)
            logits = member_logits(estimator, X_test)
            for temperature in args.temperatures:
                proba = estimator.task_.combine([softmax(z / temperature) for z in logits], estimator.members_)
                proba = expand_proba(proba, present, dataset.n_classes)
                metrics = classification_metrics(dataset.y[split.test], proba)
                rows.append({"dataset": dataset.name, "kind": "binary" if dataset.n_classes == 2 else "multiclass",
                             "repeat": split.repeat, "temperature": temperature, **metrics})
        print(f"{dataset.name}: done", flush=True)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    per_table = frame.groupby(["kind", "dataset", "temperature"])[["log_loss", "accuracy", "roc_auc"]].mean()
    for kind, part in [("binary", per_table.loc["binary"]), ("multiclass", per_table.loc["multiclass"]),
                       ("all", per_table.droplevel(0))]:
        summary = part.groupby("temperature").mean()
        n_tables = part.index.get_level_values("dataset").nunique()
        print(f"\n{kind} ({n_tables} tables): mean over tables")
        print(summary.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
