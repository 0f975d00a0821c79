"""
Quickstart: Mitra next to a RandomForest
========================================

Fit ``MitraClassifier`` on a real dataset bundled with scikit-learn (breast
cancer, 569 rows, 30 features) and score it next to a RandomForest baseline on the same split.

Run::

    python examples/quickstart.py [--checkpoint NAME_OR_FOLDER_OR_REPO | --checkpoint default]

With no argument it runs the classifier checkpoint shipped in the package (0.67 M parameters,
offline, a few seconds on a CPU), so that it works the same on every machine. The estimators'
own default (``--checkpoint default``, i.e. ``checkpoint=None``) is the newest official
checkpoint wherever it is cached or can be downloaded (Mitra v2 ``autogluon/mitra-classifier-2``,
else v1 ``autogluon/mitra-classifier``: 75.7 M parameters, a 303 MB download and about 100 s on
a 2-core CPU for this table), else the shipped one; see
docs/checkpoints.md. A baseline (RandomForest) is trained on the same split for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mitra_sklearn import MitraClassifier
from mitra_sklearn.checkpoint import shipped_default
from mitra_sklearn.exceptions import CheckpointNotFoundError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=shipped_default("classification"),
                        help="shipped checkpoint name, local folder or Hub repo id; 'default' = checkpoint=None "
                             "(default: the shipped classifier)")
    args = parser.parse_args()
    checkpoint = None if args.checkpoint == "default" else args.checkpoint

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    print(f"breast_cancer: {len(X_train)} training rows, {len(X_test)} test rows, {X.shape[1]} features")

    rows = []
    try:
        start = time.perf_counter()
        mitra = MitraClassifier(checkpoint=checkpoint, random_state=0).fit(X_train, y_train)
        proba = mitra.predict_proba(X_test)[:, 1]
        rows.append((f"Mitra ({mitra.checkpoint_})", proba, time.perf_counter() - start))
        print(f"Mitra checkpoint: {mitra.checkpoint_info_}")
    except CheckpointNotFoundError as err:
        print(f"Mitra checkpoint not available: {err}", file=sys.stderr)
        return 1

    start = time.perf_counter()
    forest = RandomForestClassifier(n_estimators=300, random_state=0, n_jobs=-1).fit(X_train, y_train)
    rows.append(("RandomForest (300 trees)", forest.predict_proba(X_test)[:, 1], time.perf_counter() - start))

    print(f"{'model':45s} {'ROC-AUC':>8s} {'accuracy':>9s} {'seconds':>8s}")
    for name, scores, seconds in rows:
        accuracy = accuracy_score(y_test, scores > 0.5)
        print(f"{name:45s} {roc_auc_score(y_test, scores):8.4f} {accuracy:9.4f} {seconds:8.2f}")
    return 0


if __name__ == "__main__":
    status = main()
    # Only a failure exits: sphinx-gallery runs this file as __main__ while building the site, and
    # a SystemExit there (even with status 0) ends the whole build.
    if status:
        raise SystemExit(status)
