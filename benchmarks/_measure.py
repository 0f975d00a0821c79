"""Peak-memory and wall-time helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["PeakMemory", "cpu_name", "timed_with_peak"]


class PeakMemory:
    """Peak memory used inside the ``with`` block, in GiB, above the level at its start.

    On CUDA the allocator's peak; on the CPU the process's resident memory, sampled every 2 ms
    by a thread (allocations shorter than that can be missed).
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.peak_gib = 0.0
        self._stop = threading.Event()
        self._peak_bytes = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            _return_free_heap_to_the_os()  # so that memory freed by earlier work does not hide this block's
            self._base = self._rss()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak_bytes = max(self._peak_bytes, self._rss() - self._base)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self._peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()
            self._peak_bytes = max(self._peak_bytes, self._rss() - self._base)
        self.peak_gib = max(self._peak_bytes, 0) / 2**30


def _return_free_heap_to_the_os() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def timed_with_peak(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[Any, float, float]:
    """Run ``fn`` once: its result, wall seconds and peak memory in GiB."""
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        result = fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return result, seconds, memory.peak_gib


def cpu_name() -> str:
    """The CPU's model name as ``/proc/cpuinfo`` (and ``lscpu``) gives it; every speed figure names it."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
