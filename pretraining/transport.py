"""Move a run's newest checkpoint between machines through small files.

Some machines hand files back only in pieces (e.g. at most 16 MiB per file). ``pack`` writes the
newest checkpoint of a run (weights and, optionally, the optimizer state needed to resume) as
bfloat16 safetensors shards no larger than a given size plus a JSON manifest; ``unpack`` turns
them back into a checkpoint folder that ``python -m pretraining train --out <run>`` resumes from
and ``MitraClassifier(checkpoint=...)`` loads. Storing bfloat16 halves the size; the weights and
Adam moments lose precision below bf16's 8 bits of mantissa, so a resumed run continues from a
very close, not bit-identical, state.

    python -m pretraining pack runs/gpu-8min $OUT --max-mib 15
    python -m pretraining unpack shards/ runs/gpu-8min
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .train import _STATE_NAME, latest_checkpoint

__all__ = ["pack", "unpack", "pack_campaign", "unpack_campaign", "campaign_step"]

_MANIFEST = "manifest.json"


def pack(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, max_mib: float = 15.0,
         with_state: bool = True) -> list[Path]:
    """Write the newest checkpoint of ``run_dir`` as bf16 shards of at most ``max_mib`` MiB."""
    checkpoint = latest_checkpoint(Path(run_dir))
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint to pack")
    tensors = {f"model/{k}": v for k, v in load_file(str(checkpoint / "model.safetensors")).items()}
    meta: dict[str, Any] = {"checkpoint": checkpoint.name,
                            "config_json": (checkpoint / "config.json").read_text(encoding="utf-8")}
    if with_state:
        state = torch.load(checkpoint / _STATE_NAME, map_location="cpu", weights_only=True)
        optimizer = state.pop("optimizer")
        for index, entry in optimizer["state"].items():
            for key, value in entry.items():
                tensors[f"optim/{index}/{key}"] = value
        meta["optimizer_param_groups"] = optimizer["param_groups"]
        meta["train_state"] = {k: v for k, v in state.items() if not isinstance(v, (torch.Tensor, list))}
    dtypes = {name: str(t.dtype).removeprefix("torch.") for name, t in tensors.items()}
    max_bytes = int(max_mib * 2**20)
    limit = max_bytes - min(64 * 1024, max_bytes // 10)  # room for the safetensors header
    if limit < 1024:
        raise ValueError(f"max_mib={max_mib} is too small for a shard")
    pieces = _split(tensors, limit)
    shards, current, size = [], {}, 0
    for name, tensor in pieces:
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += nbytes
    if current:
        shards.append(current)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, shard in enumerate(shards, start=1):
        path = out / f"pack-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path))
        written.append(path)
    manifest = {**meta, "dtypes": dtypes, "shards": [p.name for p in written]}
    (out / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return [*written, out / _MANIFEST]


def unpack(pack_dir: str | os.PathLike, run_dir: str | os.PathLike) -> Path:
    """Rebuild the packed checkpoint inside ``run_dir`` and point ``latest`` at it."""
    pack_dir, run_dir = Path(pack_dir), Path(run_dir)
    manifest = json.loads((pack_dir / _MANIFEST).read_text(encoding="utf-8"))
    pieces: dict[str, torch.Tensor] = {}
    for shard in manifest["shards"]:
        pieces.update(load_file(str(pack_dir / shard)))
    tensors = _join(pieces, manifest["dtypes"])
    folder = run_dir / "checkpoints" / manifest["checkpoint"]
    tmp = folder.with_name(f".tmp-unpack-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = {k.removeprefix("model/"): v.contiguous() for k, v in tensors.items() if k.startswith("model/")}
    save_file(model, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(manifest["config_json"], encoding="utf-8")
    if "train_state" in manifest:
        state: dict[int, dict[str, torch.Tensor]] = {}
        for name, tensor in tensors.items():
            if name.startswith("optim/"):
                _, index, key = name.split("/", 2)
                state.setdefault(int(index), {})[key] = tensor
        train_state = dict(manifest["train_state"])
        train_state.update({"optimizer": {"state": state, "param_groups": manifest["optimizer_param_groups"]},
                            "torch_rng": torch.get_rng_state(), "cuda_rng": []})
        torch.save(train_state, tmp / _STATE_NAME)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    link = run_dir / ".latest-tmp"
    link.unlink(missing_ok=True)
    os.symlink(Path("checkpoints") / folder.name, link)
    os.replace(link, run_dir / "latest")
    return folder


def _split(tensors: dict[str, torch.Tensor], limit: int) -> list[tuple[str, torch.Tensor]]:
    """bf16 copies of the float tensors, cut along dim 0 where one alone exceeds ``limit`` bytes."""
    pieces = []
    for name, tensor in tensors.items():
        tensor = tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor
        flat = tensor.reshape(-1).contiguous()
        per_part = max(1, limit // flat.element_size())
        if flat.numel() <= per_part:
            pieces.append((f"{name}::full::{'x'.join(map(str, tensor.shape)) or 'scalar'}", flat))
            continue
        for part, start in enumerate(range(0, flat.numel(), per_part)):
            shape = "x".join(map(str, tensor.shape))
            pieces.append((f"{name}::{part}::{shape}", flat[start : start + per_part].clone()))
    return pieces


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


# ---------------------------------------------------------------------------- campaigns
#: Inside a campaign folder: the packed newest state, the run's log and its config.
CAMPAIGN_STATE = "state"
CAMPAIGN_LOG = "log.jsonl"
CAMPAIGN_CONFIG = "train_config.json"


def pack_campaign(run_dir: str | os.PathLike, campaign_dir: str | os.PathLike, *, max_mib: float = 15.0) -> Path:
    """Replace the campaign's packed state with the run's newest checkpoint (plus log and config).

    The new pack is written beside the old one and swapped in by renames, so a kill leaves either
    the old or the new state (``unpack_campaign`` also reads a state left half-swapped).
    """
    run_dir, campaign = Path(run_dir), Path(campaign_dir)
    campaign.mkdir(parents=True, exist_ok=True)
    fresh, old = campaign / ".state-new", campaign / ".state-old"
    shutil.rmtree(fresh, ignore_errors=True)
    pack(run_dir, fresh, max_mib=max_mib, with_state=True)
    shutil.rmtree(old, ignore_errors=True)
    if (campaign / CAMPAIGN_STATE).exists():
        os.replace(campaign / CAMPAIGN_STATE, old)
    os.replace(fresh, campaign / CAMPAIGN_STATE)
    shutil.rmtree(old, ignore_errors=True)
    for name in (CAMPAIGN_LOG, CAMPAIGN_CONFIG):
        if (run_dir / name).is_file():
            tmp = campaign / f".{name}.tmp"
            shutil.copyfile(run_dir / name, tmp)
            os.replace(tmp, campaign / name)
    return campaign / CAMPAIGN_STATE


def campaign_step(campaign_dir: str | os.PathLike) -> int | None:
    """Training step of the campaign's packed state, or None when it holds none."""
    state = _campaign_state(Path(campaign_dir))
    if state is None:
        return None
    manifest = json.loads((state / _MANIFEST).read_text(encoding="utf-8"))
    return int(manifest.get("train_state", {}).get("step", 0))


def unpack_campaign(campaign_dir: str | os.PathLike, run_dir: str | os.PathLike) -> Path | None:
    """Bring the campaign's state into ``run_dir`` unless the run already holds a newer step.

    Returns the checkpoint folder training will resume from (None: nothing to resume).
    """
    campaign, run_dir = Path(campaign_dir), Path(run_dir)
    state = _campaign_state(campaign)
    current = latest_checkpoint(run_dir)
    if state is None:
        return current
    packed_step = campaign_step(campaign)
    current_step = int(current.name.removeprefix("step-")) if current is not None else -1
    if current is not None and current_step >= packed_step:
        return current
    folder = unpack(state, run_dir)
    if (campaign / CAMPAIGN_LOG).is_file():
        shutil.copyfile(campaign / CAMPAIGN_LOG, run_dir / CAMPAIGN_LOG)
    return folder


def _campaign_state(campaign: Path) -> Path | None:
    for name in (CAMPAIGN_STATE, ".state-old"):  # ".state-old": a kill between the two renames
        if (campaign / name / _MANIFEST).is_file():
            return campaign / name
    return None
