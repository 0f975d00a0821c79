"""Keep freed memory in a training process (glibc's malloc on Linux).

A training step allocates and frees tensors of tens of MiB (attention over up to 2,048 rows x
48 features). glibc serves every allocation above its mmap threshold (32 MiB at the most) with
a fresh ``mmap`` and gives it back to the kernel when it is freed, and it trims the heap's free
top as well, so every step pays page faults to map and zero those pages again. Serving large
blocks from the heap and never trimming it keeps those pages for the next step: the same
computation, 1.4x faster on a 2-core AMD EPYC with AVX2 only, at up to twice the peak memory
(the heap keeps what it freed and fragments). Figures, and the milder settings that were
measured and not kept: docs/pretraining.md, "CPU throughput".

`retain_freed_memory` is what ``python -m pretraining train`` and ``resume`` call (leave it
out with ``--malloc-defaults``). The estimators never change the allocator: they run inside a
user's process.
"""

from __future__ import annotations

import ctypes
import platform

__all__ = ["has_glibc_malloc", "retain_freed_memory"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def has_glibc_malloc() -> bool:
    """Whether this process allocates with glibc's malloc (Linux with glibc, not musl)."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def retain_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and never shrink it.

    Returns
    -------
    bool
        True when both settings took effect; False on a C library other than glibc (macOS,
        Windows, musl), where nothing is changed.
    """
    if not has_glibc_malloc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; both are plain settings of the running allocator.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
