"""Members on SVD components appended to the features: does TabPFN's global transform help Mitra?

Mitra normalises every feature by its rank among the support rows, so a monotone transform of
one column changes nothing; a linear mix of columns does. TabPFN runs half its members on the
features with truncated-SVD components of the (standardised) numeric columns appended. This
probe fits each checkpoint's members on the table as given (``id``) and on the table with
``k = max(1, min(n_train // 10 + 1, n_numeric // 2))`` such components appended (``svd``; the
SVD fitted on the split's training rows, missing values imputed by the training medians), and
scores recipes: all members on one table (``id:4``, ``svd:4``) and members alternating
(``id,svd:4``: members 0 and 2 read the table as given, 1 and 3 the augmented one, each member
with its own view as in the estimators). The plain members come from (and go to) the
``member_recipes.py`` cache.

    PYTHONPATH=. python benchmarks/feature_transforms.py --task regression \\
        --checkpoint mitra-small-regressor --cache /tmp/regcache --out /tmp/feature-transforms
    python -m pretraining evaluate --from-csv /tmp/feature-transforms/results.csv \\
        --compare id,svd:4 id:4 --out /tmp/feature-transforms

Tune on ``benchmark-select`` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from member_recipes import Recipe, recipe_rows, run_checkpoint, split_tables, suite_tables, write_results
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import StandardScaler

from pretraining.evaluate.splits import cached_splits


def with_svd_components(X_train: pd.DataFrame, X_test: pd.DataFrame,
                        categorical: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Both tables with the training rows' truncated-SVD components of the numeric columns
    appended (TabPFN's component count); unchanged, with 0 components, below two numeric columns."""
    numeric = [column for column, is_categorical in zip(X_train.columns, categorical) if not is_categorical]
    if len(numeric) < 2:
        return X_train, X_test, 0
    k = max(1, min(len(X_train) // 10 + 1, len(numeric) // 2))
    train = X_train[numeric].to_numpy(dtype=np.float64)
    medians = np.nan_to_num(np.nanmedian(train, axis=0))
    scaler = StandardScaler()
    svd = TruncatedSVD(n_components=k, random_state=0)
    parts = []
    for table, fit in ((X_train, True), (X_test, False)):
        values = table[numeric].to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), medians, values)
        scaled = scaler.fit_transform(values) if fit else scaler.transform(values)
        components = svd.fit_transform(scaled) if fit else svd.transform(scaled)
        extra = pd.DataFrame(components, index=table.index, columns=[f"svd_{i}" for i in range(k)])
        parts.append(pd.concat([table, extra], axis=1))
    return parts[0], parts[1], k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="mitra-small-regressor")
    parser.add_argument("--task", choices=("classification", "regression"), default="regression")
    parser.add_argument("--suite", default="benchmark-select")
    parser.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    parser.add_argument("--n-members", type=int, default=4)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="member_recipes' cache of the plain members' outputs")
    parser.add_argument("--out", required=True, help="folder for results.csv")
    args = parser.parse_args()
    datasets = suite_tables(args.suite, args.task, args.datasets)
    n = args.n_members
    recipes = {text: Recipe.parse(text) for text in (f"id:{n}", f"svd:{n}", f"id,svd:{n}")}
    names = {"id": args.checkpoint, "svd": f"{args.checkpoint} +svd"}
    rows = []
    for dataset in datasets:
        for split in cached_splits(dataset):
            X_train, X_test, y_train, present = split_tables(dataset, split, args.task)
            X_train_svd, X_test_svd, k = with_svd_components(X_train, X_test, dataset.categorical_mask)
            key = f"{dataset.name}-{split.split_id}"
            runs = {"id": run_checkpoint(args.checkpoint, n, {n}, X_train, y_train, X_test, args.random_state,
                                         args.cache, key, args.task)}
            runs["svd"] = (runs["id"] if k == 0 else
                           run_checkpoint(args.checkpoint, n, {n}, X_train_svd, y_train, X_test_svd,
                                          args.random_state, args.cache, f"{key}-svd", args.task))
            rows += recipe_rows(recipes, runs, names, dataset, split, present, args.random_state)
        print(f"{dataset.name}: done ({k} components on its last split)", flush=True)
    write_results(rows, args.out, args.task)


if __name__ == "__main__":
    main()
