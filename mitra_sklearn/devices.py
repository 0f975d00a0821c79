"""Devices, CPU threads and numeric precision: where and in which dtype a model runs, autocast.

Public so that ``pretraining`` trains with the same rules the estimators predict with.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = [
    "resolve_device",
    "resolve_devices",
    "check_device_parameter",
    "member_devices",
    "cpu_bf16_kind",
    "resolve_precision",
    "autocast_context",
    "available_cpus",
    "resolve_threads",
    "torch_threads",
]

_CPUINFO = "/proc/cpuinfo"
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


def check_device_parameter(device: object) -> str | torch.device | list[torch.device]:
    """Validate the estimators' ``device`` parameter: ``"auto"``, one device, or a list of devices.

    Returns ``"auto"``, a ``torch.device``, or (for a list or tuple) a list of ``torch.device``.
    Nothing is checked for availability here (`resolve_devices` does that).

    Raises
    ------
    ValueError
        For a string torch cannot parse, an empty list, or a list holding ``"auto"`` or
        something other than a device (the message names the entry).
    """
    if isinstance(device, (list, tuple)):
        if len(device) == 0:
            raise ValueError("device=[] names no device: give one device ('cpu', 'cuda:0') or a list of them.")
        parsed = []
        for position, entry in enumerate(device):
            if isinstance(entry, str) and entry == "auto":
                raise ValueError(
                    f"device[{position}] is 'auto': a device list names its devices ('cuda:0', 'cuda:1', 'cpu'); "
                    "use device='auto' alone for the automatic choice."
                )
            if not isinstance(entry, (str, torch.device)):
                raise ValueError(
                    f"device[{position}] must be a device name or a torch.device, got {type(entry).__name__} {entry!r}."
                )
            parsed.append(_parse_one(entry, f"device[{position}]"))
        return parsed
    if isinstance(device, str) and device == "auto":
        return device
    return _parse_one(device, "device")


def _parse_one(device: str | torch.device, name: str) -> torch.device:
    if isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', a torch.device or a list of devices, "
            f"got {device!r}."
        ) from err


def resolve_devices(device: object, *, fall_back: bool = False) -> list[torch.device]:
    """The ``device`` parameter (one device, ``"auto"`` or a list) as usable devices, in order.

    Each entry is resolved as `resolve_device` does (``fall_back`` as there). A list keeps its
    order and its repeats: ensemble members go round-robin over it (`member_devices`), so
    naming a device twice gives it twice the members.
    """
    parsed = check_device_parameter(device)
    entries = parsed if isinstance(parsed, list) else [parsed]
    return [resolve_device(entry, fall_back=fall_back) for entry in entries]


def member_devices(n_members: int, devices: list[torch.device]) -> list[torch.device]:
    """The device of each of ``n_members`` ensemble members: round-robin over ``devices``."""
    return [devices[index % len(devices)] for index in range(n_members)]


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_precision(precision: str, device: torch.device, *, inference: bool = False) -> torch.dtype:
    """The dtype of a precision setting (``inference_precision``, pretraining's ``precision``) on ``device``.

    ``"auto"``: bfloat16 autocast on CUDA cards that support it and on CPUs with native bf16
    hardware (AMX or AVX512-BF16, `cpu_bf16_kind`), float32 elsewhere (MPS, and CPUs without
    it, where bf16 is emulated and several times slower than float32). The CPU choice is
    measured (docs/benchmarks.md, "bf16 on the CPU"): faster than float32 on an AVX512-BF16 CPU,
    with class probabilities within 0.01 and regression predictions within 0.03 standard
    deviations of float32's. That CPU rule is for prediction (``inference=True``, the
    estimators and their fine-tuning). Training on a CPU (pretraining, ``inference=False``) takes
    bf16 autocast only with AMX, where it was measured 1.18-1.27x faster than float32 with the
    attention kept in float32 (`mitra_sklearn.model`; docs/pretraining.md); with AVX512-BF16
    alone that is unmeasured, so float32.
    """
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        kind = cpu_bf16_kind() if device.type == "cpu" else None
        if kind == "AMX" or (inference and kind is not None):
            return torch.bfloat16
        return torch.float32
    if precision not in _PRECISIONS:
        raise ValueError(f"inference_precision must be 'auto' or one of {sorted(_PRECISIONS)}, got {precision!r}.")
    dtype = _PRECISIONS[precision]
    if dtype == torch.float64 and device.type == "mps":
        raise ValueError("float64 is not supported on MPS; use inference_precision='float32'.")
    return dtype


def cpu_bf16_kind() -> str | None:
    """The CPU's native bfloat16 hardware: ``"AMX"``, ``"AVX512-BF16"``, or None (none, or unknown).

    Read from the CPU flags in ``/proc/cpuinfo`` (``amx_bf16``, ``avx512_bf16``); other
    systems report None. Without such hardware bf16 autocast is emulated and slower than float32.
    """
    return _cpu_bf16_kind()


@functools.lru_cache(maxsize=1)
def _cpu_bf16_kind() -> str | None:
    try:
        with open(_CPUINFO) as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return None
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX512-BF16" if "avx512_bf16" in flags else None


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
