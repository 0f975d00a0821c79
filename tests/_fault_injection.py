"""Faults that ``chmod`` cannot make for root, and a download that needs no network (issue 29).

Kept apart from the test module so that a subprocess can import it without ``conftest`` (which
points ``HF_HOME`` at a test folder: the read-only home test needs the default).

* `READ_ONLY`: folders where every write fails with ``EROFS``, as on a read-only mount. An
  audit hook (installed on import, for the life of the process) sees every file opened for
  writing, every rename, folder creation and removal made from Python, and refuses those under
  these folders.
* `fake_online` / `download_into_cache`: the network counted as reachable and huggingface_hub's
  download replaced by one whose cache writes are real (its folders).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["READ_ONLY", "download_into_cache", "fake_online"]

#: Real paths of the folders that are read-only now.
READ_ONLY: set[str] = set()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {"os.mkdir", "os.remove", "os.rmdir", "os.symlink", "os.truncate", "os.chmod", "os.utime"}


def _written_paths(event: str, args: tuple) -> list:
    """The paths an audited event writes (none for reads and other events)."""
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS)
        return [path] if writes else []
    if event == "os.rename":  # os.rename and os.replace
        return list(args[:2])
    return [args[0]] if event in _PATH_EVENTS else []


def _read_only_hook(event: str, args: tuple) -> None:
    if not READ_ONLY:
        return
    for path in _written_paths(event, args):
        if isinstance(path, (str, bytes, os.PathLike)):
            real = os.path.realpath(os.fsdecode(path))
            if any(real == root or real.startswith(root + os.sep) for root in READ_ONLY):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))


sys.addaudithook(_read_only_hook)


def download_into_cache(repo_id, filename, *, revision=None, cache_dir=None, token=None, local_files_only=False,
                        force_download=False):
    """huggingface_hub's download up to its first cache write (its folders, a real write)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    if local_files_only:
        raise LocalEntryNotFoundError(f"{filename} of {repo_id} is not cached")
    os.makedirs(Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--")) / "blobs")
    raise AssertionError("the Hub cache was writable")


def fake_online(setattr: Callable[[object, str, object], None], download: Callable) -> None:
    """Online as far as mitra_sklearn can tell (no HF_HUB_OFFLINE, the Hub host reachable), with
    ``download`` standing in for ``huggingface_hub.hf_hub_download``; ``setattr`` is pytest's
    ``monkeypatch.setattr`` (or the builtin, in a subprocess)."""
    import huggingface_hub
    from huggingface_hub import constants

    from mitra_sklearn import checkpoint

    setattr(constants, "HF_HUB_OFFLINE", False)
    setattr(checkpoint, "_hub_unreachable_reason", lambda: None)
    setattr(huggingface_hub, "hf_hub_download", download)
