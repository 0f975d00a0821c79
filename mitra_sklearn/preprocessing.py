"""Turning user tables into the finite float32 matrix the Mitra model reads.

:class:`TabularEncoder` accepts NumPy arrays (numeric or object), SciPy sparse matrices
(densified under a size limit) and pandas DataFrames with numeric, boolean, categorical,
string/object and datetime columns, including ``NaN``/``None``/``pd.NA``.

* Categorical columns become ordinal codes ``0..K-1`` (pandas categories keep their declared
  order, other values are sorted); missing values and categories unseen during ``fit`` share
  one extra code, ``-1``. The model normalises every column by its ranks, so only the order of
  codes matters, and "missing/unknown" sits at one end instead of being imputed.
* Missing numeric values are imputed with the training mean of their column (the official
  Mitra preprocessing).
* Columns that are constant on the training set (after imputation) carry no information and
  are dropped.

No torch here: this is plain scikit-learn/NumPy code.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["TabularEncoder", "MAX_DENSE_CELLS"]

# Sparse input is densified; beyond this many cells (800 MB as float64) we refuse instead.
MAX_DENSE_CELLS = 100_000_000
_FLOAT32_MAX = float(np.finfo(np.float32).max)
MISSING_CODE = -1.0


class TabularEncoder(TransformerMixin, BaseEstimator):
    """Encode a table as a finite float32 matrix for the Mitra model.

    Parameters
    ----------
    categorical_features : 'auto', array-like of int, str or bool, default='auto'
        Which columns are categorical. ``'auto'``: pandas ``category`` columns and columns
        holding strings. Otherwise column indices, column names (DataFrame input) or a
        boolean mask; these are added to the automatically detected ones.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns.
    categorical_mask_ : ndarray of bool, shape (n_features_in_,)
        Which input columns were treated as categorical.
    categories_ : dict of int -> ndarray
        Known categories of each categorical column (index in the input).
    fill_values_ : ndarray of shape (n_features_in_,)
        Training mean used to impute missing numeric values (0 for categorical columns,
        whose missing values have their own code).
    kept_columns_ : ndarray of int
        Input columns kept in the output (non-constant on the training set).
    """

    def __init__(self, categorical_features: Any = "auto") -> None:
        self.categorical_features = categorical_features

    def fit(self, X: Any, y: Any = None) -> TabularEncoder:
        self._fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self._fit_transform(X)

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` with the categories and fill values learned in ``fit``."""
        check_is_fitted(self, "kept_columns_")
        columns, _, _ = _split_columns(X)
        if len(columns) != self.n_features_in_:
            raise ValueError(f"X has {len(columns)} features, but the encoder was fitted with {self.n_features_in_}.")
        numeric = self._encode(columns)
        return self._finish(numeric)

    # ------------------------------------------------------------------ internals
    def _fit_transform(self, X: Any) -> np.ndarray:
        columns, names, declared = _split_columns(X)
        self.n_features_in_ = len(columns)
        requested = _requested_categorical(self.categorical_features, self.n_features_in_, names)
        self.categorical_mask_ = np.array(
            [requested[j] or j in declared or _is_categorical_column(col) for j, col in enumerate(columns)],
            dtype=bool,
        )
        # pandas categories keep their declared order; other categorical values are sorted.
        self.categories_ = {
            j: declared[j] if j in declared else _learn_categories(col, j)
            for j, col in enumerate(columns)
            if self.categorical_mask_[j]
        }
        numeric = self._encode(columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: mean of empty slice
            means = np.nanmean(numeric, axis=0) if numeric.shape[0] else np.full(numeric.shape[1], np.nan)
        self.fill_values_ = np.where(np.isnan(means) | self.categorical_mask_, 0.0, means)
        filled = np.where(np.isnan(numeric), self.fill_values_, numeric)
        if filled.shape[0]:
            is_constant = filled.max(axis=0) == filled.min(axis=0)
        else:
            is_constant = np.ones(filled.shape[1], dtype=bool)
        self.kept_columns_ = np.flatnonzero(~is_constant)
        return self._finish(numeric)

    def _encode(self, columns: list[np.ndarray]) -> np.ndarray:
        n_rows = len(columns[0]) if columns else 0
        out = np.empty((n_rows, len(columns)), dtype=np.float64)
        for j, column in enumerate(columns):
            if self.categorical_mask_[j]:
                out[:, j] = _category_codes(column, self.categories_[j])
            else:
                out[:, j] = _numeric_values(column, j)
        return out

    def _finish(self, numeric: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(numeric), self.fill_values_, numeric)[:, self.kept_columns_]
        if filled.shape[1] == 0:
            # Nothing informative is left; one constant column lets the model predict the prior.
            filled = np.zeros((filled.shape[0], 1))
        # Beyond float32's range values would become inf; clipping keeps their order.
        return np.clip(filled, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)


def _split_columns(X: Any) -> tuple[list[np.ndarray], list[str] | None, dict[int, np.ndarray]]:
    """Split a table into 1-D column arrays (never changing the caller's data).

    Also returns the column names (DataFrame input) and the declared categories of pandas
    ``category`` columns, by column index.
    """
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # pandas DataFrame
        import pandas as pd

        names = [str(c) for c in X.columns]
        declared = {
            j: np.asarray(X.iloc[:, j].cat.categories, dtype=object)
            for j in range(X.shape[1])
            if isinstance(X.iloc[:, j].dtype, pd.CategoricalDtype)
        }
        return [_pandas_column(X.iloc[:, j]) for j in range(X.shape[1])], names, declared
    if sp.issparse(X):
        n_cells = X.shape[0] * X.shape[1]
        if n_cells > MAX_DENSE_CELLS:
            raise ValueError(
                f"Sparse input of shape {X.shape} is too large to densify ({n_cells:,} cells > {MAX_DENSE_CELLS:,}). "
                "Mitra reads dense tables; reduce the number of features first (e.g. TruncatedSVD or "
                "SelectKBest in a Pipeline)."
            )
        X = X.toarray()
    array = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if array.ndim != 2:
        raise ValueError(f"Expected a 2D table, got an array of shape {array.shape}.")
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported: X holds complex numbers.")
    return [array[:, j] for j in range(array.shape[1])], None, {}


def _pandas_column(series: Any) -> np.ndarray:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return series.to_numpy(dtype=object, na_value=None)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if pd.api.types.is_complex_dtype(dtype):
            raise ValueError("Complex data not supported: X holds complex numbers.")
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        # Seconds since the epoch, whatever the stored unit (ns, us, s) or time zone (as UTC):
        # only their order and spacing matter to the model.
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return ((series - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_timedelta64_dtype(dtype):
        return (series / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object, na_value=None)


def _requested_categorical(spec: Any, n_features: int, names: list[str] | None) -> np.ndarray:
    mask = np.zeros(n_features, dtype=bool)
    if isinstance(spec, str) and spec == "auto":
        return mask
    if spec is None:
        return mask
    values = list(spec) if not isinstance(spec, np.ndarray) else spec.tolist()
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        if len(values) != n_features:
            raise ValueError(f"categorical_features as a boolean mask needs {n_features} entries, got {len(values)}.")
        return np.asarray(values, dtype=bool)
    for value in values:
        if isinstance(value, str):
            if names is None or value not in names:
                raise ValueError(f"categorical_features names column {value!r}, which is not a column of X.")
            mask[names.index(value)] = True
        elif isinstance(value, numbers.Integral):
            if not -n_features <= value < n_features:
                raise ValueError(f"categorical_features index {value} is out of range for {n_features} features.")
            mask[value] = True
        else:
            raise ValueError(f"categorical_features entries must be column indices or names, got {value!r}.")
    return mask


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _is_categorical_column(column: np.ndarray) -> bool:
    if column.dtype != object:
        return column.dtype.kind in "USO"
    return any(isinstance(v, str) for v in column if not _is_missing(v))


def _check_cell(value: Any, column_index: int) -> None:
    if isinstance(value, complex):
        raise ValueError("Complex data not supported: X holds complex numbers.")
    if not isinstance(value, (str, bytes, numbers.Real, np.bool_)):
        raise TypeError(
            f"X column {column_index}: argument must be a string or a number in every cell, got "
            f"{type(value).__name__}."
        )


def _learn_categories(column: np.ndarray, column_index: int) -> np.ndarray:
    known = [v for v in column.tolist() if not _is_missing(v)]
    for value in known:
        _check_cell(value, column_index)
    try:
        return np.array(sorted(set(known)), dtype=object)
    except TypeError:  # mixed strings and numbers: order them by their text
        return np.array(sorted({str(v) for v in known}), dtype=object)


def _category_codes(column: np.ndarray, categories: np.ndarray) -> np.ndarray:
    lookup = {value: float(code) for code, value in enumerate(categories.tolist())}
    as_text = categories.size > 0 and all(isinstance(v, str) for v in categories.tolist())
    codes = np.empty(len(column), dtype=np.float64)
    for i, value in enumerate(column.tolist()):
        if _is_missing(value):
            codes[i] = MISSING_CODE
            continue
        code = lookup.get(value)
        if code is None and as_text and not isinstance(value, str):
            code = lookup.get(str(value))
        codes[i] = MISSING_CODE if code is None else code  # unseen categories share the missing code
    return codes


def _numeric_values(column: np.ndarray, column_index: int) -> np.ndarray:
    if column.dtype == object:
        values = np.empty(len(column), dtype=np.float64)
        for i, value in enumerate(column.tolist()):
            if _is_missing(value):
                values[i] = np.nan
            else:
                _check_cell(value, column_index)
                try:
                    values[i] = float(value)
                except ValueError as err:
                    raise ValueError(f"X column {column_index}: cannot read {value!r} as a number.") from err
    else:
        values = column.astype(np.float64)
    if np.isinf(values).any():
        raise ValueError(
            f"Input X contains infinity in column {column_index}. Replace infinite values (e.g. by NaN, which "
            "is imputed) before calling fit/predict."
        )
    return values
