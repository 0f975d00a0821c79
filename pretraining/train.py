"""Pretraining loop: synthetic tables in, Mitra checkpoints (official format) out.

One process on the CPU or one GPU, or ``torchrun`` DDP across GPUs and nodes (NCCL on GPU,
gloo on CPU); each rank draws different tables (see `pretraining.data`). Read top to bottom:
set-up, data, model, optimiser, resume, loop (forward, loss, step, log, evaluate, save).

Checkpoints go to ``<out>/checkpoints/step-XXXXXXX/``: ``config.json`` + ``model.safetensors``
(loadable by ``MitraClassifier(checkpoint=folder)``) and ``train_state.pt`` (optimiser, schedule,
step, RNG). Each is written to a temporary folder that is renamed into place, so a kill at any
moment leaves only complete checkpoints; ``<out>/latest`` points at the newest one. A restarted
run resumes from it and repeats at most the steps since that save: the data of step ``k`` depends
only on (seed, rank, k), so a resumed run reproduces the uninterrupted one exactly on the CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mitra_sklearn._tasks import used_class_logits
from mitra_sklearn.devices import autocast_context, resolve_precision
from mitra_sklearn.finetune import parameter_groups
from mitra_sklearn.hub import load_model, save_model
from mitra_sklearn.model import MitraConfig, MitraModel

from .config import TrainConfig
from .data import IGNORE_INDEX, SyntheticTableStream

__all__ = ["train", "TrainResult", "latest_checkpoint", "lr_factor", "compute_loss", "count_parameters"]

_STATE_NAME = "train_state.pt"
_EVAL_SEED_OFFSET = 1_000_003  # held-out prior tables never overlap the training stream


@dataclass
class TrainResult:
    """What a finished (or stopped) run leaves behind."""

    step: int
    checkpoint: Path | None
    log_path: Path
    stopped_early: bool


# ---------------------------------------------------------------------------- small helpers
def count_parameters(config: TrainConfig) -> int:
    with torch.device("meta"):
        model = MitraModel(_model_config(config))
    return sum(p.numel() for p in model.parameters())


def _model_config(config: TrainConfig) -> MitraConfig:
    return MitraConfig(dim=config.dim, dim_output=config.head_size, n_layers=config.n_layers,
                       n_heads=config.n_heads, task=config.task.upper())


def lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up to the peak, then cosine decay to ``min_lr_ratio`` of it at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine


def compute_loss(outputs: torch.Tensor, batch: dict[str, Any], task: str) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy over each table's classes, or MSE on scaled targets, over real query rows.

    Logits of label ids a table does not use are masked out, which is the softmax the
    estimators use at prediction time (`mitra_sklearn._tasks.used_class_logits`).
    """
    y_query = batch["y_query"]
    valid = ~batch["padding_obs_query"]
    if task == "classification":
        used = batch["classes_used"]
        if used.shape[-1] < outputs.shape[-1]:  # a head wider than the prior's label ids
            used = F.pad(used, (0, outputs.shape[-1] - used.shape[-1]), value=False)
        logits = used_class_logits(outputs, used[:, None, :])
        targets = y_query.masked_fill(~valid, IGNORE_INDEX)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        with torch.no_grad():
            correct = ((logits.argmax(-1) == y_query) & valid).sum()
            accuracy = correct.float() / valid.sum().clamp(min=1)
        return loss, {"accuracy": accuracy}
    errors = (outputs.float() - y_query.float()) ** 2
    loss = (errors * valid).sum() / valid.sum().clamp(min=1)
    return loss, {}


def _forward(model: nn.Module, batch: dict[str, Any], config: TrainConfig) -> torch.Tensor:
    masks = {}
    if not config.same_shape_per_batch:  # padding exists only when shapes differ inside a batch
        masks = {k: batch[k] for k in ("padding_features", "padding_obs_support", "padding_obs_query")}
    return model(batch["x_support"], batch["y_support"], batch["x_query"], **masks)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _autocast(device: torch.device, config: TrainConfig) -> contextlib.AbstractContextManager:
    # The estimators' rule: 'auto' is bf16 autocast on CUDA and float32 elsewhere. bf16 on a CPU
    # with AMX was measured slower than float32 for the cpu-v2 run (docs/pretraining.md).
    return autocast_context(device, resolve_precision(config.precision, device))


def latest_checkpoint(out_dir: Path) -> Path | None:
    """Newest complete checkpoint folder of a run (folders appear only once complete)."""
    folder = Path(out_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    steps = sorted(p for p in folder.iterdir() if p.name.startswith("step-") and (p / _STATE_NAME).is_file())
    return steps[-1] if steps else None


def _worker_init(_: int) -> None:
    # Generators are single-threaded numpy/sklearn code; extra BLAS threads only fight the trainer.
    torch.set_num_threads(1)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)


# ---------------------------------------------------------------------------- distributed set-up
@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


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
        The run; stored next to every checkpoint. A resumed run must use the same config.
    out_dir : path
        Run folder: checkpoints, ``latest`` link, ``log.jsonl``, ``train_config.json``.
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
    out_dir = Path(out_dir)
    dist, device = _init_distributed(device)
    torch.manual_seed(config.seed + dist.rank)
    micro = config.micro_batch_size or max(1, config.batch_size // dist.world_size)
    accumulation = max(1, config.batch_size // (micro * dist.world_size))
    if micro * dist.world_size * accumulation != config.batch_size:
        raise ValueError(
            f"batch_size {config.batch_size} is not micro_batch_size {micro} x world size {dist.world_size} x "
            "an integer number of accumulation steps."
        )

    model = MitraModel(_model_config(config)).to(device)
    model.gradient_checkpointing = config.gradient_checkpointing
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.weight_decay), lr=config.lr, betas=(config.beta1, config.beta2),
        fused=device.type == "cuda",
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))

    start_step, tables_seen, train_seconds = 0, 0, 0.0
    checkpoint = latest_checkpoint(out_dir) if resume else None
    if checkpoint is not None:
        start_step, tables_seen, train_seconds = _load_state(checkpoint, model, optimizer, scheduler, config, device)
    elif config.init_from is not None:
        _warm_start(model, config)
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))

    forward_model: nn.Module = model
    if config.compile:
        forward_model = torch.compile(model)
    if dist.world_size > 1:
        forward_model = nn.parallel.DistributedDataParallel(
            forward_model, device_ids=[device.index] if device.type == "cuda" else None
        )

    prior_config = config.priors
    stream = SyntheticTableStream(
        config.task, micro, prior_config, seed=config.seed, rank=dist.rank,
        world_size=dist.world_size, same_shape_per_batch=config.same_shape_per_batch,
        start_batch=start_step * accumulation,
    )
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=config.num_workers, pin_memory=device.type == "cuda",
        worker_init_fn=_worker_init if config.num_workers else None,
        prefetch_factor=4 if config.num_workers else None, persistent_workers=config.num_workers > 0,
    )
    eval_batches = _held_out_batches(config, prior_config, micro) if dist.is_main else []

    log_path = out_dir / "log.jsonl"
    bar = _progress_bar(config.steps, start_step, progress and dist.is_main)
    last_save, window_start, window_tables, window_data_wait = time.time(), time.time(), 0, 0.0
    run_start = time.time()
    step = start_step
    last_checkpoint = checkpoint
    stopped_early = False
    batches = iter(loader)
    final_step = min(config.steps, stop_after) if stop_after is not None else config.steps
    if dist.is_main and step == 0:
        _log(log_path, {"step": 0, **_evaluate(model, eval_batches, config, device, out_dir, real_data=False)})

    while step < final_step:
        forward_model.train()
        step_losses = []
        for micro_step in range(accumulation):
            wait_start = time.time()
            batch = _to_device(next(batches), device)
            window_data_wait += time.time() - wait_start
            sync = contextlib.nullcontext()
            if dist.world_size > 1 and micro_step < accumulation - 1:
                sync = forward_model.no_sync()
            with sync:
                with _autocast(device, config):
                    outputs = _forward(forward_model, batch, config)
                loss, _ = compute_loss(outputs, batch, config.task)
                (loss / accumulation).backward()
            step_losses.append(loss.detach())
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tables_seen += config.batch_size
        window_tables += config.batch_size

        if step % config.log_every == 0 or step == final_step:
            mean_loss = torch.stack(step_losses).mean()
            if dist.world_size > 1:
                torch.distributed.all_reduce(mean_loss)
                mean_loss /= dist.world_size
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            now = time.time()
            elapsed = now - window_start
            record = {
                "step": step, "loss": float(mean_loss), "lr": scheduler.get_last_lr()[0],
                "grad_norm": float(grad_norm), "tables_per_s": window_tables / max(elapsed, 1e-9),
                "data_wait_fraction": window_data_wait / max(elapsed, 1e-9), "tables_seen": tables_seen,
                "train_seconds": train_seconds + (now - run_start),
            }
            if dist.is_main:
                _log(log_path, record)
                if bar is not None:
                    bar.set_postfix(loss=f"{record['loss']:.4f}", tables_s=f"{record['tables_per_s']:.1f}")
            window_start, window_tables, window_data_wait = now, 0, 0.0
        if bar is not None:
            bar.update(1)

        out_of_time = config.time_limit is not None and time.time() - run_start >= config.time_limit
        if dist.world_size > 1:  # every rank must agree to stop, or the collectives hang
            flag = torch.tensor(float(out_of_time), device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        evaluate_now = step % config.eval_every == 0 or step == final_step or out_of_time
        # An evaluation step is also a save step, so every evaluation reads its own step's weights.
        due = step % config.save_every == 0 or time.time() - last_save >= config.save_every_seconds
        if due or evaluate_now:
            if dist.is_main:
                last_checkpoint = _save(out_dir, model, optimizer, scheduler, config, step, tables_seen,
                                        train_seconds + time.time() - run_start)
                if campaign is not None:
                    from .transport import pack_campaign

                    pack_campaign(out_dir, campaign)
            last_save = time.time()
        if dist.is_main and evaluate_now:
            _log(log_path, {"step": step, **_evaluate(model, eval_batches, config, device, out_dir,
                                                      real_data=config.real_data_eval, checkpoint=last_checkpoint)})
        if out_of_time:
            stopped_early = step < final_step
            break
    if bar is not None:
        bar.close()
    if dist.world_size > 1:
        torch.distributed.barrier()
    return TrainResult(step=step, checkpoint=last_checkpoint, log_path=log_path, stopped_early=stopped_early)


# ---------------------------------------------------------------------------- evaluation
def _held_out_batches(config: TrainConfig, prior_config: Any, micro: int) -> list[dict[str, Any]]:
    """A fixed sample of prior tables (same mixture, another seed), generated once per run."""
    size = min(micro, config.n_eval_tables)
    stream = SyntheticTableStream(config.task, size, prior_config,
                                  seed=config.seed + _EVAL_SEED_OFFSET, rank=0, world_size=1,
                                  same_shape_per_batch=config.same_shape_per_batch)
    return [stream.make_batch(i) for i in range(max(1, config.n_eval_tables // size))]


@torch.no_grad()
def _evaluate(
    model: MitraModel, batches: list[dict[str, Any]], config: TrainConfig, device: torch.device, out_dir: Path,
    *, real_data: bool, checkpoint: Path | None = None,
) -> dict[str, float]:
    model.eval()
    losses, accuracies = [], []
    for batch in batches:
        batch = _to_device(batch, device)
        with _autocast(device, config):
            outputs = _forward(model, batch, config)
        loss, extra = compute_loss(outputs, batch, config.task)
        losses.append(float(loss))
        if "accuracy" in extra:
            accuracies.append(float(extra["accuracy"]))
    record: dict[str, float] = {"eval_prior_loss": float(np.mean(losses)) if losses else float("nan")}
    if accuracies:
        record["eval_prior_accuracy"] = float(np.mean(accuracies))
    if real_data and checkpoint is not None:
        record.update(_real_data_metrics(checkpoint, config.task))
    model.train()
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


# ---------------------------------------------------------------------------- checkpoints
def _save(
    out_dir: Path, model: MitraModel, optimizer: torch.optim.Optimizer, scheduler: Any, config: TrainConfig,
    step: int, tables_seen: int, train_seconds: float,
) -> Path:
    """Write a complete checkpoint folder atomically and point ``latest`` at it."""
    folder = out_dir / "checkpoints"
    final = folder / f"step-{step:07d}"
    if (final / _STATE_NAME).is_file():
        return final
    tmp = folder / f".tmp-step-{step:07d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    state = {
        "step": step,
        "tables_seen": tables_seen,
        "train_seconds": train_seconds,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "config": json.dumps(config.to_dict()),
    }
    torch.save(state, tmp / _STATE_NAME)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    link_tmp = out_dir / ".latest-tmp"
    with contextlib.suppress(FileNotFoundError):
        link_tmp.unlink()
    os.symlink(Path("checkpoints") / final.name, link_tmp)
    os.replace(link_tmp, out_dir / "latest")
    old = sorted(p for p in folder.iterdir() if p.name.startswith("step-"))[: -config.keep_checkpoints]
    for stale in old:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _warm_start(model: MitraModel, config: TrainConfig) -> None:
    """Initial weights of a new run from ``config.init_from`` (same model shape required)."""
    source = Path(str(config.init_from))
    if (source / "checkpoints").is_dir():  # a run folder: its newest checkpoint
        newest = latest_checkpoint(source)
        if newest is None:
            raise FileNotFoundError(f"init_from={config.init_from!r}: the run folder has no checkpoint")
        source = newest
    trained = load_model(str(source))
    if trained.config != model.config:
        raise ValueError(
            f"init_from={config.init_from!r} holds a {trained.config} model; this run asks for {model.config}."
        )
    model.load_state_dict(trained.state_dict())


def _load_state(
    checkpoint: Path, model: MitraModel, optimizer: torch.optim.Optimizer, scheduler: Any, config: TrainConfig,
    device: torch.device,
) -> tuple[int, int, float]:
    from safetensors.torch import load_file

    # Our own training state: tensors and plain containers only, so weights_only loading works.
    state = torch.load(checkpoint / _STATE_NAME, map_location="cpu", weights_only=True)
    saved = TrainConfig.from_dict(json.loads(state["config"]))
    if _model_config(saved) != _model_config(config):
        raise ValueError(
            f"Cannot resume {checkpoint}: it holds a {_model_config(saved)} model, this run asks for "
            f"{_model_config(config)}. Use another --out folder or the same preset."
        )
    model.load_state_dict(load_file(str(checkpoint / "model.safetensors"), device=str(device)))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    # The restored state carries the old run's base rates and decay; this run's config wins, so a
    # changed --lr, weight decay or betas on resume takes effect from the next step.
    scheduler.base_lrs = [config.lr for _ in optimizer.param_groups]
    factor = lr_factor(int(state["step"]), config)
    for group, fresh in zip(optimizer.param_groups, parameter_groups(model, config.weight_decay)):
        group.update(initial_lr=config.lr, lr=config.lr * factor, weight_decay=fresh["weight_decay"],
                     betas=(config.beta1, config.beta2))
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"]), int(state["tables_seen"]), float(state["train_seconds"])


def _log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({k: (float(v) if isinstance(v, (np.floating, torch.Tensor)) else v)
                                 for k, v in record.items()}) + "\n")


def _progress_bar(total: int, start: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="pretraining", unit="step")
