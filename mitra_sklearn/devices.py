"""Devices and numeric precision: which device and dtype a model runs with, and autocast.

Public so that ``pretraining`` trains with the same rules the estimators predict with.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

__all__ = ["resolve_device", "resolve_precision", "autocast_context"]

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
