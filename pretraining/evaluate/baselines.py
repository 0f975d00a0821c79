"""The classic baselines that every checkpoint is compared with, all on default settings.

``LogReg``/``Ridge``, ``RF`` and ``HGB`` (scikit-learn) are always there; ``XGB``, ``LGBM`` and
``CatBoost`` only when their package is installed (otherwise they are skipped with a warning
that names the package). ``Prior`` (the class frequencies, or the mean target, of the training
split) is the floor a model must clear; it runs only when named. Every baseline accepts the
`pretraining.realdata.Dataset` frames as they are: ``category`` columns and NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from .metrics import Task

__all__ = ["baseline_factories", "CatBoostBaseline", "BASELINE_PACKAGES", "OPT_IN_BASELINES"]

#: Pip package of each optional baseline (named in the "not available" warning).
BASELINE_PACKAGES: dict[str, str] = {"XGB": "xgboost", "LGBM": "lightgbm", "CatBoost": "catboost"}

#: Baselines left out of "all baselines": they are floors, not competitors, and would shift ranks.
OPT_IN_BASELINES: frozenset[str] = frozenset({"Prior"})


def _column_transformer(kind: Literal["onehot", "ordinal"]) -> Any:
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = make_column_selector(dtype_exclude="category")
    categorical = make_column_selector(dtype_include="category")
    if kind == "onehot":
        # Linear models need imputed, scaled numbers; OneHotEncoder keeps NaN as its own level.
        num = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler())
        cat = OneHotEncoder(handle_unknown="ignore")
    else:
        # Forests split on NaN natively (scikit-learn >= 1.4); categories become codes, missing -1.
        num = "passthrough"
        cat = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    return ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)], sparse_threshold=0.0)


class CatBoostBaseline:
    """CatBoost on its default settings, fed the dataset's ``category`` columns natively.

    CatBoost wants categorical columns as strings or integers without NaN and their names in
    ``cat_features``; this wrapper turns every ``category`` column into strings with missing
    values as one extra level (``"__missing__"``), the same at fit and predict time. Numeric
    NaN is left to CatBoost (its default ``nan_mode="Min"``).

    Parameters
    ----------
    task : {"classification", "regression"}
    seed : int, default=0
        ``random_seed``.
    n_jobs : int or None, default=-1
        ``thread_count``; a positive value bounds CatBoost's threads, None or negative uses
        every core.
    """

    MISSING = "__missing__"

    def __init__(self, task: Task, *, seed: int = 0, n_jobs: int | None = -1) -> None:
        self.task = Task.parse(task)
        self.seed = seed
        self.n_jobs = n_jobs

    def _prepared(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for column in self.cat_features_:
            values = X[column].astype(object)
            X[column] = values.where(values.notna(), self.MISSING).astype(str)
        return X

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> CatBoostBaseline:
        """Fit on a feature frame (``category`` columns allowed) and targets.

        Parameters
        ----------
        X : pandas.DataFrame
        y : ndarray of shape (n,)
            Class codes or targets.

        Returns
        -------
        CatBoostBaseline
        """
        import catboost

        if not isinstance(X, pd.DataFrame):
            raise ValueError("CatBoostBaseline needs a pandas DataFrame (its category columns become cat_features)")
        self.cat_features_ = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        cls = catboost.CatBoostClassifier if self.task is Task.CLASSIFICATION else catboost.CatBoostRegressor
        threads = self.n_jobs if self.n_jobs is not None and self.n_jobs > 0 else -1
        # allow_writing_files=False: CatBoost otherwise writes a catboost_info/ folder into the cwd.
        self.model_ = cls(random_seed=self.seed, thread_count=threads, verbose=False, allow_writing_files=False)
        self.model_.fit(self._prepared(X), y, cat_features=self.cat_features_)
        if self.task is Task.CLASSIFICATION:
            self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return np.asarray(self.model_.predict_proba(self._prepared(X)), dtype=np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted targets (regression) or classes (classification)."""
        return np.asarray(self.model_.predict(self._prepared(X))).reshape(len(X))


def baseline_factories(task: Task, *, seed: int = 0, n_jobs: int | None = -1) -> dict[str, Callable[[], Any]]:
    """Constructors of the baseline estimators available in this environment.

    Parameters
    ----------
    task : {"classification", "regression"}
    seed : int, default=0
        ``random_state`` of the randomised baselines.
    n_jobs : int or None, default=-1
        Threads of the forests and boosters.

    Returns
    -------
    dict of str to callable
        ``LogReg``/``Ridge``, ``RF``, ``HGB``, ``Prior`` (class frequencies or mean target), and
        ``XGB``/``LGBM``/``CatBoost`` when xgboost/lightgbm/catboost are installed. Each
        callable returns a fresh unfitted estimator that accepts a DataFrame with ``category``
        columns and NaN.
    """
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline

    clf = Task.parse(task) is Task.CLASSIFICATION
    out: dict[str, Callable[[], Any]] = {}
    if clf:
        out["LogReg"] = lambda: make_pipeline(_column_transformer("onehot"), LogisticRegression(max_iter=2000))
        out["RF"] = lambda: make_pipeline(
            _column_transformer("ordinal"), RandomForestClassifier(n_estimators=300, n_jobs=n_jobs, random_state=seed)
        )
        out["HGB"] = lambda: HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
        out["Prior"] = lambda: DummyClassifier(strategy="prior")
    else:
        out["Ridge"] = lambda: make_pipeline(_column_transformer("onehot"), Ridge(alpha=1.0))
        out["RF"] = lambda: make_pipeline(
            _column_transformer("ordinal"), RandomForestRegressor(n_estimators=300, n_jobs=n_jobs, random_state=seed)
        )
        out["HGB"] = lambda: HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
        out["Prior"] = lambda: DummyRegressor(strategy="mean")
    try:
        import xgboost

        cls = xgboost.XGBClassifier if clf else xgboost.XGBRegressor
        out["XGB"] = lambda: cls(
            n_estimators=300, learning_rate=0.05, tree_method="hist", enable_categorical=True,
            n_jobs=n_jobs, random_state=seed, verbosity=0,
        )
    except ImportError:
        pass
    try:
        import lightgbm

        cls_l = lightgbm.LGBMClassifier if clf else lightgbm.LGBMRegressor
        out["LGBM"] = lambda: cls_l(n_estimators=300, learning_rate=0.05, n_jobs=n_jobs, random_state=seed, verbose=-1)
    except ImportError:
        pass
    try:
        import catboost  # noqa: F401  (only checks that it is importable; CatBoostBaseline imports it)

        out["CatBoost"] = lambda: CatBoostBaseline(task, seed=seed, n_jobs=n_jobs)
    except ImportError:
        pass
    return out
