"""Running a Mitra model: devices, precision, query chunks and the support-set cache."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .exceptions import MitraOutOfMemoryError
from .model import MitraModel, SupportCache

__all__ = ["resolve_device", "resolve_precision", "InferenceRunner", "SUPPORT_CACHE_MODES"]

SUPPORT_CACHE_MODES = ("predict", "fit", "off")
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


@dataclass
class InferenceRunner:
    """Predicts query rows from a support set with one model on one device.

    Parameters
    ----------
    model : MitraModel
        In eval mode, on ``device``, in float64 when ``dtype`` is float64.
    device : torch.device
    dtype : torch.dtype
        Autocast dtype (bf16/fp16) or the model's own dtype (float32/float64).
    batch_size : int
        Query rows per forward pass.
    support_cache : {'predict', 'fit', 'off'}
        'off' reruns the support rows with every chunk of queries (the official behaviour);
        otherwise the support set is encoded once and every chunk reuses it.
    """

    model: MitraModel
    device: torch.device
    dtype: torch.dtype
    batch_size: int
    support_cache: str = "predict"

    @property
    def _input_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == torch.float64 else torch.float32

    def _tensor(self, array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(array, dtype=dtype or self._input_dtype).unsqueeze(0).to(self.device)

    def _labels(self, y: np.ndarray) -> torch.Tensor:
        dtype = torch.long if self.model.config.uses_class_label_embedding else self._input_dtype
        return self._tensor(y, dtype)

    def encode(self, x_support: np.ndarray, y_support: np.ndarray) -> SupportCache:
        """Encode a support set once (the work shared by every query chunk)."""
        try:
            with torch.inference_mode(), autocast_context(self.device, self.dtype):
                return self.model.encode_support(self._tensor(x_support), self._labels(y_support))
        except torch.OutOfMemoryError as err:
            _free_memory(self.device)
            raise MitraOutOfMemoryError(
                f"Out of memory on {self.device} encoding {len(x_support)} support rows x {x_support.shape[1]} "
                "features. Lower max_support_rows, use support_cache='off' (less memory, slower), "
                "inference_precision='bfloat16', or a device with more memory."
            ) from err

    def predict(
        self,
        x_support: np.ndarray,
        y_support: np.ndarray,
        x_query: np.ndarray,
        cache: SupportCache | None = None,
        progress: object | None = None,
    ) -> np.ndarray:
        """Model outputs for every query row, as float32 NumPy (rows first).

        ``progress`` is an optional tqdm bar advanced by the number of query rows done.
        """
        if cache is None and self.support_cache != "off":
            cache = self.encode(x_support, y_support)
        outputs = []
        for chunk in self._chunks(x_query):
            outputs.append(self._predict_chunk(x_support, y_support, chunk, cache))
            if progress is not None:
                progress.update(len(chunk))
        return np.concatenate(outputs, axis=0) if outputs else np.zeros((0,), dtype=np.float32)

    def _chunks(self, x_query: np.ndarray) -> Iterator[np.ndarray]:
        for start in range(0, len(x_query), self.batch_size):
            yield x_query[start : start + self.batch_size]

    def _predict_chunk(
        self, x_support: np.ndarray, y_support: np.ndarray, chunk: np.ndarray, cache: SupportCache | None
    ) -> np.ndarray:
        try:
            return self._forward(x_support, y_support, chunk, cache)
        except torch.OutOfMemoryError as err:
            _free_memory(self.device)
            if len(chunk) <= 1:
                raise MitraOutOfMemoryError(
                    f"Out of memory on {self.device} predicting a single query row against {len(x_support)} support "
                    "rows. Lower max_support_rows, use support_cache='off', a smaller inference_precision, or a "
                    "device with more memory."
                ) from err
            half = (len(chunk) + 1) // 2  # retry this chunk in two halves
            return np.concatenate(
                [self._predict_chunk(x_support, y_support, part, cache) for part in (chunk[:half], chunk[half:])]
            )

    def _forward(
        self, x_support: np.ndarray, y_support: np.ndarray, chunk: np.ndarray, cache: SupportCache | None
    ) -> np.ndarray:
        with torch.inference_mode(), autocast_context(self.device, self.dtype):
            x_query = self._tensor(chunk)
            if cache is not None:
                out = self.model.predict_query(cache, x_query)
            else:
                out = self.model(self._tensor(x_support), self._labels(y_support), x_query)
        return out[0].to(self._input_dtype).cpu().numpy()


def _free_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
