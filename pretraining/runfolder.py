"""A pretraining run on disk: its folder layout, checkpoints, training state, packing, campaigns.

This module alone knows the layout of a run folder::

    <run>/
      train_config.json             the run's TrainConfig
      log.jsonl                     one JSON record per log line (loss, lr, tables/s, evaluations)
      latest -> checkpoints/step-0003000
      checkpoints/step-0002950/     a checkpoint in the official format (mitra_sklearn.checkpoint)
                                    + train_state.pt (optimizer, scheduler, step, RNG, config)
      checkpoints/step-0003000/

With a weight average (``TrainConfig.ema_decay``) a checkpoint's official files hold the average,
what evaluation and the estimators read, and ``train_state.pt`` also holds the training weights
(``training_weights``) and the average's update count (``ema_updates``), so a resume is exact.

and of a campaign folder (a run's newest state packed small, to commit to a repository)::

    <campaign>/
      train_config.json, log.jsonl  copies of the run's
      state/manifest.json           step, tables seen, scheduler, optimiser groups, config
      state/pack-*.safetensors      weights (and training weights, with an average) and the
                                    optimiser state in bfloat16 (shards of <= max_mib)

A checkpoint is written to a temporary folder that is renamed into place and ``latest`` is
replaced atomically, so a kill at any moment leaves only complete checkpoints. Every file is
written under a temporary name first (`mitra_sklearn.checkpoint.write_files_atomically`): a full
disk or a read-only folder is a `CheckpointWriteError` that says so, and leaves the newest
complete checkpoint, pack or campaign state as it was. A run holds ``<run>/.lock`` (a POSIX
lock, released by the kernel when the process ends, however it ends): a second run pointed at
the same folder refuses with `RunFolderInUseError`. ``train_state.pt``
is our own file of tensors and plain containers, read with ``torch.load(weights_only=True)``.
Packing stores bfloat16: the weights and Adam moments lose precision below bf16's 8-bit
mantissa, so a run resumed from a pack continues from a very close, not bit-identical, state.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as serialize

from mitra_sklearn.checkpoint import (
    is_checkpoint_folder,
    load_config,
    load_state_dict,
    resolve_checkpoint,
    save_checkpoint,
    save_model,
    write_files_atomically,
)
from mitra_sklearn.config import MitraConfig
from mitra_sklearn.exceptions import CheckpointWriteError
from mitra_sklearn.model import MitraModel

from .optim import WeightAverage

__all__ = [
    "RunFolder",
    "RunFolderInUseError",
    "TrainingState",
    "latest_checkpoint",
    "pack",
    "unpack",
    "pack_campaign",
    "unpack_campaign",
    "campaign_step",
    "CAMPAIGN_CONFIG",
]

STATE_NAME = "train_state.pt"
CONFIG_NAME = "train_config.json"
LOG_NAME = "log.jsonl"
CAMPAIGN_CONFIG = CONFIG_NAME
_MANIFEST = "manifest.json"
_CAMPAIGN_STATE = "state"
_CAMPAIGN_OLD_STATE = ".state-old"  # left by a kill between the two renames of a campaign save
_TRAINING = "training/"  # pack prefix of the training weights of a run with a weight average
LOCK_NAME = ".lock"
# Run folders this process holds (resolved path -> open lock file): a process may lock one twice.
_HELD_LOCKS: dict[str, Any] = {}


class RunFolderInUseError(RuntimeError):
    """Another process holds the run folder (`RunFolder.lock`)."""


@dataclass
class TrainingState:
    """Where a run stands: what the loop advances and a checkpoint restores."""

    step: int = 0
    tables_seen: int = 0
    train_seconds: float = 0.0


class RunFolder:
    """The folder of one pretraining run (see the module docstring for its layout)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def log_path(self) -> Path:
        return self.path / LOG_NAME

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        """Newest complete checkpoint folder (folders appear only once complete)."""
        if not self.checkpoints.is_dir():
            return None
        steps = sorted(p for p in self.checkpoints.iterdir()
                       if p.name.startswith("step-") and (p / STATE_NAME).is_file())
        return steps[-1] if steps else None

    def lock(self) -> None:
        """Hold this run folder until this process ends, or refuse: two runs writing one folder
        would overwrite each other's checkpoints and log.

        The lock is a POSIX record lock on ``<run>/.lock``, which names the holder (process id,
        host, since when). The kernel releases it when the process ends, even when killed, and
        it is not inherited by forked data-loader workers. Under ``torchrun`` only rank 0 locks
        (the other ranks of the same job write nothing here). A process may lock a folder it
        holds again; `unlock` lets go.

        Raises
        ------
        RunFolderInUseError
            When another process holds the folder; the message names it and what to do.
        """
        key = os.path.realpath(self.path)
        if key in _HELD_LOCKS or os.environ.get("RANK", "0") != "0":
            return
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 - held until unlock/exit
        try:
            _lock_file(handle)
        except OSError as err:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise RunFolderInUseError(_in_use_message(self.path, holder)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        _HELD_LOCKS[key] = handle

    def unlock(self) -> None:
        """Let go of a folder this process holds (`lock`); nothing when it holds none."""
        handle = _HELD_LOCKS.pop(os.path.realpath(self.path), None)
        if handle is not None:
            handle.close()  # closing the file releases the POSIX lock

    def write_config(self, config_dict: dict[str, Any]) -> None:
        write_files_atomically(self.path, [(CONFIG_NAME, json.dumps(config_dict, indent=2).encode())])

    def log(self, record: dict[str, Any]) -> None:
        """Append one record to ``log.jsonl``; a failed append (full disk) is undone, so that the log
        never ends in half a record."""
        line = json.dumps({k: (float(v) if isinstance(v, (np.floating, torch.Tensor)) else v)
                           for k, v in record.items()}) + "\n"
        with open(self.log_path, "a", encoding="utf-8") as handle:
            size = handle.tell()
            try:
                handle.write(line)
                handle.flush()
            except OSError as err:
                with contextlib.suppress(OSError):
                    handle.truncate(size)
                raise CheckpointWriteError(
                    err.errno or errno.EIO, f"Could not append to {self.log_path}: {err}. The log is unchanged.",
                ) from err

    def drop_log_after(self, step: int) -> None:
        """Remove the log records of steps after ``step``: a run killed after its newest checkpoint
        logged steps that the resumed run trains and logs again. A line that is not a whole record
        (a write cut short by an older version of this code) goes too."""
        if not self.log_path.is_file():
            return
        lines = self.log_path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = _log_lines_through(lines, step)
        if len(kept) != len(lines):
            write_files_atomically(self.path, [(LOG_NAME, "".join(kept).encode())])

    # ------------------------------------------------------------------ checkpoints
    def save(
        self, model: MitraModel, optimizer: torch.optim.Optimizer, scheduler: Any, state: TrainingState,
        config_dict: dict[str, Any], keep: int, *, averaged: WeightAverage | None = None,
    ) -> Path:
        """Write a complete checkpoint of ``state.step`` atomically, point ``latest`` at it and keep
        the newest ``keep`` checkpoints. With ``averaged`` the official files hold the average and
        the training state the training weights."""
        final = self.checkpoints / f"step-{state.step:07d}"
        if (final / STATE_NAME).is_file():
            return final
        train_state = {
            "step": state.step,
            "tables_seen": state.tables_seen,
            "train_seconds": state.train_seconds,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "config": json.dumps(config_dict),
        }
        if averaged is not None:
            train_state.update(training_weights=model.state_dict(), ema_updates=averaged.updates)
        tmp = self.checkpoints / f".tmp-step-{state.step:07d}-{os.getpid()}"
        with self._writing(f"the checkpoint of step {state.step}", tmp):
            save_model(model if averaged is None else averaged.model, tmp)
            write_files_atomically(tmp, [(STATE_NAME, _torch_bytes(train_state))])
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._point_latest_at(final)
        for stale in sorted(p for p in self.checkpoints.iterdir() if p.name.startswith("step-"))[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
        return final

    @contextlib.contextmanager
    def _writing(self, what: str, tmp: Path) -> Iterator[None]:
        """Write ``what`` through the folder ``tmp``: removed before and, on failure, after; a failure
        is a `CheckpointWriteError` that says the newest complete checkpoint is untouched."""
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            yield
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            newest = self.latest_checkpoint()
            kept = (f"its newest complete checkpoint is still {newest.name}" if newest
                    else "it has no complete checkpoint")
            raise CheckpointWriteError(
                err.errno or errno.EIO,
                f"Could not write {what} of the run in {self.path}: {err.strerror or err}. Nothing half-written was "
                f"left; {kept}, and `resume` continues from there.",
            ) from err

    @staticmethod
    def read_state(checkpoint: Path) -> dict[str, Any]:
        """The training state saved with a checkpoint (optimizer, scheduler, step, RNG, config JSON; with a
        weight average also ``training_weights`` and ``ema_updates``)."""
        return torch.load(checkpoint / STATE_NAME, map_location="cpu", weights_only=True)

    @staticmethod
    def state_of(saved: dict[str, Any]) -> TrainingState:
        return TrainingState(int(saved["step"]), int(saved["tables_seen"]), float(saved["train_seconds"]))

    def _point_latest_at(self, folder: Path) -> None:
        link_tmp = self.path / ".latest-tmp"
        with contextlib.suppress(FileNotFoundError):
            link_tmp.unlink()
        os.symlink(Path("checkpoints") / folder.name, link_tmp)
        os.replace(link_tmp, self.path / "latest")

    # ------------------------------------------------------------------ packing
    def pack(self, out_dir: str | os.PathLike, *, max_mib: float = 15.0, with_state: bool = True) -> list[Path]:
        """Write the newest checkpoint as bf16 shards of at most ``max_mib`` MiB plus a manifest."""
        checkpoint = self.latest_checkpoint()
        if checkpoint is None:
            raise FileNotFoundError(f"{self.path} has no complete checkpoint to pack")
        tensors = {f"model/{k}": v for k, v in load_state_dict(checkpoint).items()}
        config = load_config(resolve_checkpoint(checkpoint))
        meta: dict[str, Any] = {"checkpoint": checkpoint.name, "model_config": config.to_dict()}
        if with_state:
            state = self.read_state(checkpoint)
            optimizer = state.pop("optimizer")
            for index, entry in optimizer["state"].items():
                for key, value in entry.items():
                    tensors[f"optim/{index}/{key}"] = value
            tensors.update({f"{_TRAINING}{k}": v for k, v in state.pop("training_weights", {}).items()})
            meta["optimizer_param_groups"] = optimizer["param_groups"]
            meta["train_state"] = {k: v for k, v in state.items() if not isinstance(v, (torch.Tensor, list))}
        dtypes = {name: str(t.dtype).removeprefix("torch.") for name, t in tensors.items()}
        max_bytes = int(max_mib * 2**20)
        limit = max_bytes - min(64 * 1024, max_bytes // 10)  # room for the safetensors header
        if limit < 1024:
            raise ValueError(f"max_mib={max_mib} is too small for a shard")
        shards, current, size = [], {}, 0
        for name, tensor in _split(tensors, limit):
            nbytes = tensor.numel() * tensor.element_size()
            if current and size + nbytes > limit:
                shards.append(current)
                current, size = {}, 0
            current[name] = tensor
            size += nbytes
        if current:
            shards.append(current)
        names = [f"pack-{number:05d}-of-{len(shards):05d}.safetensors" for number in range(1, len(shards) + 1)]
        manifest = {**meta, "dtypes": dtypes, "shards": names}
        # One shard in memory at a time. The old manifest goes first and the new one comes last: a
        # pack cut short (full disk, kill) is never read as complete, nor an older pack's shards as
        # the new one's.
        contents = ((name, serialize(shard)) for name, shard in zip(names, shards, strict=True))
        out = Path(out_dir)
        written = write_files_atomically(out, itertools.chain(contents, [(_MANIFEST, json.dumps(manifest).encode())]),
                                         remove=[_MANIFEST])
        for stale in out.glob("pack-*-of-*.safetensors"):
            if stale.name not in names:
                stale.unlink()
        return written

    def unpack(self, pack_dir: str | os.PathLike) -> Path:
        """Rebuild a packed checkpoint inside this run folder and point ``latest`` at it."""
        pack_dir = Path(pack_dir)
        manifest = json.loads((pack_dir / _MANIFEST).read_text(encoding="utf-8"))
        pieces: dict[str, torch.Tensor] = {}
        for shard in manifest["shards"]:
            pieces.update(load_file(str(pack_dir / shard)))
        tensors = _join(pieces, manifest["dtypes"])
        folder = self.checkpoints / manifest["checkpoint"]
        tmp = folder.with_name(f".tmp-unpack-{folder.name}")
        with self._writing(f"the unpacked checkpoint {folder.name}", tmp):
            self._unpack_into(tmp, folder, manifest, tensors)
        return folder

    def _unpack_into(self, tmp: Path, folder: Path, manifest: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """`unpack`'s writing: the checkpoint in ``tmp``, renamed to ``folder``, ``latest`` at it."""
        model = _with_prefix(tensors, "model/")
        # Packs written before "model_config" existed hold the config.json text instead.
        config = manifest.get("model_config") or json.loads(manifest["config_json"])
        save_checkpoint(tmp, MitraConfig.from_dict(config), model)
        if "train_state" in manifest:
            optimizer_state: dict[int, dict[str, torch.Tensor]] = {}
            for name, tensor in tensors.items():
                if name.startswith("optim/"):
                    _, index, key = name.split("/", 2)
                    optimizer_state.setdefault(int(index), {})[key] = tensor
            train_state = dict(manifest["train_state"])
            train_state.update({
                "optimizer": {"state": optimizer_state, "param_groups": manifest["optimizer_param_groups"]},
                "torch_rng": torch.get_rng_state(), "cuda_rng": [],
            })
            training = _with_prefix(tensors, _TRAINING)
            if training:  # packed with a weight average: "model/" is the average
                train_state["training_weights"] = training
            write_files_atomically(tmp, [(STATE_NAME, _torch_bytes(train_state))])
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        self._point_latest_at(folder)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """Newest complete checkpoint folder of a run (`RunFolder.latest_checkpoint`)."""
    return RunFolder(run_dir).latest_checkpoint()


def pack(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, max_mib: float = 15.0,
         with_state: bool = True) -> list[Path]:
    """`pretraining.runfolder.RunFolder.pack` of ``run_dir``."""
    return RunFolder(run_dir).pack(out_dir, max_mib=max_mib, with_state=with_state)


def unpack(pack_dir: str | os.PathLike, run_dir: str | os.PathLike) -> Path:
    """`pretraining.runfolder.RunFolder.unpack` into ``run_dir``."""
    return RunFolder(run_dir).unpack(pack_dir)


def checkpoint_step(checkpoint: Path) -> int:
    """The step a checkpoint folder was saved at (from its ``step-XXXXXXX`` name)."""
    return int(checkpoint.name.removeprefix("step-"))


# ---------------------------------------------------------------------------- campaigns
def pack_campaign(run_dir: str | os.PathLike, campaign_dir: str | os.PathLike, *, max_mib: float = 15.0) -> Path:
    """Replace the campaign's packed state with the run's newest checkpoint (plus log and config).

    The new pack is written beside the old one and swapped in by renames, so a kill leaves either
    the old or the new state (`unpack_campaign` reads a state left half-swapped too).
    """
    run, campaign = RunFolder(run_dir), Path(campaign_dir)
    fresh, old = campaign / ".state-new", campaign / _CAMPAIGN_OLD_STATE
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        run.pack(fresh, max_mib=max_mib, with_state=True)
    except OSError as err:
        shutil.rmtree(fresh, ignore_errors=True)
        raise CheckpointWriteError(
            err.errno or errno.EIO, f"Could not pack the run {run.path} into the campaign {campaign}: "
            f"{err.strerror or err}. Nothing half-written was left; the campaign keeps its previous state.") from err
    shutil.rmtree(old, ignore_errors=True)
    if (campaign / _CAMPAIGN_STATE).exists():
        os.replace(campaign / _CAMPAIGN_STATE, old)
    os.replace(fresh, campaign / _CAMPAIGN_STATE)
    shutil.rmtree(old, ignore_errors=True)
    files = [(LOG_NAME, _merged_log(campaign / LOG_NAME, run.log_path))] if run.log_path.is_file() else []
    if run.config_path.is_file():
        files.append((run.config_path.name, run.config_path.read_bytes()))
    write_files_atomically(campaign, files)
    return campaign / _CAMPAIGN_STATE


def _merged_log(campaign_log: Path, run_log: Path) -> bytes:
    """The run's log after the campaign's records of the steps before the run's first one.

    A run folder that resumed without unpacking (it already held the campaign's step) may hold a
    shorter log than the campaign (deleted, or begun in another folder); copying it over would
    drop the campaign's history.
    """
    run_lines = run_log.read_text(encoding="utf-8").splitlines(keepends=True)
    steps = [record.get("step", 0) for line in run_lines if (record := _record(line)) is not None]
    earlier = []
    if steps and campaign_log.is_file():
        campaign_lines = campaign_log.read_text(encoding="utf-8").splitlines()
        earlier = [line + "\n" for line in _log_lines_through(campaign_lines, min(steps) - 1)]
    return "".join(earlier + run_lines).encode()


def campaign_step(campaign_dir: str | os.PathLike) -> int | None:
    """Training step of the campaign's packed state, or None when it holds none."""
    state = _campaign_state(Path(campaign_dir))
    if state is None:
        return None
    manifest = json.loads((state / _MANIFEST).read_text(encoding="utf-8"))
    return int(manifest.get("train_state", {}).get("step", 0))


def unpack_campaign(campaign_dir: str | os.PathLike, run_dir: str | os.PathLike) -> Path | None:
    """Bring the campaign's state into ``run_dir`` unless the run already holds that step or a newer one.

    Returns the checkpoint folder training will resume from (None: nothing to resume).
    """
    campaign, run = Path(campaign_dir), RunFolder(run_dir)
    run.lock()  # before anything is written: another run may be training in this folder
    state = _campaign_state(campaign)
    current = run.latest_checkpoint()
    if state is None or (current is not None and checkpoint_step(current) >= campaign_step(campaign)):
        return current
    folder = run.unpack(state)
    if (campaign / LOG_NAME).is_file():
        write_files_atomically(run.path, [(LOG_NAME, (campaign / LOG_NAME).read_bytes())])
    return folder


def _campaign_state(campaign: Path) -> Path | None:
    for name in (_CAMPAIGN_STATE, _CAMPAIGN_OLD_STATE):
        if (campaign / name / _MANIFEST).is_file():
            return campaign / name
    return None


def _lock_file(handle: Any) -> None:
    """Take the POSIX record lock of an open file without waiting (OSError EACCES/EAGAIN when held)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: run folders are not locked there
        return
    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _in_use_message(path: Path, holder: str) -> str:
    try:
        info = json.loads(holder)
        who = f"process {info['pid']} on {info['host']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        who = "another process"
    return (f"The run folder {path} is in use by another pretraining run ({who}): two runs in one folder would "
            "overwrite each other's checkpoints and log. Wait for that run to finish (or stop it), or give this "
            "run another folder (--out).")


def _torch_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` as bytes (written by `write_files_atomically`)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _log_lines_through(lines: list[str], step: int) -> list[str]:
    """The log lines that are whole records of steps up to ``step`` (steps are integers)."""
    return [line for line in lines if (record := _record(line)) is not None and record.get("step", 0) <= step]


def _record(line: str) -> dict[str, Any] | None:
    """A log line's record, or None when the line is not a whole JSON object."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


# ---------------------------------------------------------------------------- shards
def _split(tensors: dict[str, torch.Tensor], limit: int) -> list[tuple[str, torch.Tensor]]:
    """bf16 copies of the float tensors, cut along dim 0 where one alone exceeds ``limit`` bytes."""
    pieces = []
    for name, tensor in tensors.items():
        tensor = tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor
        flat = tensor.reshape(-1).contiguous()
        per_part = max(1, limit // flat.element_size())
        shape = "x".join(map(str, tensor.shape)) or "scalar"
        if flat.numel() <= per_part:
            pieces.append((f"{name}::full::{shape}", flat))
            continue
        for part, start in enumerate(range(0, flat.numel(), per_part)):
            pieces.append((f"{name}::{part}::{shape}", flat[start : start + per_part].clone()))
    return pieces


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix``, named without it."""
    return {k.removeprefix(prefix): v.contiguous() for k, v in tensors.items() if k.startswith(prefix)}


def _join(pieces: dict[str, torch.Tensor], dtypes: dict[str, str]) -> dict[str, torch.Tensor]:
    grouped: dict[str, list[tuple[int, str, torch.Tensor]]] = {}
    for key, tensor in pieces.items():
        name, part, shape = key.rsplit("::", 2)
        grouped.setdefault(name, []).append((-1 if part == "full" else int(part), shape, tensor))
    out = {}
    for name, parts in grouped.items():
        parts.sort(key=lambda item: item[0])
        flat = torch.cat([tensor for _, _, tensor in parts])
        shape_text = parts[0][1]
        shape = () if shape_text == "scalar" else tuple(int(v) for v in shape_text.split("x"))
        out[name] = flat.reshape(shape).to(getattr(torch, dtypes[name]))
    return out


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder (has a ``checkpoints`` folder), not a checkpoint folder."""
    return (Path(path) / "checkpoints").is_dir() and not is_checkpoint_folder(path)
