"""Pretraining loop: synthetic tables in, Mitra checkpoints (official format) out.

One process on the CPU or one GPU, or ``torchrun`` DDP across GPUs and nodes (NCCL on GPU,
gloo on CPU); each rank draws different tables (see `pretraining.data`). `train` reads top to
bottom: set-up, model and optimiser, resume or warm start, data, then a short loop whose
bookkeeping lives in two small objects: a `ThroughputMeter` (tables/s, time waiting for data)
and a `Schedule` (when to log, save, evaluate and stop).

The optimiser (AdamW, or Muon for the layers' matrices) and the optional weight average (EMA,
which checkpoints export) come from `pretraining.optim`; ``--init-from`` can also start a deeper
model from a shallower one (`layer_mapping`).

Checkpoints and the training state are written by `pretraining.runfolder.RunFolder` (layout
documented there); a restarted run resumes from the newest one and repeats at most the steps
since that save: the data of step ``k`` depends only on (seed, rank, k), so a resumed run
reproduces the uninterrupted one exactly on the CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mitra_sklearn.checkpoint import load_model
from mitra_sklearn.config import MitraConfig, Task
from mitra_sklearn.devices import autocast_context, resolve_precision
from mitra_sklearn.model import MitraModel
from mitra_sklearn.progress import progress_bar
from mitra_sklearn.tasks import (
    PREDICTION_MARGIN,
    binned_regression_loss,
    binned_regression_mean,
    classification_loss,
    regression_bin_ids,
    regression_loss,
    used_class_logits,
)

from .config import TrainConfig
from .data import SyntheticTableStream
from .optim import WeightAverage, apply_run_settings, build_optimizer, load_optimizer_state
from .runfolder import RunFolder, TrainingState, is_run_folder, pack_campaign

__all__ = ["train", "TrainResult", "lr_factor", "compute_loss", "count_parameters", "Schedule",
           "ThroughputMeter", "model_config", "layer_mapping"]

_EVAL_SEED_OFFSET = 1_000_003  # held-out prior tables never overlap the training stream


@dataclass
class TrainResult:
    """What a finished (or stopped) run leaves behind."""

    step: int
    checkpoint: Path | None
    log_path: Path
    stopped_early: bool


# ---------------------------------------------------------------------------- small helpers
def model_config(config: TrainConfig) -> MitraConfig:
    """The model shape a run trains."""
    return MitraConfig(dim=config.dim, dim_output=config.head_size, n_layers=config.n_layers,
                       n_heads=config.n_heads, task=config.task)


def count_parameters(config: TrainConfig) -> int:
    with torch.device("meta"):
        model = MitraModel(model_config(config))
    return sum(p.numel() for p in model.parameters())


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning rate at ``step`` as a share of the peak.

    Linear warm-up to the peak, then cosine decay to ``min_lr_ratio`` at ``cosine_steps`` (default:
    the last step). With ``cooldown_steps`` the last that many steps instead fall linearly from the
    schedule's value at the cooldown's first step to ``min_lr_ratio`` at ``steps``.
    """
    if config.cooldown_steps and step >= config.cooldown_start:
        start = _warmup_cosine(config.cooldown_start, config)
        done = min(1.0, (step - config.cooldown_start) / config.cooldown_steps)
        return start + (config.min_lr_ratio - start) * done
    return _warmup_cosine(step, config)


def _warmup_cosine(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.cosine_horizon - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine


def compute_loss(
    outputs: torch.Tensor, batch: dict[str, Any], task: str, mean_loss_weight: float = 0.0
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Cross-entropy over each table's label ids, or the regression loss, over real query rows.

    The losses are the estimators' own (`mitra_sklearn.tasks`): the softmax covers only the
    label ids a table uses, as at prediction time. Regression is MSE on the scaled targets for
    a scalar head and cross-entropy over the bins for a binned one (outputs with a bins axis),
    plus ``mean_loss_weight`` times the MSE of the bins' mean (`TrainConfig.mean_loss_weight`);
    ``extra["mse"]`` is the MSE of the prediction for both, so the two heads compare.
    """
    y_query = batch["y_query"]
    valid = ~batch["padding_obs_query"]
    if Task.parse(task) is Task.CLASSIFICATION:
        used = batch["classes_used"]
        if used.shape[-1] < outputs.shape[-1]:  # a head wider than the prior's label ids
            used = nn.functional.pad(used, (0, outputs.shape[-1] - used.shape[-1]), value=False)
        used = used[:, None, :]
        loss = classification_loss(outputs, y_query, used, valid)
        with torch.no_grad():
            correct = ((used_class_logits(outputs, used).argmax(-1) == y_query) & valid).sum()
            accuracy = correct.float() / valid.sum().clamp(min=1)
        return loss, {"accuracy": accuracy}
    if outputs.ndim > y_query.ndim:  # [tables, rows, bins]: a binned head (a scalar one gives [tables, rows])
        loss = binned_regression_loss(outputs, y_query, valid)
        with torch.set_grad_enabled(torch.is_grad_enabled() and mean_loss_weight > 0):
            mean = binned_regression_mean(outputs)
        if mean_loss_weight > 0:
            # Against targets clipped to the bins' range, as the cross-entropy puts them in the edge
            # bins: a query target far outside its support's range (the scaling's) would otherwise
            # give one table a loss of hundreds that the mean cannot reach.
            reachable = y_query.clamp(-PREDICTION_MARGIN, 1.0 + PREDICTION_MARGIN)
            loss = loss + mean_loss_weight * regression_loss(mean, reachable, valid)
        return loss, {"mse": regression_loss(mean.detach(), y_query, valid)}
    loss = regression_loss(outputs, y_query, valid)
    return loss, {"mse": loss.detach()}


def _forward(model: nn.Module, batch: dict[str, Any], config: TrainConfig) -> torch.Tensor:
    masks = {}
    if not config.same_shape_per_batch:  # padding exists only when shapes differ inside a batch
        masks = {k: batch[k] for k in ("padding_features", "padding_obs_support", "padding_obs_query")}
    y_support = batch["y_support"]
    if config.task is Task.REGRESSION and config.head_size > 1:
        # A binned head reads support targets as bin ids, as the estimator gives them (padding is masked).
        y_support = regression_bin_ids(y_support, config.head_size)
    return model(batch["x_support"], y_support, batch["x_query"], **masks)


def _learning_rates(scheduler: Any, config: TrainConfig) -> dict[str, float]:
    """The log's ``lr`` (AdamW's, the first group's) and, with Muon, ``muon_lr`` (the last group's)."""
    rates = scheduler.get_last_lr()
    return {"lr": rates[0], "muon_lr": rates[-1]} if config.optimizer == "muon" else {"lr": rates[0]}


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _autocast(device: torch.device, config: TrainConfig) -> contextlib.AbstractContextManager:
    # 'auto': bf16 autocast on CUDA and on CPUs with AMX (there 1.18-1.27x faster than float32,
    # the attention kept in float32: docs/pretraining.md), float32 elsewhere.
    return autocast_context(device, resolve_precision(config.precision, device))


def _return_freed_memory_to_the_system() -> None:
    """Serve large allocations with mmap, so that freed activations go back to the OS.

    glibc raises its mmap threshold after large blocks are freed, and then keeps them on the
    heap; with a new table shape every batch the heap fragments, and two CPU runs grew to 12 GB
    each (one was killed for memory) where the activations need about 2 GB. Fixing the
    threshold at 64 KiB is what ``MALLOC_MMAP_THRESHOLD_=65536`` does; a no-op outside glibc.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return  # the user chose
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        m_mmap_threshold = -3  # glibc's mallopt parameter number
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, 65536)


def _worker_init(_: int) -> None:
    # Generators are single-threaded numpy/sklearn code; extra BLAS threads only fight the trainer.
    torch.set_num_threads(1)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


# ---------------------------------------------------------------------------- bookkeeping
class ThroughputMeter:
    """Tables per second and the share of time spent waiting for data, per logging window."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._start, self._tables, self._data_wait = time.time(), 0, 0.0

    def next_batch(self, batches: Any) -> Any:
        """The next batch from the loader, timing the wait."""
        start = time.time()
        batch = next(batches)
        self._data_wait += time.time() - start
        return batch

    def count(self, tables: int) -> None:
        self._tables += tables

    def window(self) -> dict[str, float]:
        """Rates since the last call, which opens a new window."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.time()
        elapsed = max(now - self._start, 1e-9)
        rates = {"tables_per_s": self._tables / elapsed, "data_wait_fraction": self._data_wait / elapsed}
        self._start, self._tables, self._data_wait = now, 0, 0.0
        return rates


class Schedule:
    """When a run logs, saves, evaluates and stops.

    Saves come every ``save_every`` steps and every ``save_every_seconds``; evaluations every
    ``eval_every`` steps. The last step (``stop_after`` or the schedule's end) and running out of
    ``time_limit`` do all three. An evaluation step is always a save step, so an evaluation
    reads the weights of the step it reports.
    """

    def __init__(self, config: TrainConfig, final_step: int) -> None:
        self.config, self.final_step = config, final_step
        self.started = self.last_save = time.time()

    def elapsed(self) -> float:
        return time.time() - self.started

    def log_due(self, step: int) -> bool:
        return step % self.config.log_every == 0 or step == self.final_step

    def out_of_time(self) -> bool:
        return self.config.time_limit is not None and self.elapsed() >= self.config.time_limit

    def evaluate_due(self, step: int, out_of_time: bool) -> bool:
        return step % self.config.eval_every == 0 or step == self.final_step or out_of_time

    def save_due(self, step: int, evaluate: bool) -> bool:
        timed = time.time() - self.last_save >= self.config.save_every_seconds
        return step % self.config.save_every == 0 or timed or evaluate

    def saved(self) -> None:
        self.last_save = time.time()


# ---------------------------------------------------------------------------- distributed set-up
@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when any rank says True (they must agree to stop, or collectives hang)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor(float(flag), device=device)
        torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, value: torch.Tensor) -> float:
        if self.world_size > 1:
            torch.distributed.all_reduce(value)
            value = value / self.world_size
        return float(value)


def _init_distributed(device_name: str | None) -> tuple[_Dist, torch.device]:
    """Join the process group when launched by torchrun; pick this rank's device."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        dist = _Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
        use_cuda = torch.cuda.is_available() and device_name != "cpu"
        if use_cuda:
            torch.cuda.set_device(dist.local_rank)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
        device = torch.device("cuda", dist.local_rank) if use_cuda else torch.device("cpu")
        return dist, device
    if device_name in (None, "auto"):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_name)
    return _Dist(), device


# ---------------------------------------------------------------------------- the run
def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    device: str | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    campaign: str | os.PathLike | None = None,
) -> TrainResult:
    """Pretrain (or resume pretraining) a Mitra model.

    Parameters
    ----------
    config : TrainConfig
        The run; stored next to every checkpoint. A resumed run must keep the model shape; a
        changed learning rate, weight decay, betas or schedule length takes effect at once.
    out_dir : path
        Run folder (`pretraining.runfolder.RunFolder`): checkpoints, ``latest``, ``log.jsonl``,
        ``train_config.json``.
    device : str, optional
        'cpu', 'cuda', ... (default: CUDA when available). Under torchrun each rank uses its
        local GPU.
    resume : bool, default=True
        Continue from the newest checkpoint in ``out_dir`` if there is one.
    progress : bool, default=True
        Show a progress bar (main rank only).
    stop_after : int, optional
        Stop (after saving) at this step although the schedule runs to ``config.steps``; used to
        split a run over several sessions and by the resume tests.
    campaign : path, optional
        Folder that receives the run's newest resumable state, packed small (bf16 shards, log,
        config), after every save: what a repository commits so that a fresh clone continues
        the run (``python -m pretraining resume <campaign>``).
    """
    run = RunFolder(out_dir)
    dist, device = _init_distributed(device)
    if dist.is_main:
        run.lock()  # a second run in this folder would overwrite this one's checkpoints and log
    if device.type == "cpu":
        _return_freed_memory_to_the_system()
    torch.manual_seed(config.seed + dist.rank)
    micro, accumulation = _micro_batches(config, dist.world_size)
    trained = _Trained.start(run, config, device, dist, resume)
    if dist.is_main:
        run.write_config(config.to_dict())
    forward_model = _parallel(trained.model, config, dist, device)
    batches = iter(_loader(config, micro, accumulation, dist, trained.state, device))
    eval_batches = _held_out_batches(config, micro) if dist.is_main else []

    model, state, averaged, checkpoint = trained.model, trained.state, trained.averaged, trained.checkpoint
    final_step = min(config.steps, stop_after) if stop_after is not None else config.steps
    schedule, meter = Schedule(config, final_step), ThroughputMeter(device)
    bar = progress_bar(config.steps, "pretraining", "step", enabled=progress and dist.is_main, initial=state.step)
    seconds_before = state.train_seconds
    if dist.is_main and state.step == 0:
        run.log({"step": 0, **_evaluations(model, averaged, eval_batches, config, device, real_data=False)})

    stopped_early = False
    while state.step < final_step:
        loss, grad_norm = _optimizer_step(forward_model, model, trained.optimizer, batches, meter, accumulation, dist,
                                          config, device)
        trained.scheduler.step()
        if averaged is not None:
            averaged.update(model)
        state.step += 1
        state.tables_seen += config.batch_size
        state.train_seconds = seconds_before + schedule.elapsed()
        meter.count(config.batch_size)
        if schedule.log_due(state.step):
            _log_step(run, bar, dist, state, loss, grad_norm, trained.scheduler, config, meter)
        if bar is not None:
            bar.update(1)

        out_of_time = dist.any(schedule.out_of_time(), device)
        evaluate = schedule.evaluate_due(state.step, out_of_time)
        saved = schedule.save_due(state.step, evaluate)
        if saved:
            if dist.is_main:
                checkpoint = run.save(model, trained.optimizer, trained.scheduler, state, config.to_dict(),
                                      config.keep_checkpoints, averaged=averaged)
            schedule.saved()
        if dist.is_main and evaluate:
            run.log({"step": state.step, **_evaluations(model, averaged, eval_batches, config, device,
                                                        real_data=config.real_data_eval, checkpoint=checkpoint)})
        if saved and dist.is_main and campaign is not None:
            # After the evaluation of this step, so that the campaign's log holds it (the last
            # step's scores were missing otherwise).
            pack_campaign(run.path, campaign)
        if out_of_time:
            stopped_early = state.step < final_step
            break
    if bar is not None:
        bar.close()
    if dist.world_size > 1:
        torch.distributed.barrier()
    return TrainResult(step=state.step, checkpoint=checkpoint, log_path=run.log_path, stopped_early=stopped_early)


def _micro_batches(config: TrainConfig, world_size: int) -> tuple[int, int]:
    """Tables per forward pass per rank, and micro-batches per optimizer step."""
    micro = config.micro_batch_size or max(1, config.batch_size // world_size)
    accumulation = max(1, config.batch_size // (micro * world_size))
    if micro * world_size * accumulation != config.batch_size:
        raise ValueError(
            f"batch_size {config.batch_size} is not micro_batch_size {micro} x world size {world_size} x "
            "an integer number of accumulation steps."
        )
    return micro, accumulation


@dataclass
class _Trained:
    """What training changes: the model, its optimizer and schedule, the state and weight average."""

    model: MitraModel
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: TrainingState
    averaged: WeightAverage | None
    checkpoint: Path | None

    @classmethod
    def start(cls, run: RunFolder, config: TrainConfig, device: torch.device, dist: _Dist, resume: bool) -> _Trained:
        """A new model (or warm start), or the newest checkpoint's everything when resuming."""
        model = MitraModel(model_config(config)).to(device)
        model.gradient_checkpointing = config.gradient_checkpointing
        optimizer = build_optimizer(model, config, device)
        # One factor for every group: Muon's rate follows the schedule of AdamW's.
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
        state, averaged = TrainingState(), None
        checkpoint = run.latest_checkpoint() if resume else None
        if checkpoint is not None:
            state, averaged = _restore(run, checkpoint, model, optimizer, scheduler, config, device)
            if dist.is_main:
                run.drop_log_after(state.step)
        elif config.init_from is not None:
            _warm_start(model, config)
        if averaged is None and config.ema_decay is not None:  # a new run, or averaging switched on at resume
            averaged = WeightAverage(model, config.ema_decay)
        return cls(model, optimizer, scheduler, state, averaged, checkpoint)


def _parallel(model: MitraModel, config: TrainConfig, dist: _Dist, device: torch.device) -> nn.Module:
    """The module the forward passes go through: compiled and/or wrapped in DDP as configured."""
    forward_model: nn.Module = torch.compile(model) if config.compile else model
    if dist.world_size > 1:
        forward_model = nn.parallel.DistributedDataParallel(
            forward_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return forward_model


def _loader(config: TrainConfig, micro: int, accumulation: int, dist: _Dist, state: TrainingState,
            device: torch.device) -> torch.utils.data.DataLoader:
    """This rank's training batches, from the batch the resumed step would have read next."""
    stream = SyntheticTableStream(
        config.task, micro, config.priors, seed=config.seed, rank=dist.rank, world_size=dist.world_size,
        same_shape_per_batch=config.same_shape_per_batch, start_batch=state.step * accumulation,
    )
    return torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=config.num_workers, pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if config.num_workers else None,
        prefetch_factor=4 if config.num_workers else None, persistent_workers=config.num_workers > 0,
    )


def _log_step(run: RunFolder, bar: Any, dist: _Dist, state: TrainingState, loss: torch.Tensor,
              grad_norm: torch.Tensor, scheduler: Any, config: TrainConfig, meter: ThroughputMeter) -> None:
    """One line of ``log.jsonl`` (the loss averaged over ranks: every rank must call this)."""
    record = {"step": state.step, "loss": dist.mean(loss), **_learning_rates(scheduler, config),
              "grad_norm": float(grad_norm), **meter.window(), "tables_seen": state.tables_seen,
              "train_seconds": state.train_seconds}
    if dist.is_main:
        run.log(record)
        if bar is not None:
            bar.set_postfix(loss=f"{record['loss']:.4f}", tables_s=f"{record['tables_per_s']:.1f}")


def _optimizer_step(
    forward_model: nn.Module, model: MitraModel, optimizer: torch.optim.Optimizer, batches: Any,
    meter: ThroughputMeter, accumulation: int, dist: _Dist, config: TrainConfig, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward (over ``accumulation`` micro-batches, each in chunks of at most
    ``max_cells_per_forward`` cells) and one optimizer step."""
    forward_model.train()
    losses = []
    for micro_step in range(accumulation):
        batch = _to_device(meter.next_batch(batches), device)
        chunks = _chunks(batch, config.max_cells_per_forward)
        for index, (chunk, share) in enumerate(chunks):
            sync = contextlib.nullcontext()
            if dist.world_size > 1 and (micro_step < accumulation - 1 or index < len(chunks) - 1):
                sync = forward_model.no_sync()  # all-reduce the gradients once per optimizer step
            with sync:
                with _autocast(device, config):
                    outputs = _forward(forward_model, chunk, config)
                loss, _ = compute_loss(outputs, chunk, config.task, config.mean_loss_weight)
                (loss * share / accumulation).backward()
            losses.append(loss.detach() * share)
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return torch.stack(losses).sum() / accumulation, grad_norm


def _chunks(batch: dict[str, Any], max_cells: int | None) -> list[tuple[dict[str, Any], float]]:
    """The batch's tables in chunks of at most ``max_cells`` cells, each with its share of the tables.

    Tables of one batch share a shape (or are padded to one), so every table weighs the same in
    the batch loss and ``sum(share * chunk loss)`` is the loss of the whole batch.
    """
    n_tables, n_support, n_features = batch["x_support"].shape
    cells = (n_support + batch["x_query"].shape[1]) * (n_features + 1)
    per_chunk = n_tables if max_cells is None else max(1, min(n_tables, max_cells // max(cells, 1)))
    if per_chunk >= n_tables:
        return [(batch, 1.0)]
    out = []
    for start in range(0, n_tables, per_chunk):
        part = {k: (v[start : start + per_chunk] if isinstance(v, (torch.Tensor, list)) else v)
                for k, v in batch.items()}
        out.append((part, len(part["x_support"]) / n_tables))
    return out


# ---------------------------------------------------------------------------- evaluation
def _held_out_batches(config: TrainConfig, micro: int) -> list[dict[str, Any]]:
    """A fixed sample of prior tables (same mixture, another seed), generated once per run."""
    size = min(micro, config.n_eval_tables)
    stream = SyntheticTableStream(config.task, size, config.priors, seed=config.seed + _EVAL_SEED_OFFSET, rank=0,
                                  world_size=1, same_shape_per_batch=config.same_shape_per_batch)
    return [stream.make_batch(i) for i in range(max(1, config.n_eval_tables // size))]


@torch.no_grad()
def _evaluate(
    model: MitraModel, batches: list[dict[str, Any]], config: TrainConfig, device: torch.device,
    *, real_data: bool, checkpoint: Path | None = None,
) -> dict[str, float]:
    """Held-out prior loss (and accuracy); real-data scores of ``checkpoint``, the weights of this step."""
    model.eval()
    losses, accuracies, mses = [], [], []
    for batch in batches:
        batch = _to_device(batch, device)
        with _autocast(device, config):
            outputs = _forward(model, batch, config)
        loss, extra = compute_loss(outputs, batch, config.task)
        losses.append(float(loss))
        if "accuracy" in extra:
            accuracies.append(float(extra["accuracy"]))
        if "mse" in extra:
            mses.append(float(extra["mse"]))
    record: dict[str, float] = {"eval_prior_loss": float(np.mean(losses)) if losses else float("nan")}
    if accuracies:
        record["eval_prior_accuracy"] = float(np.mean(accuracies))
    if mses:  # the same scale for scalar and binned heads (their losses differ)
        record["eval_prior_mse"] = float(np.mean(mses))
    if real_data and checkpoint is not None:
        record.update(_real_data_metrics(checkpoint, config.task))
    model.train()
    return record


def held_out_scores(config: TrainConfig, checkpoints: list[str | Path], device: str | torch.device = "cpu",
                    world_size: int = 1) -> list[dict[str, float]]:
    """The held-out prior scores of saved checkpoints, on the held-out tables of the run ``config``
    describes, as its log's evaluation records give them (a checkpoint of a step with a record
    scores that record's ``eval_prior_*`` values): a look at a run between its evaluations.

    ``world_size`` is the run's process count (it sets the tables' batch shapes, so the tables).
    """
    device = torch.device(device)
    micro, _ = _micro_batches(config, world_size)
    batches = _held_out_batches(config, micro)
    scores = []
    for checkpoint in checkpoints:
        model = load_model(str(checkpoint)).to(device)
        if model.config.task.value.lower() != config.task:
            raise ValueError(f"{checkpoint} holds a {model.config.task.value.lower()} model; the run trains "
                             f"{config.task}")
        scores.append(_evaluate(model, batches, config, device, real_data=False))
    return scores


def _evaluations(
    model: MitraModel, averaged: WeightAverage | None, batches: list[dict[str, Any]], config: TrainConfig,
    device: torch.device, *, real_data: bool, checkpoint: Path | None = None,
) -> dict[str, float]:
    """The evaluation record of a step: the scores of the exported weights (the average when there is one).

    With an average, the held-out prior scores of the training weights follow as ``<name>_raw``
    (cheap; the real-data scores are the checkpoint's alone).
    """
    exported = model if averaged is None else averaged.model
    record = _evaluate(exported, batches, config, device, real_data=real_data, checkpoint=checkpoint)
    if averaged is not None:
        raw = _evaluate(model, batches, config, device, real_data=False)
        record.update({f"{name}_raw": value for name, value in raw.items()})
    return record


def _real_data_metrics(checkpoint: Path, task: str) -> dict[str, Any]:
    try:
        from .evaluate import quick_validation
    except ImportError:  # pragma: no cover - evaluation module missing in a trimmed install
        return {}
    try:
        metrics = quick_validation(str(checkpoint), task)
    except Exception as err:  # an evaluation problem must never kill a long run
        return {"eval_real_error": f"{type(err).__name__}: {err}"}
    return {f"eval_real_{name}": float(value) for name, value in metrics.items()}


# ---------------------------------------------------------------------------- resume / warm start
def _warm_start(model: MitraModel, config: TrainConfig) -> None:
    """Initial weights of a new run from ``config.init_from``: the same shape, or a deeper model of
    the same width, heads and head, whose layers are then copies of the source's (`layer_mapping`)."""
    source = str(config.init_from)
    if is_run_folder(source):  # a run folder: its newest checkpoint
        newest = RunFolder(source).latest_checkpoint()
        if newest is None:
            raise FileNotFoundError(f"init_from={source!r}: the run folder has no checkpoint")
        source = str(newest)
    trained = load_model(source)
    weights = trained.state_dict()
    if trained.config != model.config:
        deeper = dataclasses.replace(trained.config, n_layers=model.config.n_layers) == model.config
        if not deeper or model.config.n_layers < trained.config.n_layers:
            raise ValueError(
                f"init_from={config.init_from!r} holds a model of {_shape(trained.config)}; this run asks for "
                f"{_shape(model.config)}. A warm start needs the same shape, or more layers of the same width, "
                "heads and head (the layers are then repeated)."
            )
        mapping = layer_mapping(trained.config.n_layers, model.config.n_layers)
        weights = _repeat_layers(weights, mapping, identity=config.grow_layers == "identity")
    model.load_state_dict(weights)


def layer_mapping(source_layers: int, target_layers: int) -> list[int]:
    """The source layer of each layer of a deeper model warm-started from a shallower one.

    Each source layer is used ``target_layers / source_layers`` times in a row, in order (3 -> 6:
    0, 0, 1, 1, 2, 2); when that is not a whole number the first layers get one copy more
    (2 -> 5: 0, 0, 0, 1, 1). Target layer ``i`` copies source layer ``i * source // target``.
    """
    if not 1 <= source_layers <= target_layers:
        raise ValueError(
            f"layer_mapping needs 1 <= source_layers <= target_layers, got {source_layers}, {target_layers}"
        )
    return [index * source_layers // target_layers for index in range(target_layers)]


#: The projections that write a layer's updates into the residual stream (`mitra_sklearn.model.Layer`).
_LAYER_OUTPUTS = ("attention1.o.", "linear2.", "attention2.o.", "linear4.")


def _repeat_layers(weights: dict[str, torch.Tensor], mapping: list[int], identity: bool = False
                   ) -> dict[str, torch.Tensor]:
    """``weights`` of a shallower model as those of a deeper one: layer ``i`` is source layer ``mapping[i]``.

    With ``identity``, every copy after a source layer's first has zero output projections: its
    four residual updates are zero, so the deeper model computes the shallower one's function.
    """
    out = {name: tensor for name, tensor in weights.items() if not name.startswith("layers.")}
    for target, source in enumerate(mapping):
        prefix = f"layers.{source}."
        added = identity and target > 0 and mapping[target - 1] == source
        for name, tensor in weights.items():
            if name.startswith(prefix):
                rest = name.removeprefix(prefix)
                silent = added and rest.startswith(_LAYER_OUTPUTS)
                out[f"layers.{target}.{rest}"] = torch.zeros_like(tensor) if silent else tensor
    return out


def _shape(config: MitraConfig) -> str:
    return (f"dim {config.dim} x {config.n_layers} layers, {config.n_heads} heads, head {config.dim_output} "
            f"({config.task})")


def _restore(
    run: RunFolder, checkpoint: Path, model: MitraModel, optimizer: torch.optim.Optimizer, scheduler: Any,
    config: TrainConfig, device: torch.device,
) -> tuple[TrainingState, WeightAverage | None]:
    """Load a checkpoint's weights, weight average and training state; this run's optimiser settings win.

    The average comes back when the checkpoint has one and this run keeps averaging (None
    otherwise: the caller starts a new one from the weights when ``config.ema_decay`` is set).
    """
    saved = run.read_state(checkpoint)
    saved_config = TrainConfig.from_dict(json.loads(saved["config"]))
    saved_model = model_config(saved_config)
    if saved_model != model.config:
        raise ValueError(
            f"Cannot resume {checkpoint}: it holds a {saved_model} model, this run asks for {model.config}. "
            "Use another --out folder or the same preset."
        )
    averaged = _restore_weights(checkpoint, saved, model, config, device)
    load_optimizer_state(optimizer, saved["optimizer"], model, config, saved_config, device)
    scheduler.load_state_dict(saved["scheduler"])
    state = run.state_of(saved)
    # The restored state carries the old run's base rates and decay; this run's config wins, so a
    # changed --lr, weight decay, betas or Muon setting on resume takes effect from the next step.
    apply_run_settings(optimizer, model, config, lr_factor(state.step, config))
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return state, averaged


def _restore_weights(
    checkpoint: Path, saved: dict[str, Any], model: MitraModel, config: TrainConfig, device: torch.device,
) -> WeightAverage | None:
    """Put the checkpoint's training weights into ``model``; its weight average, if this run keeps one.

    A checkpoint saved with an average exports the average (``model.safetensors``) and keeps the
    training weights in its training state; one saved without exports the training weights.
    """
    exported = load_model(checkpoint, device=device).state_dict()
    training = saved.get("training_weights")
    model.load_state_dict(exported if training is None else training)
    if training is None or config.ema_decay is None:
        return None
    averaged = WeightAverage(model, config.ema_decay, updates=int(saved["ema_updates"]))
    averaged.model.load_state_dict(exported)
    return averaged

