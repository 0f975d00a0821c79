"""Exceptions raised by mitra_sklearn.

Each subclasses the built-in exception a caller would catch anyway (``FileNotFoundError``,
``ValueError``, ``MemoryError``), so generic handlers and scikit-learn's checks keep working.
"""

from __future__ import annotations

__all__ = [
    "MitraError",
    "CheckpointNotFoundError",
    "CheckpointIntegrityError",
    "CheckpointWriteError",
    "MitraOutOfMemoryError",
]


class MitraError(Exception):
    """Base class of the errors raised by mitra_sklearn."""


class CheckpointNotFoundError(MitraError, FileNotFoundError):
    """A checkpoint could not be found locally and could not be downloaded."""


class CheckpointIntegrityError(MitraError, ValueError):
    """A checkpoint file exists but is corrupt, truncated or does not fit its config.

    Attributes
    ----------
    path : pathlib.Path or None
        The damaged file, when one file is to blame.
    reason : str
        What is wrong with it, in a few words (e.g. "truncated: 100 of 2,703,360 bytes").
    repair : str
        How to repair it (delete a Hub snapshot, download again, reinstall, save again).
    """

    def __init__(self, message: str, *, path: object = None, reason: str = "", repair: str = "") -> None:
        super().__init__(message)
        self.path, self.reason, self.repair = path, reason, repair


class CheckpointWriteError(MitraError, OSError):
    """A checkpoint, training state or pack could not be written (full disk, read-only folder).

    Nothing half-written is left under the final name: files are written to temporary names
    that are removed on failure. ``errno`` is the operating system's error number.
    """


class MitraOutOfMemoryError(MitraError, MemoryError):
    """Prediction ran out of device memory even with the smallest query chunks."""
