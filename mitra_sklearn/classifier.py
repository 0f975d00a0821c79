"""MitraClassifier: in-context classification with the Mitra tabular foundation model."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._base import MitraEstimatorBase
from ._docstrings import ATTRIBUTES_DOC, PARAMETERS_DOC
from .config import MitraConfig, Task
from .preprocessing import _is_missing
from .tasks import ClassificationTask, make_task

__all__ = ["MitraClassifier"]


class MitraClassifier(ClassifierMixin, MitraEstimatorBase):
    _task = Task.CLASSIFICATION

    def _encode_targets(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if y.dtype == object and any(_is_missing(v) for v in y.tolist()):
            raise ValueError("Input y contains missing values (None/NaN); drop those rows or impute the labels.")
        check_classification_targets(y)
        try:
            self.classes_, codes = np.unique(y, return_inverse=True)
        except TypeError as err:
            raise TypeError(
                f"The labels in y mix types that cannot be ordered (e.g. strings and numbers): {err}"
            ) from err
        if len(self.classes_) < 2:
            raise ValueError(
                f"MitraClassifier needs at least 2 classes in y, got 1 class ({self.classes_[0]!r}). "
                "A single-class problem has nothing to predict."
            )
        return codes.astype(np.int64).ravel()

    def _n_classes(self) -> int | None:
        return len(self.classes_)

    def _make_task(self, config: MitraConfig) -> ClassificationTask:
        return make_task(self._task, config, n_classes=len(self.classes_), temperature=self.softmax_temperature_,
                         max_classes_per_member=self._max_classes_per_member)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, averaged over the ensemble members.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict, with the columns seen in ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        predictions = self._predict_members(X)  # checks fitted-ness before task_ is read
        return self.task_.combine(predictions, self.members_)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row, as one of the original labels.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        probabilities = self.predict_proba(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(probabilities, axis=1)]


MitraClassifier.__doc__ = (
    """Mitra in-context classifier.

    ``fit`` stores the training set as the support set of a pretrained 2D attention transformer;
    ``predict_proba`` reads support and query rows together and averages the class
    probabilities of ``n_estimators`` ensemble members. Accepts NumPy arrays, SciPy sparse
    matrices and pandas DataFrames with numeric, boolean, categorical and string columns,
    missing values, and any hashable labels (strings, integers, ...).
"""
    + PARAMETERS_DOC.format(
        official="autogluon/mitra-classifier-2",
        official_v1="autogluon/mitra-classifier",
        task="classification",
        member_view="class permutation, feature order and feature sign flips",
        aggregate="class probabilities",
    )
    + ATTRIBUTES_DOC.format(
        extra="""    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
"""
    )
    + """
    See Also
    --------
    MitraRegressor : The regression counterpart.

    Notes
    -----
    The official checkpoint's head has 10 outputs. With more classes, every ensemble member
    sees the classes in 10 balanced groups (a random error-correcting output code, with enough
    members that any two classes are told apart by at least two of them), and the class
    probabilities are the maximum-likelihood class distribution given all members' group
    probabilities. Rows are predicted
    independently of each other: a row's probabilities do not depend on the other rows passed
    to the same ``predict_proba`` call.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from mitra_sklearn import MitraClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = MitraClassifier(random_state=0).fit(X[:400], y[:400])  # doctest: +SKIP
    >>> clf.score(X[400:], y[400:])  # doctest: +SKIP
    """
)
