"""What classification and regression mean to the model: labels in, predictions out, losses.

One object per task turns a member's support targets into what the model reads, the model's
raw outputs back into predictions in the user's units, and outputs into a training loss. The
estimators (inference and fine-tuning) use the objects; ``pretraining`` uses the same loss
functions (`classification_loss`, `regression_loss`), so none of them can disagree.
`make_task` picks the object for a checkpoint's head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import MitraConfig, Task
from .ensemble import EnsembleMember, decode_class_probabilities, plan_members, softmax

__all__ = [
    "ClassificationTask",
    "RegressionTask",
    "make_task",
    "used_class_logits",
    "classification_loss",
    "regression_loss",
]


def used_class_logits(logits: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """Logits with the label ids a table does not use set to -inf (in float32).

    The softmax over them is the one the estimators predict with: probability mass only on the
    ids of the table's classes. ``used`` is a bool mask over the last axis, broadcast against
    ``logits`` (e.g. ``[tables, 1, ids]`` for ``[tables, rows, ids]`` logits).
    """
    return logits.float().masked_fill(~used, float("-inf"))


def classification_loss(
    logits: torch.Tensor, targets: torch.Tensor, used: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross-entropy over the label ids in use (`used_class_logits`) of the valid query rows.

    ``logits`` [..., ids], ``targets`` [...] label ids, ``used`` bool broadcastable to
    ``logits``, ``valid`` bool like ``targets`` (None: every row).
    """
    logits = used_class_logits(logits, used)
    if valid is not None:
        targets = targets.masked_fill(~valid, -100)  # cross_entropy's default ignore_index
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), ignore_index=-100)


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error (in scaled target units) over the valid query rows (scalar head)."""
    errors = (outputs.reshape(targets.shape).float() - targets.float()) ** 2
    if valid is None:
        return errors.mean()
    return (errors * valid).sum() / valid.sum().clamp(min=1)


@dataclass(frozen=True)
class ClassificationTask:
    """Class indices 0..n_classes-1, mapped through each member's class ids.

    With at most ``n_label_ids`` classes every member permutes the classes, and the class
    probabilities of the members are averaged. With more classes, each member sees balanced
    groups of classes (an error-correcting output code) and the class probabilities are
    decoded from the members' group probabilities (`decode_class_probabilities`).
    """

    n_classes: int
    n_label_ids: int

    #: Splits of the training rows (fine-tuning tasks) keep the class proportions.
    stratify = True

    def plan_members(self, n_estimators: int, y: np.ndarray, n_features: int, rng: np.random.RandomState,
                     **limits: Any) -> list[EnsembleMember]:
        """Ensemble members: class permutations (class groups past ``n_label_ids`` classes)."""
        return plan_members(n_estimators, len(y), n_features, rng, y_codes=y, n_classes=self.n_classes,
                            n_label_ids=self.n_label_ids, **limits)

    @property
    def n_groups(self) -> int:
        """Label ids in use: one per class, or one per group when classes outnumber the head."""
        return min(self.n_classes, self.n_label_ids)

    def support_labels(self, member: EnsembleMember, y_support: np.ndarray) -> tuple[np.ndarray, Any]:
        return member.class_labels(y_support).astype(np.int64), None

    def member_prediction(self, member: EnsembleMember, outputs: np.ndarray, context: Any) -> np.ndarray:
        """Probabilities (rows, n_groups) of the label ids in use: softmax over their logits only."""
        return softmax(outputs[:, : self.n_groups].astype(np.float64))

    def combine(self, predictions: list[np.ndarray], members: list[EnsembleMember]) -> np.ndarray:
        """Class probabilities (rows, n_classes) from every member's label-id probabilities."""
        if self.n_classes <= self.n_label_ids:
            return np.mean([p[:, m.class_ids] for p, m in zip(predictions, members)], axis=0)
        return decode_class_probabilities(predictions, members, self.n_classes)

    def loss(self, member: EnsembleMember, outputs: torch.Tensor, y_query: np.ndarray, context: Any) -> torch.Tensor:
        """Cross-entropy over the label ids in use (the same softmax as at prediction time)."""
        used = torch.arange(outputs.shape[-1], device=outputs.device) < self.n_groups
        target = torch.as_tensor(member.class_labels(y_query), dtype=torch.long, device=outputs.device)
        return classification_loss(outputs.reshape(-1, outputs.shape[-1]), target, used)


@dataclass(frozen=True)
class RegressionTask:
    """Targets min-max scaled with the support rows' range (then mirrored per member).

    ``n_bins`` > 1 is a binned head (``dim_output`` bins over [-0.5, 1.5], the official code's
    edges): support targets become bin ids and a prediction is the probability-weighted mean of
    the bin centres (the official code takes the most likely bin's centre, which rounds every
    prediction to a bin). ``n_bins`` 0 is the scalar head of the released regressor.
    """

    n_bins: int = 0

    stratify = False

    def plan_members(self, n_estimators: int, y: np.ndarray, n_features: int, rng: np.random.RandomState,
                     **limits: Any) -> list[EnsembleMember]:
        """Ensemble members: target mirroring, feature order and sign flips, support subsamples."""
        return plan_members(n_estimators, len(y), n_features, rng, **limits)

    def _edges(self) -> np.ndarray:
        return np.linspace(-0.5, 1.5, self.n_bins + 1)

    def support_labels(self, member: EnsembleMember, y_support: np.ndarray) -> tuple[np.ndarray, Any]:
        low, high = float(np.min(y_support)), float(np.max(y_support))
        if high <= low:  # a constant support target: any unit scale works, predictions equal `low`
            high = low + 1.0
        scaled = member.scale_targets(y_support, low, high)
        if self.n_bins:
            ids = np.clip(np.searchsorted(self._edges(), scaled, side="right") - 1, 0, self.n_bins - 1)
            return ids.astype(np.int64), (low, high)
        return scaled.astype(np.float32), (low, high)

    def member_prediction(self, member: EnsembleMember, outputs: np.ndarray, context: Any) -> np.ndarray:
        low, high = context
        if self.n_bins:
            edges = self._edges()
            centres = (edges[:-1] + edges[1:]) / 2
            outputs = softmax(outputs.astype(np.float64)) @ centres
        return member.unscale_targets(outputs, low, high)

    def combine(self, predictions: list[np.ndarray], members: list[EnsembleMember]) -> np.ndarray:
        """Mean of the members' predictions."""
        return np.mean(predictions, axis=0)

    def loss(self, member: EnsembleMember, outputs: torch.Tensor, y_query: np.ndarray, context: Any) -> torch.Tensor:
        """MSE in scaled target space (cross-entropy over bins for a binned head)."""
        low, high = context
        scaled = member.scale_targets(y_query, low, high)
        if self.n_bins:
            ids = np.clip(np.searchsorted(self._edges(), scaled, side="right") - 1, 0, self.n_bins - 1)
            target = torch.as_tensor(ids, dtype=torch.long, device=outputs.device)
            return F.cross_entropy(outputs.reshape(-1, self.n_bins).float(), target)
        target = torch.as_tensor(scaled, dtype=torch.float32, device=outputs.device)
        return regression_loss(outputs.reshape(-1), target)


def make_task(task: Task, config: MitraConfig, n_classes: int = 0) -> ClassificationTask | RegressionTask:
    """The task object for a checkpoint's head: ``n_classes`` classes on its label ids, or a
    scalar (``dim_output`` 1) or binned (``dim_output`` bins) regression head."""
    if Task.parse(task) is Task.CLASSIFICATION:
        # More classes than the head has outputs are handled with class groups (ECOC).
        return ClassificationTask(n_classes, config.dim_output)
    return RegressionTask(n_bins=config.dim_output if config.dim_output > 1 else 0)
