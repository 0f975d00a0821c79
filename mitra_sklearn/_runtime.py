"""What an estimator loads at prediction time, and what the copies of it in one process share.

A fitted estimator pickles without its weights, and a Dask task (or a joblib batch) unpickles a
fresh copy of it for every partition it scores. Two process-level caches keep such a partition
from costing more than its rows:

* **models**, keyed by the SHA-256 of the checkpoint's weights, a digest of fine-tuned weights
  (if any), the precision and the device: every copy of an estimator (and every estimator on the
  same weights) uses one ready model, loaded once per process;
* **encoded support sets** of copies that arrived by unpickling (`RuntimeState.shared`), keyed by
  that model and the bytes of an ensemble member's support rows and labels: a Dask worker runs
  each member's support rows through the model once, not once per partition. They are kept
  within a quarter of the memory available on their device, least recently used dropped first;
  a support set larger than that is run with every call, as in the estimator's own process.

An estimator in the process that fitted it keeps its own state (`support_cache` decides); only
the model is shared with it. The process also remembers which once-per-process warnings it has
given (`warn_once`).
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._inference import InferenceRunner, available_memory, support_cache_bytes
from .checkpoint import CheckpointFiles
from .model import MitraModel, SupportCache

__all__ = ["RuntimeState", "model_key", "clear_process_caches", "process_cache_info", "warn_once"]

# Ready models kept per process (a released model is 300 MB in float32; the estimators of one
# process rarely use more than a couple of checkpoints and precisions).
_MODELS_KEPT = 4
# Share of the memory available on a device that encoded support sets may hold.
_SUPPORT_SHARE = 0.25

_LOCK = threading.Lock()
_MODELS: OrderedDict[tuple, MitraModel] = OrderedDict()
_SUPPORTS: OrderedDict[tuple, tuple[SupportCache, int, str]] = OrderedDict()  # key -> (cache, bytes, device)
_KEY_LOCKS: dict[tuple, threading.Lock] = {}
_COUNTS = {"models_built": 0, "support_sets_encoded": 0}  # since the process started
_WARNED_ONCE: set[Any] = set()  # keys of the once-per-process warnings already given


def warn_once(key: Any, message: str, stacklevel: int) -> None:
    """Warn the first time ``key`` comes up in this process (whatever the warning filters)."""
    if key not in _WARNED_ONCE:
        _WARNED_ONCE.add(key)
        warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)


def model_key(sha256: str | None, tuned_digest: str | None, precision: torch.dtype, device: torch.device
              ) -> tuple | None:
    """The process-level key of an inference model, or None when the weights have no known SHA-256."""
    if sha256 is None:
        return None
    return sha256, tuned_digest, str(precision), str(device)


def clear_process_caches() -> None:
    """Forget every shared model and encoded support set of this process (tests, or to free memory)."""
    with _LOCK:
        _MODELS.clear()
        _SUPPORTS.clear()
        _KEY_LOCKS.clear()


def process_cache_info() -> dict[str, int]:
    """What this process's caches did: models built and support sets encoded (since the process
    started) and what they hold now (``models_held``, ``support_sets_held``, ``support_bytes_held``).

    On a Dask cluster, ``client.run(process_cache_info)`` asks every worker.
    """
    with _LOCK:
        return {**_COUNTS, "models_held": len(_MODELS), "support_sets_held": len(_SUPPORTS),
                "support_bytes_held": sum(size for _, size, _ in _SUPPORTS.values())}


def _key_lock(key: tuple) -> threading.Lock:
    # One lock per key: two threads wanting the same thing build it once, other keys do not wait.
    with _LOCK:
        return _KEY_LOCKS.setdefault(key, threading.Lock())


def _shared_model(key: tuple, build: Callable[[], MitraModel]) -> MitraModel:
    with _key_lock(key):
        with _LOCK:
            if key in _MODELS:
                _MODELS.move_to_end(key)
                return _MODELS[key]
        model = build()
        with _LOCK:
            _COUNTS["models_built"] += 1
            _MODELS[key] = model
            while len(_MODELS) > _MODELS_KEPT:
                _MODELS.popitem(last=False)
        return model


def _support_digest(x_support: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in (x_support, labels):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _make_room(device: str, needed: int, available: int) -> bool:
    """Drop least recently used support sets of ``device`` until ``needed`` bytes fit its share.

    The share is of the memory available now plus what the cache holds on that device (memory
    the cache could give back). Called with ``_LOCK`` held.
    """
    held = sum(size for _, size, where in _SUPPORTS.values() if where == device)
    budget = _SUPPORT_SHARE * (available + held)
    if needed > budget:
        return False
    for key in [key for key, (_, _, where) in _SUPPORTS.items() if where == device]:
        if held + needed <= budget:
            break
        held -= _SUPPORTS.pop(key)[1]
    return held + needed <= budget


class RuntimeState:
    """Things an estimator loads or computes lazily and never pickles.

    Parameters
    ----------
    shared : bool, default=False
        True for a copy that arrived by unpickling: its encoded support sets are kept in, and
        taken from, the process-level cache (see the module docstring).

    Attributes
    ----------
    models : dict of (str, int) to (torch.dtype, MitraModel)
        The inference model of each device in use and checkpoint (its index in the estimator's
        ``checkpoint_infos_``), with its precision.
    caches : dict of int to SupportCache or None
        Support sets encoded for ``support_cache='fit'``, by member index.
    tuned_digest : str or None
        SHA-256 of the estimator's fine-tuned weights, once computed.
    files : dict of int to CheckpointFiles
        The checkpoint files of the weights recorded in fit, by checkpoint index, once found in
        this process: by fit itself, or for an unpickled copy by its first prediction (then
        checked against the record).
    """

    def __init__(self, shared: bool = False) -> None:
        self.shared = shared
        self.files: dict[int, CheckpointFiles] = {}
        self.models: dict[tuple[str, int], tuple[torch.dtype, MitraModel]] = {}
        self.caches: dict[int, SupportCache] | None = None
        self.tuned_digest: str | None = None

    def model(self, device: torch.device, precision: torch.dtype, key: tuple | None,
              build: Callable[[], MitraModel], checkpoint: int = 0) -> MitraModel:
        """The model of checkpoint number ``checkpoint`` for ``device`` in ``precision``: this
        state's, the process's (``key``), or ``build()``."""
        held = self.models.get((str(device), checkpoint))
        if held is not None and held[0] == precision:
            return held[1]
        model = build() if key is None else _shared_model(key, build)
        if held is not None:
            self.caches = None  # encoded by the model being replaced
        self.models[str(device), checkpoint] = (precision, model)
        return model

    def shared_support(self, runner: InferenceRunner, key: tuple | None, x_support: np.ndarray,
                       labels: np.ndarray) -> SupportCache | None:
        """A member's support set encoded once per process (shared copies only), or None.

        None means: run the support rows with the call (not a shared copy, no model key, or too
        large for the device's share of memory).
        """
        if not self.shared or key is None:
            return None
        support_key = (key, _support_digest(x_support, labels))
        with _key_lock(support_key):
            with _LOCK:
                if support_key in _SUPPORTS:
                    _SUPPORTS.move_to_end(support_key)
                    return _SUPPORTS[support_key][0]
            needed = support_cache_bytes(runner.model.config, *x_support.shape, runner.dtype)
            device = str(runner.device)
            with _LOCK:
                if not _make_room(device, needed, available_memory(runner.device)):
                    return None
            cache = runner.encode(x_support, labels)
            with _LOCK:
                _COUNTS["support_sets_encoded"] += 1
                _SUPPORTS[support_key] = (cache, needed, device)
            return cache
