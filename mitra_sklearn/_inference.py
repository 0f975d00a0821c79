"""Running a Mitra model on a device: memory, query slices, support schedules, out-of-memory errors.

`InferenceRunner` predicts query rows from one support set with one model: it sizes query
slices from the free memory (`auto_query_chunk`), runs one of the three support schedules
(layer by layer with the queries, a support set encoded beforehand, or the support rows again
with every slice), and retries a slice in halves after an out-of-memory error (`_RowSlices`).
The one out-of-memory guard of the package is here too (`release_if_out_of_memory`,
`out_of_memory_as_error`), shared with fine-tuning, and the CPU cost rule (`cpu_seconds`) with
the warning it triggers before a long call (`cpu_time_warning`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import torch

from .devices import autocast_context
from .exceptions import MitraOutOfMemoryError
from .model import MitraConfig, MitraModel, SupportCache

__all__ = [
    "InferenceRunner",
    "map_on_devices",
    "SUPPORT_CACHE_MODES",
    "cpu_seconds",
    "cpu_cells_per_second",
    "cpu_time_warning",
    "SLOW_CPU_SECONDS",
    "available_memory",
    "auto_query_chunk",
    "support_cache_bytes",
    "is_out_of_memory",
    "free_memory",
    "release_if_out_of_memory",
    "out_of_memory_as_error",
]

SUPPORT_CACHE_MODES = ("predict", "fit", "off")

# The CPU cost rule behind the estimators' slow-CPU warning, measured by benchmarks/cpu_rule.py
# with a random-weight model of the official shape (dim 512, 12 layers) in float32 on 2 threads
# of an "Intel(R) Xeon(R) Processor" (KVM, AVX-512 + AMX) shared with two busy processes (load
# 3-5): seconds per ensemble member = cells x (A + B x support rows), cells = rows x (features
# + 1); fitted to 5 cases of 256-4,096 support rows, within 6 % of each (docs/checkpoints.md).
CPU_SECONDS_PER_CELL = 1.37e-3  # A: the dense layers
CPU_SECONDS_PER_CELL_AND_SUPPORT_ROW = 1.53e-7  # B: attention across rows, grows with the support set
_RULE_THREADS = 2
_OFFICIAL_DENSE = 12 * 512**2  # layers x dim^2: the dense work the rule was measured at
_OFFICIAL_ATTENTION = 12 * 512  # layers x dim: the attention work

T = TypeVar("T")


def available_memory(device: torch.device) -> int:
    """Bytes that can still be allocated on ``device`` (free GPU memory, or available RAM)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "mps" and hasattr(torch.mps, "recommended_max_memory"):  # torch >= 2.5
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX systems
        return 4 << 30


def cpu_seconds(config: MitraConfig, passes: list[tuple[int, int, int]], threads: int) -> float:
    """Rough float32 CPU time of running ``passes`` with a model of shape ``config``.

    Each pass is (support rows, query rows, features) of one ensemble member against one
    support set. The measured rule of the official shape (``CPU_SECONDS_PER_CELL``,
    ``CPU_SECONDS_PER_CELL_AND_SUPPORT_ROW``) is scaled by the model's dense work (layers x
    dim^2) and attention work (layers x dim), and by threads assuming linear scaling (not
    measured beyond 2 threads). Meant for large models: for small ones fixed overheads, which
    the rule leaves out, dominate.
    """
    dense = CPU_SECONDS_PER_CELL * config.n_layers * config.dim**2 / _OFFICIAL_DENSE
    attention = CPU_SECONDS_PER_CELL_AND_SUPPORT_ROW * config.n_layers * config.dim / _OFFICIAL_ATTENTION
    seconds = sum((s + q) * (f + 1) * (dense + attention * s) for s, q, f in passes)
    return seconds * _RULE_THREADS / max(threads, 1)


def cpu_cells_per_second(n_support: int) -> float:
    """The measured rule's float32 rate for the official shape on 2 threads, at ``n_support`` support rows."""
    return 1.0 / (CPU_SECONDS_PER_CELL + CPU_SECONDS_PER_CELL_AND_SUPPORT_ROW * n_support)


#: A call estimated to take this long on the CPU or more gets a warning, once per process.
SLOW_CPU_SECONDS = 30.0
# Models with at least this much dense work (layers x dim^2, a quarter of the official model's)
# are slow through their size; smaller ones only through large or many support sets.
_LARGE_MODEL_DENSE = _OFFICIAL_DENSE // 4
# Measured by benchmarks/cpu_rule.py: the shipped 0.67 M checkpoint against the official shape
# (1,024 x 1,000 rows x 10 features, one member: 2.67 s against 32.4 s).
_SHIPPED_CPU_SPEEDUP = 12


def cpu_time_warning(config: MitraConfig, passes: list[tuple[int, int, int]], threads: int, *, estimator: str,
                     doing: str, n_members: int, n_neighbourhoods: int | None, checkpoint: str,
                     n_parameters: int | None, shipped: str | None) -> tuple[str, str] | None:
    """What a call estimated (`cpu_seconds`) to take ``SLOW_CPU_SECONDS`` or more on the CPU says.

    Parameters
    ----------
    config : MitraConfig
        The model's shape.
    passes : list of (int, int, int)
        (support rows, query rows, features) of every pass the call runs.
    threads : int
        Torch threads of the call.
    estimator : str
        The estimator's class name.
    doing : str
        What the call does, e.g. "predicts 1,000 rows".
    n_members : int
        Ensemble members.
    n_neighbourhoods : int or None
        Neighbourhoods the call reads (``support_selection="nearest"``), None for random subsamples.
    checkpoint : str
        The checkpoint's reference.
    n_parameters : int or None
        The checkpoint's parameter count, if known.
    shipped : str or None
        The shipped checkpoint of the task (suggested as a faster one), if any.

    Returns
    -------
    (str, str) or None
        The kind of warning (its once-per-process key) and the message; None for a faster call.
    """
    seconds = cpu_seconds(config, passes, threads)
    if seconds < SLOW_CPU_SECONDS:
        return None
    if config.n_layers * config.dim**2 < _LARGE_MODEL_DENSE:  # slow only through its support sets
        return "slow support sets", _support_time_message(estimator, doing, passes, seconds, threads,
                                                          n_neighbourhoods)
    size = f"{n_parameters / 1e6:.1f} M-parameter " if n_parameters is not None else ""
    faster = (f", or the shipped small checkpoint, {estimator}(checkpoint={shipped!r}): about "
              f"{_SHIPPED_CPU_SPEEDUP}x faster on the CPU (measured for the 0.67 M-parameter v1) but less accurate, "
              "see docs/checkpoints.md") if shipped else ""
    cells = sum((s + q) * (f + 1) for s, q, f in passes)
    return "slow on the CPU", (
        f"{estimator} {doing} with the {size}checkpoint {checkpoint!r} on the CPU: "
        f"{n_members} member(s), {cells:,} cells in all (support and query rows x features), will take "
        f"{_duration(seconds)} with {threads} thread(s) (a rule measured with the official model "
        f"shape on 2 threads of an Intel Xeon, float32: about {cpu_cells_per_second(1000):.0f} cells per second "
        f"at 1,000 support rows, {cpu_cells_per_second(8192):.0f} at 8,192). For speed, use "
        f"a GPU (device='cuda'), fewer members (n_estimators) or support rows (max_support_rows), "
        f"inference_precision='bfloat16' on CPUs with native bf16{faster}. (Shown once per process.)"
    )


def _support_time_message(estimator: str, doing: str, passes: list[tuple[int, int, int]], seconds: float,
                          threads: int, n_neighbourhoods: int | None) -> str:
    """The warning of a model slow only through its support sets (large ``max_support_rows``,
    or one support pass per neighbourhood of ``support_selection="nearest"``)."""
    largest = max(s for s, _, _ in passes)
    how = (f"{len(passes)} support passes of up to {largest:,} rows ({n_neighbourhoods} neighbourhoods of "
           "support_selection='nearest' per member)" if n_neighbourhoods is not None
           else f"{len(passes)} support pass(es) of up to {largest:,} rows")
    advice = ["a smaller max_support_rows (time grows with its square)"]
    if n_neighbourhoods is not None:
        advice += ["support_selection='random' (one support pass per member instead of one per neighbourhood)",
                   "support_cache='fit' (each neighbourhood encoded once in fit; predict then costs per row what "
                   "a cached random subsample does)"]
    advice += ["fewer members (n_estimators)", "a GPU (device='cuda')"]
    return (f"{estimator} {doing} with {how}: {_duration(seconds)} on the CPU with {threads} thread(s) "
            f"(estimated by the float32 CPU rule of docs/checkpoints.md; measured times on a busy CPU were up to "
            f"1.7x longer, docs/large-tables.md). For speed: {'; '.join(advice)}. (Shown once per process.)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def _element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def auto_query_chunk(config: MitraConfig, n_support: int, n_features: int, device: torch.device,
                     dtype: torch.dtype) -> int:
    """Query rows per forward pass that fit in 40 % of the memory available now.

    Per query row and layer the estimate counts the float32 residual stream and its normalised
    copy, four projection-sized tensors and the 4x-wide MLP hidden layer in ``dtype``, and the
    attention scores against every support row in case the kernel materialises them. The
    result is between 64 and 16,384 rows, a multiple of 64.
    """
    cells = n_features + 1
    low = _element_size(dtype)
    per_row = cells * config.dim * (2 * 4 + 8 * low) + cells * config.n_heads * n_support * 4
    rows = int(0.4 * available_memory(device)) // max(per_row, 1)
    return int(min(16_384, max(64, rows // 64 * 64)))


def support_cache_bytes(config: MitraConfig, n_support: int, n_features: int, dtype: torch.dtype) -> int:
    """Memory of the cached keys and values of one support set."""
    # Keys and values are stored in the compute dtype (bf16/fp16 under autocast).
    return 2 * config.n_layers * (n_features + 1) * n_support * config.dim * _element_size(dtype)


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
    batch_size : int or 'auto'
        Query rows per forward pass; 'auto' sizes chunks from the free memory
        (`auto_query_chunk`).
    support_cache : {'predict', 'fit', 'off'}
        'off' reruns the support rows with every chunk of queries (the official behaviour).
        Otherwise the support rows run once per call: layer by layer, with every chunk of
        queries taken through a layer before the next (``MitraModel.predict_by_layer``), so
        only one layer's keys/values are held at a time. A support set encoded beforehand
        (``encode``, for 'fit') is passed to :meth:`predict` as ``cache``.
    """

    model: MitraModel
    device: torch.device
    dtype: torch.dtype
    batch_size: int | str
    support_cache: str = "predict"

    def chunk_rows(self, n_support: int, n_features: int) -> int:
        """Query rows per forward pass for a support set of this size."""
        if self.batch_size == "auto":
            return auto_query_chunk(self.model.config, n_support, n_features, self.device, self.dtype)
        return int(self.batch_size)

    def stream_rows(self, n_features: int) -> int:
        """Query rows whose residual stream (kept between layers) fits in a quarter of free memory."""
        per_row = (n_features + 1) * self.model.config.dim * _element_size(self._input_dtype)
        return int(0.25 * available_memory(self.device)) // per_row

    def caches_fit(self, support_shapes: list[tuple[int, int]]) -> bool:
        """Whether cached support sets of these (rows, features) shapes fit in half the free memory."""
        needed = sum(support_cache_bytes(self.model.config, rows, cols, self.dtype) for rows, cols in support_shapes)
        return needed <= available_memory(self.device) // 2

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
        advice = (
            f"encoding {len(x_support)} support rows x {x_support.shape[1]} features. Lower max_support_rows, use "
            "support_cache='off' (less memory, slower), inference_precision='bfloat16', or a device with more memory."
        )
        with out_of_memory_as_error(self.device, advice), torch.inference_mode(), \
                autocast_context(self.device, self.dtype):
            return self.model.encode_support(self._tensor(x_support), self._labels(y_support))

    def predict(
        self,
        x_support: np.ndarray | None,
        y_support: np.ndarray | None,
        x_query: np.ndarray,
        cache: SupportCache | None = None,
        progress: object | None = None,
        embeddings: bool = False,
    ) -> np.ndarray:
        """Model outputs for every query row, as float32 NumPy (rows first).

        ``x_support``/``y_support`` may be None when ``cache`` holds them encoded. ``progress`` is
        an optional tqdm bar advanced by the number of query rows done. With ``embeddings``, the
        rows' embeddings (rows, dim) instead of the head's outputs (`MitraModel.embed`).
        """
        if len(x_query) == 0:
            return np.zeros((0,), dtype=np.float32)
        if cache is None and self.support_cache != "off":
            return self._predict_by_layer(x_support, y_support, x_query, progress, embeddings)
        # One pass over slices of query rows: against a support set encoded beforehand, or
        # re-running the support rows with every slice (the official behaviour).
        n_support, n_features = (cache.n_support, cache.n_features) if cache is not None else x_support.shape
        mapper = _RowSlices(self.chunk_rows(n_support, n_features), self.device, len(x_query), 1, progress, n_support)
        with torch.inference_mode(), autocast_context(self.device, self.dtype):
            if cache is not None:
                predict = partial(self.model.predict_query, cache, embeddings=embeddings)
            else:  # the whole model per slice
                xs, ys = self._tensor(x_support), self._labels(y_support)
                predict = (partial(self.model.predict_by_layer, xs, ys, embeddings=True) if embeddings
                           else partial(self.model, xs, ys))
            out = mapper(predict, self._tensor(x_query))
        return out[0].to(self._input_dtype).cpu().numpy()

    def predict_groups(
        self, caches: list[SupportCache], x_query: np.ndarray, group_rows: list[int], progress: object | None = None,
        embeddings: bool = False,
    ) -> np.ndarray:
        """Model outputs for query rows whose consecutive runs of ``group_rows`` rows each read their own
        encoded support set (``caches``, same order); the same as :meth:`predict` per group, faster.

        Groups are taken together up to one chunk of rows (`chunk_rows`); a larger group, or a batch
        of groups that runs out of memory, goes through :meth:`predict` on its own.
        """
        n_features = x_query.shape[1]
        chunk = self.chunk_rows(max(cache.n_support for cache in caches), n_features)
        outputs, batch, start = [], [], 0

        def flush() -> None:
            if batch:
                outputs.append(self._predict_batch(batch, x_query, progress, embeddings))
                batch.clear()

        for cache, rows in zip(caches, group_rows, strict=True):
            if rows > chunk:
                flush()
                part = x_query[start : start + rows]
                outputs.append(self.predict(None, None, part, cache=cache, progress=progress, embeddings=embeddings))
            else:
                if sum(r for _, _, r in batch) + rows > chunk:
                    flush()
                batch.append((cache, start, rows))
            start += rows
        flush()
        return np.concatenate(outputs, axis=0)

    def _predict_batch(self, batch: list[tuple[SupportCache, int, int]], x_query: np.ndarray,
                       progress: object | None, embeddings: bool = False) -> np.ndarray:
        """One forward pass for consecutive groups (cache, first row, rows) of ``x_query``."""
        first, rows = batch[0][1], sum(r for _, _, r in batch)
        part = x_query[first : first + rows]
        try:
            with torch.inference_mode(), autocast_context(self.device, self.dtype):
                out = self.model.predict_query_groups([c for c, _, _ in batch], self._tensor(part),
                                                      [r for _, _, r in batch], embeddings=embeddings)
        except RuntimeError as err:
            if not release_if_out_of_memory(err, self.device):
                raise
            return np.concatenate([self.predict(None, None, x_query[s : s + r], cache=c, progress=progress,
                                                embeddings=embeddings) for c, s, r in batch])
        if progress is not None:
            progress.update(rows)
        return out[0].to(self._input_dtype).cpu().numpy()

    def _predict_by_layer(
        self, x_support: np.ndarray, y_support: np.ndarray, x_query: np.ndarray, progress: object | None,
        embeddings: bool = False,
    ) -> np.ndarray:
        """Support rows once per group of queries, every query slice through a layer before the next."""
        n_support, n_features = x_support.shape
        rows = self.chunk_rows(n_support, n_features)
        group = max(rows, self.stream_rows(n_features))  # usually every query row of the call
        outputs = []
        for start in range(0, len(x_query), group):
            part = x_query[start : start + group]
            mapper = _RowSlices(rows, self.device, len(part), len(self.model.layers) + 2, progress, n_support)
            advice = (  # the support pass itself: query slices retry in the mapper
                f"running {n_support} support rows x {n_features} features through the model. Lower "
                "max_support_rows or max_features, use inference_precision='bfloat16', or a device with more memory."
            )
            with out_of_memory_as_error(self.device, advice), torch.inference_mode(), \
                    autocast_context(self.device, self.dtype):
                out = self.model.predict_by_layer(
                    self._tensor(x_support), self._labels(y_support), self._tensor(part), map_rows=mapper,
                    embeddings=embeddings,
                )
            outputs.append(out[0].to(self._input_dtype).cpu().numpy())
            rows = mapper.rows  # keep a slice size that fitted
        return np.concatenate(outputs, axis=0)


def map_on_devices(fn: Callable[[int, object | None], T], devices: list[torch.device],
                   progress: object | None = None) -> list[T]:
    """``fn(index, progress)`` for every ensemble member, results in member order.

    ``devices[index]`` is member ``index``'s device. Members on different accelerators run at
    the same time, one thread per accelerator (each runs its members one after another); all
    CPU devices form one group, run in the calling thread, since they share the same cores.
    With one group nothing runs in another thread. ``progress`` (a tqdm bar or None) is handed
    to ``fn`` behind a lock when threads share it.
    """
    groups: dict[str, list[int]] = {}
    for index, device in enumerate(devices):
        groups.setdefault(_device_group(device), []).append(index)
    results: list[T | None] = [None] * len(devices)

    def run(indices: list[int], bar: object | None) -> None:
        for index in indices:
            results[index] = fn(index, bar)

    if len(groups) <= 1:
        run(list(range(len(devices))), progress)
        return results  # type: ignore[return-value]
    bar = None if progress is None else _LockedProgress(progress)
    with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="mitra-device") as pool:
        for future in [pool.submit(run, indices, bar) for indices in groups.values()]:
            future.result()  # the first error of any device is raised here
    return results  # type: ignore[return-value]


def _device_group(device: torch.device) -> str:
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


class _LockedProgress:
    """A progress bar shared by the threads of `map_on_devices` (only ``update`` is used)."""

    def __init__(self, bar: object) -> None:
        self.bar, self.lock = bar, threading.Lock()

    def update(self, n: int) -> None:
        with self.lock:
            self.bar.update(n)  # type: ignore[attr-defined]


class _RowSlices:
    """Applies a row-wise function to slices of query rows (dim 1), halving a slice on out-of-memory.

    Serves as ``map_rows`` of :meth:`MitraModel.predict_by_layer` (``n_passes``: embedding,
    every layer, head) and as the single pass of the other schedules. Results are written
    back into the input tensor when the shape allows (the query stream is updated in place,
    so one copy of it is alive); the progress bar advances by the share of the query rows
    done over all passes. A slice size that had to shrink stays small for the later slices.
    """

    def __init__(self, rows: int, device: torch.device, n_rows: int, n_passes: int, progress: object | None,
                 n_support: int) -> None:
        self.rows, self.device, self.n_support = rows, device, n_support
        self.n_rows, self.n_passes, self.progress = n_rows, n_passes, progress
        self.passes_done = self.reported = 0

    def __call__(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        out, start = None, 0
        while start < n:
            stop = min(n, start + self.rows)
            try:
                part = fn(x[:, start:stop])
            except RuntimeError as err:
                if not release_if_out_of_memory(err, self.device):
                    raise
                if stop - start <= 1:
                    raise MitraOutOfMemoryError(
                        f"Out of memory on {self.device} predicting a single query row against {self.n_support} "
                        "support rows. Lower max_support_rows or max_features, use support_cache='off', "
                        "inference_precision='bfloat16', or a device with more memory."
                    ) from err
                self.rows = (stop - start + 1) // 2  # retry this slice in halves
                continue
            if out is None and stop == n:  # all rows in one slice: nothing to assemble
                self.passes_done += 1
                self._report(0.0)
                return part
            if out is None:
                in_place = part.shape[2:] == x.shape[2:] and part.dtype == x.dtype
                out = x if in_place else part.new_empty((x.shape[0], n, *part.shape[2:]))
            out[:, start:stop] = part
            start = stop
            self._report(start / n)
        self.passes_done += 1
        return out

    def _report(self, fraction: float) -> None:
        if self.progress is None:
            return
        done = int(self.n_rows * (self.passes_done + fraction) / self.n_passes)
        if done > self.reported:
            self.progress.update(done - self.reported)
            self.reported = done


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the plain RuntimeError that MPS and the CPU raise."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    message = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in message or "can't allocate memory" in message)


def free_memory(device: torch.device) -> None:
    """Give cached blocks back after an out-of-memory error, so that a retry can use them."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def release_if_out_of_memory(err: BaseException, device: torch.device) -> bool:
    """Whether ``err`` is an out-of-memory error; if so, the device's cached blocks are released
    first, so that a retry (or whatever runs next) can use them."""
    if not is_out_of_memory(err):
        return False
    free_memory(device)
    return True


@contextlib.contextmanager
def out_of_memory_as_error(device: torch.device, advice: str) -> Iterator[None]:
    """Turn an out-of-memory error in the block into a `MitraOutOfMemoryError` that says what ran
    out ("Out of memory on <device> <advice>") and what to change; other errors pass unchanged."""
    try:
        yield
    except RuntimeError as err:
        if not release_if_out_of_memory(err, device):
            raise
        raise MitraOutOfMemoryError(f"Out of memory on {device} {advice}") from err
