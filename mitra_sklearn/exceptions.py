"""Exceptions raised by mitra_sklearn.

Each subclasses the built-in exception a caller would catch anyway (``FileNotFoundError``,
``ValueError``, ``MemoryError``), so generic handlers and scikit-learn's checks keep working.
"""

from __future__ import annotations

__all__ = [
    "MitraError",
    "CheckpointNotFoundError",
    "CheckpointIntegrityError",
    "MitraOutOfMemoryError",
]


class MitraError(Exception):
    """Base class of the errors raised by mitra_sklearn."""


class CheckpointNotFoundError(MitraError, FileNotFoundError):
    """A checkpoint could not be found locally and could not be downloaded."""


class CheckpointIntegrityError(MitraError, ValueError):
    """A checkpoint file exists but is corrupt, truncated or does not fit its config."""


class MitraOutOfMemoryError(MitraError, MemoryError):
    """Prediction ran out of device memory even with the smallest query chunks."""
