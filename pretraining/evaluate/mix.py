"""Ensembles whose members come from several checkpoints (a recipe candidate, issue 25).

A `CheckpointMix` fits one Mitra estimator per checkpoint on the same rows, each with its own
share of the members and its own ``random_state``, and averages their class probabilities (or
their mean predictions for regression): with 2 checkpoints x 2 members it costs what one
checkpoint's 4 members cost. The estimators of `mitra_sklearn` take one checkpoint; this is the
evaluation's way to measure whether mixing two helps before the package gets such an option.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mitra_sklearn.config import Task


class CheckpointMix:
    """Members from several checkpoints, their outputs averaged with equal weight per checkpoint.

    Parameters
    ----------
    checkpoints : sequence of str or path-like
        Two or more checkpoints of the same task (anything ``MitraClassifier(checkpoint=...)``
        accepts).
    task : {"classification", "regression"}
        The checkpoints' task.
    n_estimators : int, default=4
        Members in all; each checkpoint gets ``n_estimators // len(checkpoints)`` (at least 1).
    random_state : int, default=0
        The i-th checkpoint's estimator gets ``random_state + i``, so the checkpoints' members
        draw different feature orders and subsamples.
    **params
        Passed to every estimator (``device``, ``batch_size``, ...).
    """

    def __init__(self, checkpoints: Sequence[str | os.PathLike], task: Task | str, *, n_estimators: int = 4,
                 random_state: int = 0, **params: Any) -> None:
        if len(checkpoints) < 2:
            raise ValueError(f"A checkpoint mix needs at least 2 checkpoints, got {len(checkpoints)}.")
        self.checkpoints = [os.fspath(c) for c in checkpoints]
        self.task = Task.parse(task)
        self.n_estimators = n_estimators
        self.random_state = random_state
        self.params = params

    def fit(self, X: Any, y: Any) -> CheckpointMix:
        """Fit one estimator per checkpoint on ``X``, ``y``."""
        from mitra_sklearn import MitraClassifier, MitraRegressor

        cls = MitraClassifier if self.task is Task.CLASSIFICATION else MitraRegressor
        each = max(1, self.n_estimators // len(self.checkpoints))
        self.estimators_ = [cls(checkpoint=checkpoint, n_estimators=each, random_state=self.random_state + i,
                                **self.params).fit(X, y)
                            for i, checkpoint in enumerate(self.checkpoints)]
        if self.task is Task.CLASSIFICATION:
            self.classes_ = self.estimators_[0].classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The mean of the checkpoints' class probabilities (classification)."""
        if self.task is not Task.CLASSIFICATION:
            raise AttributeError("predict_proba is only available for classification mixes.")
        return np.mean([estimator.predict_proba(X) for estimator in self.estimators_], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        """Classes of the largest mean probability, or the mean of the checkpoints' predictions."""
        if self.task is Task.CLASSIFICATION:
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return np.mean([estimator.predict(X) for estimator in self.estimators_], axis=0)
