"""MitraRegressor: in-context regression with the Mitra tabular foundation model."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from ._base import MitraEstimatorBase
from ._docstrings import ATTRIBUTES_DOC, PARAMETERS_DOC
from .checkpoint import OFFICIAL_CHECKPOINTS
from .config import MitraConfig, Task
from .devices import torch_threads
from .distribution import RegressionDistribution, concatenate
from .tasks import OUTLIER_SPREADS, PREDICTION_MARGIN, RegressionTask, TargetScaling, make_task

__all__ = ["MitraRegressor"]


class MitraRegressor(RegressorMixin, MitraEstimatorBase):
    _task = Task.REGRESSION

    def _encode_targets(self, y: Any) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        with np.errstate(over="ignore", invalid="ignore"):  # its quick finiteness sum overflows near 1.8e308
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        # A constant target needs no model: every prediction is that constant.
        self.constant_target_ = float(y[0]) if np.all(y == y[0]) else None
        scaling = TargetScaling.fit(y)
        if scaling.robust:
            warnings.warn(
                f"y has {scaling.n_clipped} outlying target(s), more than {OUTLIER_SPREADS:g} times the 5-95 % "
                "quantile spread beyond those quantiles: min-max scaling would squeeze the other targets into a "
                "sliver of the model's range. The targets are scaled with the range of the others, "
                f"[{scaling.low:.6g}, {scaling.high:.6g}], the outliers clipped to it, and predictions stay within "
                f"{PREDICTION_MARGIN:g} times that range of it. Drop or transform the outliers (e.g. a log target) "
                "if they are real.",
                UserWarning,
                stacklevel=5,
            )
        return y

    def _make_task(self, config: MitraConfig) -> RegressionTask:
        return make_task(self._task, config, temperature=self.softmax_temperature_)

    def _is_trivial(self) -> bool:
        return self.constant_target_ is not None

    def predict(
        self, X: Any, return_std: bool = False, output_type: str = "mean"
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted targets, averaged over the ensemble members.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict, with the columns seen in ``fit``.
        return_std : bool, default=False
            Also return the standard deviation of the members' predictions.
        output_type : {'mean', 'median', 'mode'}, default='mean'
            Which point of the predicted distribution: its mean (the members' mean
            predictions averaged), or, for checkpoints with a binned head (Mitra v2), the
            median or the mode of the ensemble's distribution (`predict_distribution`).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions in the units of ``y``.
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std=True``: spread of the ensemble members' mean predictions
            around their average. It measures how much the prediction depends on the members'
            views of the data (model/ensemble disagreement), not the noise of ``y``, and it is 0
            with ``n_estimators=1``. It is not a calibrated predictive interval: use
            `predict_quantiles` with a binned head for that.
        """
        if output_type not in _OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {_OUTPUT_TYPES}, got {output_type!r}.")
        if output_type != "mean":
            # One pass of the members gives both the distribution and the members' means.
            distribution, predictions = self._distribution(X, with_member_means=return_std)
            point = distribution.median() if output_type == "median" else distribution.mode()
            return (point, self.task_.spread(predictions)) if return_std else point
        if getattr(self, "constant_target_", None) is not None:
            n_rows = self._encode_query(X).shape[0]
            constant = np.full(n_rows, self.constant_target_)
            return (constant, np.zeros(n_rows)) if return_std else constant
        predictions = self._predict_members(X)
        mean = self.task_.combine(predictions, self.members_)
        if return_std:
            return mean, self.task_.spread(predictions)
        return mean

    def predict_quantiles(self, X: Any, quantiles: Any = (0.1, 0.5, 0.9)) -> np.ndarray:
        """Quantiles of the predicted distribution of each row (binned heads: Mitra v2).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict, with the columns seen in ``fit``.
        quantiles : float or sequence of floats in [0, 1], default=(0.1, 0.5, 0.9)
            The levels.

        Returns
        -------
        ndarray of shape (n_samples, n_quantiles)
            In the units of ``y``, non-decreasing along the levels for each row.

        Raises
        ------
        ValueError
            When the checkpoint's regression head predicts a single value (no distribution).
        """
        levels = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
        if levels.ndim != 1 or levels.size == 0 or not np.all((levels >= 0) & (levels <= 1)):
            raise ValueError(f"quantiles must be numbers in [0, 1], got {quantiles!r}.")
        return self.predict_distribution(X).quantile(levels)

    def predict_distribution(self, X: Any) -> RegressionDistribution:
        """The predicted distribution of each row's target (binned heads: Mitra v2).

        Each ensemble member predicts probabilities over the head's bins of its scaled target;
        its bins are mapped to the units of ``y`` (its scaling and mirroring undone), and the
        members' distributions are averaged as a mixture (in probability space), with the
        probability spread uniformly within each bin.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to predict, with the columns seen in ``fit``.

        Returns
        -------
        RegressionDistribution
            ``bin_edges`` (in the units of ``y``) and per-row ``probabilities``, with
            ``mean()``, ``median()``, ``mode()``, ``quantile(q)`` and ``cdf(y)``.

        Raises
        ------
        ValueError
            When the checkpoint's regression head predicts a single value (no distribution).
        """
        return self._distribution(X)[0]

    def _distribution(
        self, X: Any, with_member_means: bool = False
    ) -> tuple[RegressionDistribution, list[np.ndarray] | None]:
        """`predict_distribution`, and with ``with_member_means`` each member's mean prediction
        (`predict`'s members, for the spread) from the same forward passes."""
        check_is_fitted(self)
        if getattr(self, "constant_target_", None) is None and not self.task_.n_bins:
            raise ValueError(
                f"The checkpoint {self.checkpoint_!r} has a scalar regression head: it predicts one value per row, "
                "not a distribution. Quantiles and predict_distribution need a binned head, such as Mitra v2's "
                f"MitraRegressor(checkpoint={OFFICIAL_CHECKPOINTS[Task.REGRESSION]!r}) (1,000 bins)."
            )
        X_encoded = self._encode_query(X)
        if self.constant_target_ is not None:  # a point mass
            edges = np.full((1, 2), self.constant_target_)
            means = [np.full(len(X_encoded), self.constant_target_)] if with_member_means else None
            return RegressionDistribution(edges, np.ones((len(X_encoded), 1))), means
        task = self.task_

        def histogram_and_mean(member: Any, outputs: np.ndarray, context: Any) -> np.ndarray:
            return np.column_stack([task.member_prediction(member, outputs, context),
                                    task.member_histogram(member, outputs, context)])

        member_output = histogram_and_mean if with_member_means else task.member_histogram
        # Blocks of rows keep the members' per-bin probabilities within about 256 MB.
        block = max(1, _DISTRIBUTION_BYTES // (8 * (task.n_bins + 2) * len(self.members_)))
        parts, means = [], []
        with torch_threads(self.n_jobs):
            for start in range(0, len(X_encoded), block):
                rows = self._run_members(X_encoded[start:start + block], member_output)
                if with_member_means:
                    means.append([member_rows[:, 0] for member_rows in rows])
                    rows = [member_rows[:, 1:] for member_rows in rows]
                parts.append(task.distribution(rows))
        member_means = [np.concatenate(blocks) for blocks in zip(*means, strict=True)] if with_member_means else None
        return concatenate(parts), member_means


_OUTPUT_TYPES = ("mean", "median", "mode")
_DISTRIBUTION_BYTES = 256 * 2**20


MitraRegressor.__doc__ = (
    """Mitra in-context regressor.

    ``fit`` stores the training set as the support set of a pretrained 2D attention transformer;
    ``predict`` reads support and query rows together and averages the predictions of
    ``n_estimators`` ensemble members. Targets are min-max scaled to [0, 1] with the support
    rows' range (as the official model expects) and mapped back exactly; when a few outliers
    dominate that range, with the range of the other targets instead (outliers clipped, with a
    warning in ``fit``), see Notes.
"""
    + PARAMETERS_DOC.format(
        official="autogluon/mitra-regressor-2",
        official_v1="autogluon/mitra-regressor",
        task="regression",
        member_view="target mirroring (y -> 1 - y after scaling), feature order and sign flips",
        aggregate="predictions",
    )
    + ATTRIBUTES_DOC.format(
        extra="""    constant_target_ : float or None
        The training target when it is constant (then every prediction equals it).
"""
    )
    + """
    See Also
    --------
    MitraClassifier : The classification counterpart.

    Notes
    -----
    Target scaling (``mitra_sklearn.tasks.TargetScaling``), per member support set: min-max
    with the support targets' minimum and maximum, unless a target lies more than 10 times
    the 5-95 % quantile spread beyond those quantiles; then min-max with the other targets'
    range, the outliers clipped into [0, 1]. Predictions are kept within half the scaling
    range of it (scaled [-0.5, 1.5]) and within the finite float64 range, so finite targets
    of any size (up to about 1.8e308) give finite predictions.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from mitra_sklearn import MitraRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MitraRegressor(random_state=0).fit(X[:300], y[:300])  # doctest: +SKIP
    >>> reg.score(X[300:], y[300:])  # doctest: +SKIP
    """
)
