"""Turning user tables into the finite float32 matrix the Mitra model reads.

:class:`TabularEncoder` accepts NumPy arrays (numeric or object), SciPy sparse matrices
(densified under a size limit) and pandas DataFrames with numeric, boolean, categorical,
string/object and datetime columns, including ``NaN``/``None``/``pd.NA``.

* Categorical columns become ordinal codes ``0..K-1`` (pandas categories keep their declared
  order, other values are sorted); missing values and categories unseen during ``fit`` share
  one extra code, ``-1``. The model normalises every column by its ranks, so only the order of
  codes matters, and "missing/unknown" sits at one end instead of being imputed. Columns whose
  order means nothing (all but ordered pandas categoricals) are listed by
  `TabularEncoder.category_ranks`, so that each ensemble member can read them in its own
  random order. When at least half of a column's values are unseen categories at transform
  time, a warning names the column (once per column and call).
* Numeric cells may be Python/NumPy numbers, ``decimal.Decimal`` values, booleans, or
  datetimes / timedeltas (seconds since the epoch / seconds, as for datetime columns of a
  DataFrame, so a table fitted as a DataFrame can be predicted from its ``to_numpy()``).
* Missing numeric values are imputed with the (sample-weighted) training mean of their column
  (the official Mitra preprocessing).
* Columns that are constant on the training set (after imputation) carry no information and
  are dropped.

No torch here: this is plain scikit-learn/NumPy code.
"""

from __future__ import annotations

import datetime
import decimal
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
#: transform warns when at least this share of a categorical column's values is unseen.
UNSEEN_WARNING_SHARE = 0.5
_DATETIME_TYPES = (datetime.date, np.datetime64)  # pandas.Timestamp is a datetime.datetime
_TIMEDELTA_TYPES = (datetime.timedelta, np.timedelta64)  # pandas.Timedelta is a datetime.timedelta


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
    categorical_mask_ : ndarray of bool, shape (``n_features_in_``,)
        Which input columns were treated as categorical.
    categories_ : dict of int -> ndarray
        Known categories of each categorical column (index in the input).
    ordered_columns_ : ndarray of int
        Categorical input columns whose code order means something (ordered pandas
        categoricals); the others are nominal.
    fill_values_ : ndarray of shape (``n_features_in_``,)
        Training mean used to impute missing numeric values (0 for categorical columns,
        whose missing values have their own code).
    kept_columns_ : ndarray of int
        Input columns kept in the output (non-constant on the training set).
    """

    def __init__(self, categorical_features: Any = "auto") -> None:
        self.categorical_features = categorical_features

    def fit(self, X: Any, y: Any = None, sample_weight: np.ndarray | None = None) -> TabularEncoder:
        """Learn categories, fill values and constant columns of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        y : ignored
        sample_weight : ndarray of shape (n_samples,), optional
            Weights of the fill values (weighted column means).
        """
        self._fit_transform(X, sample_weight)
        return self

    def fit_transform(self, X: Any, y: Any = None, sample_weight: np.ndarray | None = None,
                      **fit_params: Any) -> np.ndarray:
        """`fit`, then the encoded ``X``."""
        return self._fit_transform(X, sample_weight)

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` with the categories and fill values learned in ``fit``.

        Warns (``UserWarning``, once per column) when at least half of a categorical column's
        values are categories not seen in ``fit``: they are read as missing.
        """
        check_is_fitted(self, "kept_columns_")
        columns, names, _ = _split_columns(X)
        if len(columns) != self.n_features_in_:
            raise ValueError(f"X has {len(columns)} features, but the encoder was fitted with {self.n_features_in_}.")
        numeric = self._encode(columns, names, warn_unseen=True)
        return self._finish(numeric)

    def category_ranks(self) -> dict[int, np.ndarray]:
        """Nominal categorical columns of the output: output column -> rank of each code.

        The rank of code ``c`` is its category's position among the categories sorted by
        value, so it does not depend on the order in which pandas categories were declared.
        Ordered categoricals and numeric columns are not listed.
        """
        check_is_fitted(self, "kept_columns_")
        ranks = {}
        for position, j in enumerate(self.kept_columns_.tolist()):
            if self.categorical_mask_[j] and j not in self.ordered_columns_:
                ranks[position] = _sorted_ranks(self.categories_[j])
        return ranks

    # ------------------------------------------------------------------ internals
    def _fit_transform(self, X: Any, sample_weight: np.ndarray | None = None) -> np.ndarray:
        columns, names, declared = _split_columns(X)
        self.n_features_in_ = len(columns)
        requested = _requested_categorical(self.categorical_features, self.n_features_in_, names)
        self.categorical_mask_ = np.array(
            [requested[j] or j in declared or _is_categorical_column(col) for j, col in enumerate(columns)],
            dtype=bool,
        )
        # pandas categories keep their declared order; other categorical values are sorted.
        self.categories_ = {
            j: declared[j][0] if j in declared else _learn_categories(col, repr(names[j]) if names else str(j))
            for j, col in enumerate(columns)
            if self.categorical_mask_[j]
        }
        self.ordered_columns_ = np.array([j for j in declared if declared[j][1] and self.categorical_mask_[j]],
                                         dtype=np.int64)
        numeric = self._encode(columns, names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: mean of empty slice
            if not numeric.shape[0]:
                means = np.full(numeric.shape[1], np.nan)
            elif sample_weight is None:
                means = np.nanmean(numeric, axis=0)
            else:
                present = ~np.isnan(numeric)
                weights = np.asarray(sample_weight, dtype=np.float64)[:, None] * present
                means = (np.where(present, numeric, 0.0) * weights).sum(axis=0) / weights.sum(axis=0)
        self.fill_values_ = np.where(np.isnan(means) | self.categorical_mask_, 0.0, means)
        filled = np.where(np.isnan(numeric), self.fill_values_, numeric)
        if filled.shape[0]:
            is_constant = filled.max(axis=0) == filled.min(axis=0)
        else:
            is_constant = np.ones(filled.shape[1], dtype=bool)
        self.kept_columns_ = np.flatnonzero(~is_constant)
        return self._finish(numeric)

    def _encode(self, columns: list[np.ndarray], names: list[str] | None, warn_unseen: bool = False) -> np.ndarray:
        n_rows = len(columns[0]) if columns else 0
        out = np.empty((n_rows, len(columns)), dtype=np.float64)
        for j, column in enumerate(columns):
            label = repr(names[j]) if names is not None else str(j)
            if self.categorical_mask_[j]:
                out[:, j], unseen = _category_codes(column, self.categories_[j])
                if warn_unseen:
                    _warn_if_mostly_unseen(column, unseen, self.categories_[j], label)
            else:
                out[:, j] = _numeric_values(column, label)
        return out

    def _finish(self, numeric: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(numeric), self.fill_values_, numeric)[:, self.kept_columns_]
        if filled.shape[1] == 0:
            # Nothing informative is left; one constant column lets the model predict the prior.
            filled = np.zeros((filled.shape[0], 1))
        # Beyond float32's range values would become inf; clipping keeps their order.
        return np.clip(filled, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)


def _split_columns(X: Any) -> tuple[list[np.ndarray], list[str] | None, dict[int, tuple[np.ndarray, bool]]]:
    """Split a table into 1-D column arrays (never changing the caller's data).

    Also returns the column names (DataFrame input) and, by column index, the declared
    categories of pandas ``category`` columns with whether they are ordered.
    """
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # pandas DataFrame
        import pandas as pd

        names = [str(c) for c in X.columns]
        declared = {
            j: (np.asarray(X.iloc[:, j].cat.categories, dtype=object), bool(X.iloc[:, j].dtype.ordered))
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
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return bool(np.isnat(value))
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _is_categorical_column(column: np.ndarray) -> bool:
    if column.dtype != object:
        return column.dtype.kind in "USO"
    return any(isinstance(v, str) for v in column if not _is_missing(v))


def _check_cell(value: Any, column: str) -> None:
    """A categorical cell must be a string or a number (Decimal included)."""
    if isinstance(value, complex):
        raise ValueError("Complex data not supported: X holds complex numbers.")
    if isinstance(value, _DATETIME_TYPES + _TIMEDELTA_TYPES):
        raise TypeError(
            f"X column {column} holds a date/time ({type(value).__name__} {value!s}) among the categories of a "
            "categorical column. Pass dates as a datetime64 column of a DataFrame (or as numbers), not mixed "
            "with strings in one column."
        )
    if not isinstance(value, (str, bytes, numbers.Real, np.bool_, decimal.Decimal)):
        raise TypeError(
            f"X column {column}: argument must be a string or a number in every cell, got "
            f"{type(value).__name__}."
        )


def _learn_categories(column: np.ndarray, label: str) -> np.ndarray:
    known = [v for v in column.tolist() if not _is_missing(v)]
    for value in known:
        _check_cell(value, label)
    return np.array(_sorted_values(set(known)), dtype=object)


def _sorted_values(values: Any) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed strings and numbers: order them by their text
        return sorted({str(v) for v in values})


def _sorted_ranks(categories: np.ndarray) -> np.ndarray:
    """Rank of each category among the categories sorted by value (or by text when mixed)."""
    values = categories.tolist()
    try:
        order = sorted(range(len(values)), key=lambda k: values[k])
    except TypeError:
        order = sorted(range(len(values)), key=lambda k: str(values[k]))
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.arange(len(values))
    return ranks


def _category_codes(column: np.ndarray, categories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a column's values, and a mask of the values that are unseen categories."""
    lookup = {value: float(code) for code, value in enumerate(categories.tolist())}
    as_text = categories.size > 0 and all(isinstance(v, str) for v in categories.tolist())
    codes = np.empty(len(column), dtype=np.float64)
    unseen = np.zeros(len(column), dtype=bool)
    for i, value in enumerate(column.tolist()):
        if _is_missing(value):
            codes[i] = MISSING_CODE
            continue
        code = lookup.get(value)
        if code is None and as_text and not isinstance(value, str):
            code = lookup.get(str(value))
        unseen[i] = code is None
        codes[i] = MISSING_CODE if code is None else code  # unseen categories share the missing code
    return codes, unseen


def _warn_if_mostly_unseen(column: np.ndarray, unseen: np.ndarray, categories: np.ndarray, label: str) -> None:
    n_values = sum(not _is_missing(v) for v in column.tolist())
    n_unseen = int(unseen.sum())
    if n_values == 0 or n_unseen < UNSEEN_WARNING_SHARE * n_values:
        return
    example = column[np.flatnonzero(unseen)[0]]
    types_seen = sorted({type(v).__name__ for v in categories.tolist()})
    hint = ""
    if categories.size and type(example).__name__ not in types_seen:
        hint = (f" The fitted categories are of type {', '.join(types_seen)}, these of type "
                f"{type(example).__name__}: did the column's type change between fit and predict?")
    warnings.warn(
        f"X column {label}: {n_unseen} of {n_values} values ({n_unseen / n_values:.0%}) are categories not seen in "
        f"fit (e.g. {example!r}); they are read as missing.{hint}",
        UserWarning,
        stacklevel=5,  # the caller of transform (through sklearn's output wrapper)
    )


def _cell_number(value: Any, column: str) -> float:
    """A numeric cell as float: numbers, Decimals, datetimes (epoch seconds), timedeltas (seconds)."""
    if isinstance(value, _DATETIME_TYPES):
        import pandas as pd

        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:  # as for datetime columns: compared in UTC
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return (stamp - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
    if isinstance(value, _TIMEDELTA_TYPES):
        import pandas as pd

        return pd.Timedelta(value) / pd.Timedelta(seconds=1)
    _check_cell(value, column)
    try:
        return float(value)
    except (ValueError, ArithmeticError) as err:  # e.g. "abc", Decimal("sNaN")
        raise ValueError(f"X column {column}: cannot read {value!r} as a number.") from err


def _numeric_values(column: np.ndarray, label: str) -> np.ndarray:
    if column.dtype == object:
        values = np.empty(len(column), dtype=np.float64)
        for i, value in enumerate(column.tolist()):
            values[i] = np.nan if _is_missing(value) else _cell_number(value, label)
    else:
        values = column.astype(np.float64)
    if np.isinf(values).any():
        raise ValueError(
            f"Input X contains infinity in column {label}. Replace infinite values (e.g. by NaN, which "
            "is imputed) before calling fit/predict."
        )
    return values
