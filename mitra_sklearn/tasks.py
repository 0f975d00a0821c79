"""What classification and regression mean to the model: labels in, predictions out, losses.

One object per task turns a member's support targets into what the model reads, the model's raw
outputs back into predictions in the user's units, and outputs into a training loss. The
estimators (inference and fine-tuning) use the objects; ``pretraining`` uses the same loss
functions (`classification_loss`, `regression_loss`), so none of them can disagree. A binned
regression head (TabPFN's "bar distribution" over scaled targets) reads support bin ids and
predicts logits over the same bins (`regression_bin_edges`). `make_task` picks the object for a
checkpoint's head. `TargetScaling` is the one place where regression targets are scaled for the
model and predictions mapped back (the rule is in its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import MitraConfig, Task
from .distribution import RegressionDistribution, mix_members
from .ensemble import EnsembleMember, decode_class_probabilities, plan_members, softmax

__all__ = [
    "ClassificationTask",
    "RegressionTask",
    "TargetScaling",
    "make_task",
    "IGNORE_INDEX",
    "used_class_logits",
    "classification_loss",
    "regression_loss",
    "regression_bin_edges",
    "regression_bin_centres",
    "regression_bin_ids",
    "binned_regression_loss",
    "binned_regression_mean",
]

#: Label of padded or masked query rows: ``torch.nn.functional.cross_entropy``'s default
#: ``ignore_index``, used by the losses here and by the pretraining batches.
IGNORE_INDEX = -100


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
        targets = targets.masked_fill(~valid, IGNORE_INDEX)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), ignore_index=IGNORE_INDEX)


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error (in scaled target units) over the valid query rows (scalar head)."""
    errors = (outputs.reshape(targets.shape).float() - targets.float()) ** 2
    if valid is None:
        return errors.mean()
    return (errors * valid).sum() / valid.sum().clamp(min=1)


def regression_bin_edges(n_bins: int) -> np.ndarray:
    """Edges of a binned regression head's ``n_bins`` equal bins over the scaled targets,
    [-PREDICTION_MARGIN, 1 + PREDICTION_MARGIN]: exactly the official code's float32
    ``torch.linspace`` values (not those of ``np.linspace``: they differ by up to 1.2e-7), as float64."""
    return _float32_bin_edges(n_bins).astype(np.float64)


def _float32_bin_edges(n_bins: int) -> np.ndarray:
    return torch.linspace(-PREDICTION_MARGIN, 1.0 + PREDICTION_MARGIN, n_bins + 1, dtype=torch.float32).numpy()


def regression_bin_centres(n_bins: int) -> np.ndarray:
    """The value each bin stands for in a prediction, as the official code computes it: its lower
    edge plus half the first bin's width, in float32 (returned as float64)."""
    edges = _float32_bin_edges(n_bins)
    return (edges[:-1] + (edges[1] - edges[0]) / np.float32(2)).astype(np.float64)


def regression_bin_ids(scaled: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin id (int64) of each scaled target, by the official rule: bin ``k`` holds
    ``edges[k] < s <= edges[k + 1]`` (float32 comparisons), values beyond the edges go to the end bins."""
    edges = torch.as_tensor(_float32_bin_edges(n_bins), device=scaled.device)
    ids = torch.bucketize(scaled.float().contiguous(), edges, right=False) - 1
    return ids.clamp(0, n_bins - 1)


def binned_regression_loss(
    logits: torch.Tensor, scaled_targets: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy over the bins (``logits`` [..., bins]) of scaled targets [...], over the valid rows."""
    targets = regression_bin_ids(scaled_targets, logits.shape[-1])
    if valid is not None:
        targets = targets.masked_fill(~valid, IGNORE_INDEX)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def binned_regression_mean(logits: torch.Tensor) -> torch.Tensor:
    """Scaled prediction of a binned head: the probability-weighted mean of the bin centres."""
    centres = torch.as_tensor(regression_bin_centres(logits.shape[-1]), dtype=torch.float32, device=logits.device)
    return torch.softmax(logits.float(), dim=-1) @ centres


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
    #: Class logits are divided by it before the softmax (below 1: sharper probabilities).
    temperature: float = 1.0

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
        """Probabilities (rows, n_groups) of the label ids in use: softmax over their logits only
        (divided by the temperature)."""
        return softmax(outputs[:, : self.n_groups].astype(np.float64) / self.temperature)

    def combine(self, predictions: list[np.ndarray], members: list[EnsembleMember]) -> np.ndarray:
        """Class probabilities (rows, n_classes) from every member's label-id probabilities."""
        if self.n_classes <= self.n_label_ids:
            return np.mean([p[:, m.class_ids] for p, m in zip(predictions, members)], axis=0)
        return decode_class_probabilities(predictions, members, self.n_classes)

    def loss(self, member: EnsembleMember, outputs: torch.Tensor, y_query: np.ndarray, context: Any,
             weights: np.ndarray | None = None) -> torch.Tensor:
        """Cross-entropy over the label ids in use (the same softmax as at prediction time);
        the ``weights``-weighted mean over the query rows when given."""
        used = torch.arange(outputs.shape[-1], device=outputs.device) < self.n_groups
        target = torch.as_tensor(member.class_labels(y_query), dtype=torch.long, device=outputs.device)
        logits = outputs.reshape(-1, outputs.shape[-1])
        if weights is None:
            return classification_loss(logits, target, used)
        losses = F.cross_entropy(used_class_logits(logits, used), target, reduction="none")
        return _weighted_mean(losses, weights)


#: A target further than this many 5-95 % quantile spreads beyond those quantiles is an outlier.
OUTLIER_SPREADS = 10.0
#: Scaled predictions are kept within [-PREDICTION_MARGIN, 1 + PREDICTION_MARGIN]: the interval of
#: the binned head's bins (the official edges), half the scaling range beyond each end.
PREDICTION_MARGIN = 0.5
_FLOAT64_MAX = float(np.finfo(np.float64).max)


@dataclass(frozen=True)
class TargetScaling:
    """How one support set's regression targets are mapped onto the model's [0, 1] and back.

    The rule (`fit`):

    * **Common case: min-max.** ``low``/``high`` are the support targets' minimum and maximum,
      exactly as the official model and ``pretraining`` scale them, so the support targets
      span [0, 1].
    * **Outliers: robust min-max.** When a support target lies more than `OUTLIER_SPREADS`
      (10) times the 5-95 % quantile spread below the 5 % or above the 95 % quantile, the
      range is dominated by outliers (min-max would squeeze the other targets into less than
      a tenth of [0, 1]). Then ``low``/``high`` are the minimum and maximum of the other
      targets, and the outliers are clipped to 0 or 1: the model never sees support targets
      outside the range it was trained on. (With more than 5 % outliers, or when 90 % of the
      targets are equal, the quantiles cannot tell them apart and min-max is kept.)
    * A constant support target is scaled to 0 (predictions equal it).

    `unscale` clips scaled predictions to [-0.5, 1.5] (`PREDICTION_MARGIN`) before mapping
    them back, so a prediction is never further than half the scaling range from it. The
    arithmetic is overflow-free for any finite float64 targets (up to about +-1.8e308):
    a range that overflows is computed from halved terms, and predictions are clipped to the
    finite float64 range.

    Attributes
    ----------
    low, high : float
        Targets mapped to 0 and 1.
    n_clipped : int
        Support targets outside [low, high] (outliers; 0 for min-max scaling).
    """

    low: float
    high: float
    n_clipped: int = 0

    @property
    def robust(self) -> bool:
        """Whether outliers were left out of the range (and clipped)."""
        return self.n_clipped > 0

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScaling:
        """The scaling of support targets ``y`` (finite float64 values), by the rule above."""
        y = np.asarray(y, dtype=np.float64)
        low, high = float(np.min(y)), float(np.max(y))
        if high <= low:  # constant: any unit works; the scaled targets are all 0
            return cls(low, low + max(1.0, float(np.spacing(abs(low)))))
        # Quarter values: differences of targets near +-1.8e308 stay finite.
        quarter = y / 4
        q05, q95 = np.quantile(quarter, [0.05, 0.95])
        spread = q95 - q05
        if spread > 0:
            with np.errstate(over="ignore"):
                inside = (quarter >= q05 - OUTLIER_SPREADS * spread) & (quarter <= q95 + OUTLIER_SPREADS * spread)
            if not inside.all():
                return cls(float(y[inside].min()), float(y[inside].max()), n_clipped=int((~inside).sum()))
        return cls(low, high)

    def scale(self, y: np.ndarray) -> np.ndarray:
        """``(y - low) / (high - low)``, not clipped (outliers far beyond a tiny range may be +-inf)."""
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(over="ignore"):
            span = self.high - self.low
            if np.isfinite(span):
                return (y - self.low) / span
            return (y / 2 - self.low / 2) / (self.high / 2 - self.low / 2)

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Predictions in target units from scaled ones, clipped to [-0.5, 1.5] first."""
        scaled = np.clip(np.asarray(scaled, dtype=np.float64), -PREDICTION_MARGIN, 1.0 + PREDICTION_MARGIN)
        with np.errstate(over="ignore"):
            span = self.high - self.low
            if np.isfinite(span):
                values = scaled * span + self.low
            else:
                values = (scaled * (self.high / 2 - self.low / 2) + self.low / 2) * 2
        return np.clip(values, -_FLOAT64_MAX, _FLOAT64_MAX)


@dataclass(frozen=True)
class RegressionTask:
    """Targets scaled onto [0, 1] with the support rows' range (`TargetScaling`), then mirrored
    per member.

    ``n_bins`` > 1 is a binned head (``dim_output`` bins over [-0.5, 1.5], the official code's
    edges): support targets become bin ids and a prediction is the probability-weighted mean of
    the bin centres (the official code takes the most likely bin's centre, which rounds every
    prediction to a bin). ``n_bins`` 0 is the scalar head of the released regressor.
    """

    n_bins: int = 0
    #: A binned head's logits are divided by it before the softmax (scalar heads: no effect).
    temperature: float = 1.0

    stratify = False

    def plan_members(self, n_estimators: int, y: np.ndarray, n_features: int, rng: np.random.RandomState,
                     **limits: Any) -> list[EnsembleMember]:
        """Ensemble members: target mirroring, feature order and sign flips, support subsamples."""
        return plan_members(n_estimators, len(y), n_features, rng, **limits)

    def _bin_ids(self, scaled: np.ndarray) -> np.ndarray:
        """`regression_bin_ids` in NumPy: the scaled targets cast to float32 as the official code does."""
        edges = _float32_bin_edges(self.n_bins)
        ids = np.searchsorted(edges, np.asarray(scaled).astype(np.float32), side="left") - 1
        return np.clip(ids, 0, self.n_bins - 1).astype(np.int64)

    def support_labels(self, member: EnsembleMember, y_support: np.ndarray) -> tuple[np.ndarray, TargetScaling]:
        """Scaled (then mirrored) support targets in [0, 1], or their bin ids; the scaling is the context."""
        scaling = TargetScaling.fit(y_support)
        scaled = member.mirror(np.clip(scaling.scale(y_support), 0.0, 1.0))
        if self.n_bins:
            return self._bin_ids(scaled), scaling
        return scaled.astype(np.float32), scaling

    def member_prediction(self, member: EnsembleMember, outputs: np.ndarray, context: TargetScaling) -> np.ndarray:
        if self.n_bins:
            outputs = softmax(outputs.astype(np.float64) / self.temperature) @ regression_bin_centres(self.n_bins)
        return context.unscale(member.mirror(np.asarray(outputs, dtype=np.float64)))

    def member_histogram(self, member: EnsembleMember, outputs: np.ndarray, context: TargetScaling) -> np.ndarray:
        """A binned head's distribution per query row, (rows, 3 + n_bins): the scaling's ``low`` and
        ``high``, whether the member mirrors the targets, then the bin probabilities in the
        order of increasing target (a mirrored member's bins reversed)."""
        probabilities = softmax(np.asarray(outputs, dtype=np.float64)[:, : self.n_bins] / self.temperature)
        if member.mirror_target:
            probabilities = probabilities[:, ::-1]
        rows = np.empty((len(probabilities), 3 + self.n_bins))
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3:] = context.low, context.high, member.mirror_target, probabilities
        return rows

    def distribution(self, member_rows: list[np.ndarray]) -> RegressionDistribution:
        """The ensemble's predicted distribution: the mixture of the members' (`member_histogram`)."""
        edges = regression_bin_edges(self.n_bins)
        mirrored = (1.0 - edges)[::-1]  # a mirrored member's edges, increasing (as mitra-finetune maps them)

        def member_edges(low: float, high: float, mirror: float) -> np.ndarray:
            return TargetScaling(low, high).unscale(mirrored if mirror else edges)

        return mix_members(member_rows, member_edges, n_keys=3)

    def combine(self, predictions: list[np.ndarray], members: list[EnsembleMember]) -> np.ndarray:
        """Mean of the members' predictions."""
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.mean(predictions, axis=0)
        if not np.isfinite(mean).all():  # the sum overflowed: targets near float64's limit
            mean = np.sum(np.asarray(predictions) / len(predictions), axis=0)
        return mean

    def spread(self, predictions: list[np.ndarray]) -> np.ndarray:
        """Standard deviation of the members' predictions (overflow-free)."""
        with np.errstate(over="ignore", invalid="ignore"):
            std = np.std(predictions, axis=0)
        if not np.isfinite(std).all():  # squares overflowed: compute in units of the largest value
            values = np.asarray(predictions)
            unit = np.max(np.abs(values), axis=0)
            unit = np.where(unit > 0, unit, 1.0)
            std = np.std(values / unit, axis=0) * unit
        return std

    def loss(self, member: EnsembleMember, outputs: torch.Tensor, y_query: np.ndarray, context: TargetScaling,
             weights: np.ndarray | None = None) -> torch.Tensor:
        """MSE in scaled target space (cross-entropy over bins for a binned head), with query
        targets clipped to the interval predictions can reach; ``weights``-weighted when given."""
        scaled = member.mirror(np.clip(context.scale(y_query), -PREDICTION_MARGIN, 1.0 + PREDICTION_MARGIN))
        if self.n_bins:
            target = torch.as_tensor(self._bin_ids(scaled), dtype=torch.long, device=outputs.device)
            logits = outputs.reshape(-1, self.n_bins).float()
            if weights is None:
                return F.cross_entropy(logits, target)
            return _weighted_mean(F.cross_entropy(logits, target, reduction="none"), weights)
        target = torch.as_tensor(scaled, dtype=torch.float32, device=outputs.device)
        if weights is None:
            return regression_loss(outputs.reshape(-1), target)
        return _weighted_mean((outputs.reshape(-1).float() - target) ** 2, weights)


def _weighted_mean(losses: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    """Mean of per-row ``losses`` weighted by the rows' sample weights."""
    w = torch.as_tensor(weights, dtype=losses.dtype, device=losses.device)
    return (losses * w).sum() / w.sum()


def make_task(task: Task, config: MitraConfig, n_classes: int = 0, temperature: float = 1.0,
              max_classes_per_member: int | None = None) -> ClassificationTask | RegressionTask:
    """The task object for a checkpoint's head: ``n_classes`` classes on its label ids (at most
    ``max_classes_per_member`` of them), or a scalar (``dim_output`` 1) or binned (``dim_output``
    bins) regression head; ``temperature`` divides the logits of the softmax at prediction time."""
    if Task.parse(task) is Task.CLASSIFICATION:
        # More classes than the label ids in use are handled with class groups (ECOC).
        label_ids = min(config.dim_output, max_classes_per_member or config.dim_output)
        return ClassificationTask(n_classes, label_ids, temperature)
    return RegressionTask(n_bins=config.dim_output if config.dim_output > 1 else 0, temperature=temperature)
