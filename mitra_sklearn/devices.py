"""Devices, CPU threads and numeric precision: where and in which dtype a model runs, autocast.

Public so that ``pretraining`` trains with the same rules the estimators predict with.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = [
    "resolve_device",
    "resolve_precision",
    "autocast_context",
    "available_cpus",
    "resolve_threads",
    "torch_threads",
]

_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


def resolve_device(device: str | torch.device, *, fall_back: bool = False) -> torch.device:
    """Turn the ``device`` parameter into a usable ``torch.device``.

    ``"auto"`` picks CUDA, then MPS, then the CPU. An explicit device that is not available
    raises a ``ValueError``, or, with ``fall_back=True`` (an estimator unpickled on another
    machine), warns and uses the CPU.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    resolved = torch.device(device)
    available = (
        resolved.type == "cpu"
        or (resolved.type == "cuda" and torch.cuda.is_available()
            and (resolved.index is None or resolved.index < torch.cuda.device_count()))
        or (resolved.type == "mps" and _mps_available())
    )
    if available:
        return resolved
    if fall_back:
        warnings.warn(
            f"Device {resolved} is not available on this machine; predicting on the CPU instead. Set "
            "device='cpu' (or 'auto') to silence this warning.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    raise ValueError(f"Device {resolved} is not available here; use device='auto' or 'cpu'.")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``"auto"``: bfloat16 autocast on CUDA (when supported), float32 elsewhere.

    On CPUs without bf16 hardware, bf16 autocast is several times slower than float32, so
    ``"auto"`` never picks it there.
    """
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if precision not in _PRECISIONS:
        raise ValueError(f"inference_precision must be 'auto' or one of {sorted(_PRECISIONS)}, got {precision!r}.")
    dtype = _PRECISIONS[precision]
    if dtype == torch.float64 and device.type == "mps":
        raise ValueError("float64 is not supported on MPS; use inference_precision='float32'.")
    return dtype


def autocast_context(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for bf16/fp16; plain execution (in the model's dtype) otherwise."""
    if dtype in (torch.bfloat16, torch.float16):
        return torch.autocast(device_type=device.type, dtype=dtype)
    return contextlib.nullcontext()


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota.

    ``torch`` sizes its thread pool from the machine's cores; in a container limited to fewer
    CPUs (``docker --cpus``, Kubernetes limits) that oversubscribes the CPUs it really has.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return min(count, max(1, math.ceil(quota))) if quota else count


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 CFS quota), None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def resolve_threads(n_jobs: int | None, current: int | None = None) -> int:
    """Torch threads for an ``n_jobs`` setting.

    None: torch's current setting (inside a joblib worker, the share of the cores joblib
    gives it), capped to `available_cpus`. A positive int: that many. Negative: as in joblib,
    ``-1`` is every available CPU, ``-2`` all but one, and so on.
    """
    current = torch.get_num_threads() if current is None else current
    if n_jobs is None:
        return max(1, min(current, available_cpus()))
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive number of threads or -1 for all CPUs.")
    return int(n_jobs) if n_jobs > 0 else max(1, available_cpus() + 1 + int(n_jobs))


@contextlib.contextmanager
def torch_threads(n_jobs: int | None) -> Iterator[int]:
    """Run the block with `resolve_threads` (``n_jobs``) torch CPU threads; restored after.

    ``torch.set_num_threads`` is process-wide: other threads running torch at the same time
    see the change too.
    """
    current = torch.get_num_threads()
    wanted = resolve_threads(n_jobs, current)
    if wanted != current:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if wanted != current:
            torch.set_num_threads(current)
