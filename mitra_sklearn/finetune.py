"""Optional fine-tuning of the pretrained weights on the user's training set.

The episodes follow the official recipe (tasks drawn from the training set, AdamW, a
validation split whose loss picks the weights kept), with its quirks fixed:

* every draw comes from the estimator's ``random_state`` (the official code uses the global
  NumPy RNG for some of them);
* the best weights are copied, so they really are restored on every device (the official
  checkpoint aliases the live parameters on the CPU and keeps the last weights there);
* the loss is computed over the classes in use, with the same softmax as at prediction time;
* with sample weights, each query row's loss is weighted (training and validation); the
  tasks' support rows are drawn uniformly from the training rows.

One fine-tuned copy of the weights serves all ensemble members: each step draws a random
member's view (class permutation, sign flips, target mirror), so the model is tuned for the
same inputs it sees at prediction time, at the cost of one copy of the weights instead of one
per member.

The optimiser settings are ours, not the official ones: AdamW at 1e-5 after 10 warm-up steps,
weight decay 0.3 (not on norms, biases and embeddings), gradient clipping at 1.0, 50 steps with
early stopping (patience 40). The official recipe (lr 1e-4 with a 1,000-step linear warm-up,
weight decay 0.1 on every parameter, no clipping) is at 5e-6 by step 50; ours takes somewhat
larger steps so that 50 steps can change the predictions, and the validation split keeps the
pretrained weights whenever tuning does not help.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ._inference import out_of_memory_as_error, release_if_out_of_memory
from .devices import autocast_context
from .ensemble import EnsembleMember
from .exceptions import MitraOutOfMemoryError
from .model import MitraModel
from .progress import progress_bar

__all__ = ["FineTuneRecipe", "FineTuneResult", "fine_tune", "fine_tune_recipe", "RECIPES"]

WARMUP_STEPS = 10
WEIGHT_DECAY = 0.3
GRADIENT_CLIP = 1.0
# Stop when the validation loss has not improved for this many steps (official patience).
PATIENCE = 40
# Below this many training rows a validation split is too noisy to pick weights with.
MIN_ROWS = 10
# Out of memory in a training step halves the task's rows, down to this many support rows.
MIN_SUPPORT_ROWS_ON_OOM = 32


@dataclass(frozen=True)
class FineTuneRecipe:
    """The optimiser settings of one fine-tuning run.

    Attributes
    ----------
    steps : int
        Optimizer steps (fewer when the validation loss stops improving for `PATIENCE` steps).
    learning_rate : float
        Peak learning rate of AdamW.
    warmup_steps : int
        Linear warm-up from ``learning_rate / warmup_steps``.
    weight_decay : float
        AdamW's decoupled weight decay.
    decay_all_parameters : bool
        Decay norms, biases and embeddings too (otherwise only the weight matrices).
    warmup_peak : float
        Share of ``learning_rate`` the warm-up ends at and then keeps (1.0: the full rate).
    gradient_clip : float or None
        Largest gradient norm (None: no clipping).
    support_rows : int or None
        Cap on a training task's support rows (None: the estimator's ``max_support_rows_``).
    """

    steps: int
    learning_rate: float
    warmup_steps: int = WARMUP_STEPS
    weight_decay: float = WEIGHT_DECAY
    decay_all_parameters: bool = False
    warmup_peak: float = 1.0
    gradient_clip: float | None = GRADIENT_CLIP
    support_rows: int | None = None

    def lr_factor(self, step: int) -> float:
        """Share of ``learning_rate`` at ``step`` (0-based)."""
        warmup = min(self.warmup_steps, self.steps)
        start = 1.0 / warmup
        done = min(step, warmup - 1) / max(1, warmup - 1)
        return start + (self.warmup_peak - start) * done


#: The Mitra-v2 authors' recipe (mitra-finetune 0.3.0, docs/mitra-v2-reference.md §3.7): 50 steps
#: of AdamW (betas 0.9, 0.999) at 1e-5 (3e-6 on binary tables of at most 16,384 rows), decay 0.3 on
#: every parameter, no clipping, a 10-step warm-up that stops at 0.91 of the rate (their loop
#: steps its LinearLR warm-up one step short), training tasks of at most 16,384 (classification)
#: or 20,480 (regression) support rows.
_MITRA_V2 = FineTuneRecipe(steps=50, learning_rate=1e-5, warmup_steps=10, weight_decay=0.3,
                           decay_all_parameters=True, warmup_peak=0.91, gradient_clip=None)
#: Named recipes of ``fine_tune="<name>"``.
RECIPES = ("mitra-v2",)


def fine_tune_recipe(name: str, *, n_classes: int | None, n_rows: int) -> FineTuneRecipe:
    """A named recipe for a task with ``n_classes`` classes (None: regression) and ``n_rows`` rows."""
    if name != "mitra-v2":
        raise ValueError(f"Unknown fine-tuning recipe {name!r}; choose from {RECIPES}.")
    small_binary = n_classes == 2 and n_rows <= 16_384
    return dataclasses.replace(_MITRA_V2, learning_rate=3e-6 if small_binary else _MITRA_V2.learning_rate,
                               support_rows=20_480 if n_classes is None else 16_384)


@dataclass
class FineTuneResult:
    """Outcome of :func:`fine_tune`.

    Attributes
    ----------
    state_dict : dict or None
        Best weights (CPU tensors), or None when the pretrained weights stayed best.
    validation_losses : list of float
        Validation loss before training (index 0) and after each step.
    best_step : int
        Step whose weights were kept (0 = pretrained).
    """

    state_dict: dict[str, torch.Tensor] | None
    validation_losses: list[float] = field(default_factory=list)
    best_step: int = 0


def fine_tune(
    model: MitraModel,
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: Any,
    members: list[EnsembleMember],
    recipe: FineTuneRecipe,
    device: torch.device,
    dtype: torch.dtype,
    rng: np.random.RandomState,
    max_support_rows: int,
    max_query_rows: int,
    stratify: bool,
    verbose: bool = False,
    sample_weight: np.ndarray | None = None,
) -> FineTuneResult:
    """Fine-tune a copy of ``model`` on (X, y) and return the best weights.

    Parameters
    ----------
    model : MitraModel
        Pretrained model; it is not modified.
    X : ndarray of shape (n_rows, n_features)
        Encoded training table.
    y : ndarray of shape (n_rows,)
        Class indices (classification) or targets (regression).
    task : ClassificationTask or RegressionTask
        Turns targets into model labels and outputs into a loss.
    members : list of EnsembleMember
        Views to train on; the first one is also used for validation.
    recipe : FineTuneRecipe
        Steps, learning rate and the other optimiser settings.
    device, dtype : torch.device, torch.dtype
        Where to train; ``dtype`` is the autocast dtype (float32 weights are kept).
    rng : numpy.random.RandomState
        Source of every random draw.
    max_support_rows, max_query_rows : int
        Caps on the rows of a training task.
    stratify : bool
        Keep class proportions in the splits (classification).
    verbose : bool, default=False
        Show a progress bar.
    sample_weight : ndarray of shape (n_rows,), optional
        Positive row weights of the losses (None: every row counts the same).

    Raises
    ------
    MitraOutOfMemoryError
        When even tasks of ``MIN_SUPPORT_ROWS_ON_OOM`` support rows do not fit. Before that, an
        out-of-memory error in a training step halves the rows of the training tasks (with a
        warning) and retries the step; validation keeps its rows.
    """
    if len(X) < MIN_ROWS:
        return FineTuneResult(state_dict=None)
    train_rows, valid_rows = _split(rng, y, 0.2, stratify)
    tuned = copy.deepcopy(model).to(device=device, dtype=torch.float32).train()
    tuned.gradient_checkpointing = device.type == "cuda"
    groups = (tuned.parameters() if recipe.decay_all_parameters
              else tuned.optimizer_groups(recipe.weight_decay))
    optimizer = torch.optim.AdamW(groups, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, recipe.lr_factor)
    steps = recipe.steps
    if recipe.support_rows is not None:
        max_support_rows = min(max_support_rows, recipe.support_rows)

    def validate() -> float:
        advice = (
            f"validating fine-tuned weights with {min(len(train_rows), max_support_rows)} support rows. Lower "
            "max_support_rows or batch_size, or use fine_tune=False."
        )
        with out_of_memory_as_error(device, advice):
            return _validation_loss(tuned, task, members[0], X, y, train_rows, valid_rows, device, dtype,
                                    max_support_rows, max_query_rows, sample_weight)

    result = FineTuneResult(state_dict=None, validation_losses=[validate()])
    best = result.validation_losses[0]
    progress = progress_bar(steps, "Mitra fine-tuning", "step", enabled=verbose)
    # Training needs several times the memory of inference: shrink its tasks, not validation's.
    task_rows = TaskRows(max_support_rows, max_query_rows)
    step = 0
    while step < steps:
        member = members[rng.randint(len(members))]
        support, query = _split(rng, y[train_rows], 0.2, stratify)
        support, query = train_rows[support[: task_rows.support]], train_rows[query[: task_rows.query]]
        try:
            loss = _train_step(tuned, optimizer, task, member, X, y, support, query, device, dtype, sample_weight,
                               recipe.gradient_clip)
        except RuntimeError as err:
            optimizer.zero_grad(set_to_none=True)  # before the release: the gradients hold memory too
            if not release_if_out_of_memory(err, device):
                raise
            task_rows = task_rows.halved(device, err)
            continue  # the same step again, on a smaller task
        scheduler.step()
        step += 1

        current = validate()
        result.validation_losses.append(current)
        if current < best:
            best, result.best_step = current, step
            result.state_dict = {k: v.detach().to("cpu", copy=True) for k, v in tuned.state_dict().items()}
        if progress is not None:
            progress.set_postfix(train_loss=f"{loss:.4f}", valid_loss=f"{current:.4f}", best_step=result.best_step)
            progress.update(1)
        if step - result.best_step >= PATIENCE:
            break
    if progress is not None:
        progress.close()
    return result


@dataclass(frozen=True)
class TaskRows:
    """Row caps of one fine-tuning task (support and query rows)."""

    support: int
    query: int

    def halved(self, device: torch.device, err: BaseException) -> TaskRows:
        """Half the rows after an out-of-memory error, or a clear error below the floor."""
        if self.support <= MIN_SUPPORT_ROWS_ON_OOM:
            raise MitraOutOfMemoryError(
                f"Out of memory on {device} fine-tuning even with tasks of {self.support} support and {self.query} "
                "query rows. Use fine_tune=False, fewer features (max_features), or a device with more memory."
            ) from err
        smaller = TaskRows(max(MIN_SUPPORT_ROWS_ON_OOM, self.support // 2), max(1, self.query // 2))
        warnings.warn(
            f"Out of memory on {device} in a fine-tuning step; training tasks now use at most {smaller.support} "
            f"support and {smaller.query} query rows (validation is unchanged).",
            UserWarning,
            stacklevel=4,
        )
        return smaller


def _train_step(
    model: MitraModel,
    optimizer: torch.optim.Optimizer,
    task: Any,
    member: EnsembleMember,
    X: np.ndarray,
    y: np.ndarray,
    support: np.ndarray,
    query: np.ndarray,
    device: torch.device,
    dtype: torch.dtype,
    sample_weight: np.ndarray | None = None,
    gradient_clip: float | None = GRADIENT_CLIP,
) -> float:
    """One optimizer step on one task; returns its training loss."""
    labels, context = task.support_labels(member, y[support])
    model.train()
    with autocast_context(device, dtype):
        outputs = model(_batch(member.view(X[support]), device), _batch(labels, device),
                        _batch(member.view(X[query]), device))
    loss = task.loss(member, outputs, y[query], context, _rows(sample_weight, query))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if gradient_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), gradient_clip)
    optimizer.step()
    return float(loss.detach())


def _rows(weights: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if weights is None else weights[rows]


def _batch(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(array).unsqueeze(0).to(device)


def _split(
    rng: np.random.RandomState, y: np.ndarray, fraction: float, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (first, second) row indices with ``fraction`` in the second part, stratified when asked."""
    n = len(y)
    if not stratify:
        order = rng.permutation(n)
        n_second = max(1, int(round(fraction * n)))
        return order[n_second:], order[:n_second]
    first, second = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        # Classes with a single row stay in the first part (the support set needs them).
        n_second = int(round(fraction * len(rows))) if len(rows) > 1 else 0
        second.append(rows[:n_second])
        first.append(rows[n_second:])
    first_rows, second_rows = np.concatenate(first), np.concatenate(second)
    if len(second_rows) == 0:  # every class is a singleton: fall back to a plain split
        return _split(rng, y, fraction, stratify=False)
    return rng.permutation(first_rows), rng.permutation(second_rows)


@torch.no_grad()
def _validation_loss(
    model: MitraModel,
    task: Any,
    member: EnsembleMember,
    X: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    device: torch.device,
    dtype: torch.dtype,
    max_support_rows: int,
    max_query_rows: int,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Loss on the validation rows (weighted mean with ``sample_weight``)."""
    model.eval()
    support = train_rows[:max_support_rows]
    labels, context = task.support_labels(member, y[support])
    total, count = 0.0, 0
    with autocast_context(device, dtype):
        cache = model.encode_support(_batch(member.view(X[support]), device), _batch(labels, device))
        for start in range(0, len(valid_rows), max_query_rows):
            rows = valid_rows[start : start + max_query_rows]
            outputs = model.predict_query(cache, _batch(member.view(X[rows]), device))
            # Chunk means, weighted by the chunk's rows (or the sum of their weights).
            size = len(rows) if sample_weight is None else float(sample_weight[rows].sum())
            total += float(task.loss(member, outputs, y[rows], context, _rows(sample_weight, rows))) * size
            count += size
    return total / count
