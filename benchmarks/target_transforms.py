"""Regressor members on a transformed target: does a power or quantile transform of ``y`` help?

TabPFN's regressor runs half its members on a power-transformed target. This probe fits each
checkpoint's members on ``y`` as given and on ``y`` mapped by a Yeo-Johnson power transform or a
normal-output quantile transform (fitted on the split's training targets), maps each member's
predictions back, and scores recipes: all members on one target (``id:4``, ``power:4``,
``quantile:4``) and members alternating (``id,power:4``: members 0 and 2 on ``y``, 1 and 3 on the
transformed target, each member with its own view as in ``MitraRegressor``). The plain members
come from (and go to) the ``member_recipes.py`` cache.

    PYTHONPATH=. python benchmarks/target_transforms.py --checkpoint mitra-small-regressor \\
        --cache /tmp/regcache --out /tmp/target-transforms
    python -m pretraining evaluate --from-csv /tmp/target-transforms/results.csv \\
        --compare id,power:4 id:4 --out /tmp/target-transforms

Mapping a member's mean prediction back through the inverse transform gives about the median of
its predictive distribution on the original scale, not its mean (Jensen). Tune on
``benchmark-select`` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from member_recipes import result_row, run_checkpoint, split_tables, suite_tables, write_results
from sklearn.preprocessing import PowerTransformer, QuantileTransformer

from pretraining.evaluate.metrics import regression_metrics
from pretraining.evaluate.splits import cached_splits

TRANSFORMS = {
    "power": lambda: PowerTransformer(method="yeo-johnson", standardize=True),
    "quantile": lambda: QuantileTransformer(output_distribution="normal", n_quantiles=1000, subsample=10**9,
                                            random_state=0),
}


def member_predictions(checkpoint: str, n_members: int, X_train, y_train, X_test, kind: str, cache: Path | None,
                       key: str, random_state: int) -> list[np.ndarray]:
    """Each member's predictions in ``y``'s units, the members fitted on ``y`` mapped by ``kind``."""
    if kind == "id":
        return run_checkpoint(checkpoint, n_members, {n_members}, X_train, y_train, X_test, random_state, cache, key,
                              "regression").logits
    transform = TRANSFORMS[kind]().fit(y_train.reshape(-1, 1).astype(np.float64))
    mapped = transform.transform(y_train.reshape(-1, 1).astype(np.float64)).ravel()
    run = run_checkpoint(checkpoint, n_members, {n_members}, X_train, mapped, X_test, random_state, None, "",
                         "regression")
    return [transform.inverse_transform(np.asarray(p).reshape(-1, 1)).ravel() for p in run.logits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="mitra-small-regressor")
    parser.add_argument("--suite", default="benchmark-select")
    parser.add_argument("--n-members", type=int, default=4)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="member_recipes' cache of the plain members' predictions")
    parser.add_argument("--out", required=True, help="folder for results.csv")
    args = parser.parse_args()
    datasets = suite_tables(args.suite, "regression")
    rows = []
    for dataset in datasets:
        for split in cached_splits(dataset):
            X_train, X_test, y_train, _ = split_tables(dataset, split, "regression")
            members = {kind: member_predictions(args.checkpoint, args.n_members, X_train, y_train, X_test, kind,
                                                args.cache, f"{dataset.name}-{split.split_id}", args.random_state)
                       for kind in ("id", *TRANSFORMS)}
            recipes = {f"{kind}:{args.n_members}": predictions for kind, predictions in members.items()}
            for kind in TRANSFORMS:
                recipes[f"id,{kind}:{args.n_members}"] = [members["id" if i % 2 == 0 else kind][i]
                                                          for i in range(args.n_members)]
            for method, predictions in recipes.items():
                metrics = regression_metrics(dataset.y[split.test], np.mean(predictions, axis=0), y_train)
                rows.append(result_row(dataset, split, method, args.checkpoint, args.n_members, metrics,
                                       args.random_state))
        print(f"{dataset.name}: done", flush=True)
    write_results(rows, args.out, "regression")


if __name__ == "__main__":
    main()
