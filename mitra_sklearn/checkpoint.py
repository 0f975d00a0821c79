"""Mitra checkpoints: the file format, where a checkpoint is found, loading, saving, integrity.

This module alone knows the files of a checkpoint (``config.json`` + ``model.safetensors``, the
official format, and the optional ``<file>.sha256`` checksums) and where they can come from.
Loading and saving are functions here (`load_model`, `load_model_files`, `save_model`) that
build the model class they are given (`mitra_sklearn.model.MitraModel` by default): the model
module knows no files. ``MitraModel.from_pretrained`` / ``save_pretrained`` are aliases of them.

Resolution order for a checkpoint reference:

1. the name of a checkpoint shipped inside this package (``mitra_sklearn/checkpoints/<name>``);
2. a local folder holding ``config.json`` and ``model.safetensors``;
3. a Hugging Face Hub repo id: the local Hub cache first, then a download (unless
   ``local_files_only=True`` or ``HF_HUB_OFFLINE=1``).

No reference (the estimators' ``checkpoint=None``) means, per task, the newest official repo
that is in the local Hub cache or can be downloaded (``catalog.DEFAULT_CHAIN``: Mitra v2, then
v1), otherwise the checkpoint shipped for that task (`resolve_default_checkpoint`, which says
why). What was used is
pinned by `checkpoint_info` (Hub commit, SHA-256 of the weights) and reloaded exactly by
`resolve_pinned`.

Weights are only ever read with ``safetensors`` (no unpickling). A file ``<name>.sha256`` next
to a checkpoint file holds its expected SHA-256; when present it is checked at load time, and so
is a Hub cache file against its blob name (the Hub stores large files under their SHA-256).
`verify_checkpoint` checks a checkpoint without loading it (the safetensors layout against the
file size, checksums, the config); a damaged file is a `CheckpointIntegrityError` that names the
file, what is wrong and how to repair it, and ``checkpoint=None`` passes over a damaged official
checkpoint (downloading it again when it can) with a warning that says the same.

Files are written to temporary names and renamed into place (`write_files_atomically`), so a
full disk or a read-only folder is a `CheckpointWriteError` that leaves nothing half-written
under a name a later load would read. Digests and loaded models are cached per file content:
a digest is reused only while the file keeps its inode, size and timestamps, and only once those
timestamps are older than the clock's resolution (a file rewritten within one tick could keep
them); a checkpoint replaced while it is being read (another process saving it) is read again.

Config and weights are checked against each other at load time (`_config_problems`). The
tensors' shapes tell ``dim``, ``dim_output``, ``n_layers`` and whether the head is a scalar
regression head; they cannot tell ``n_heads`` (the attention projections are ``dim x dim``
whatever the number of heads) nor classification from a binned regression head (both embed
labels in a ``dim_output x dim`` table). `save_checkpoint` therefore also writes the config
into the safetensors header (metadata key ``mitra_config``), and a checkpoint carrying it is
checked field by field; files without it (the official checkpoints, older saves) are checked
on what the shapes tell only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlparse

import torch

from .catalog import DEFAULT_CHAIN, CheckpointDefaults, official_checkpoint
from .config import MitraConfig, Task
from .exceptions import CheckpointIntegrityError, CheckpointNotFoundError, CheckpointWriteError
from .model import MitraModel

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "OFFICIAL_CHECKPOINTS",
    "SHIPPED_CHECKPOINTS_DIR",
    "CheckpointFiles",
    "CheckpointInfo",
    "DefaultCheckpoint",
    "load_model",
    "load_model_files",
    "save_model",
    "default_checkpoint",
    "resolve_default_checkpoint",
    "shipped_checkpoints",
    "shipped_default",
    "resolve_checkpoint",
    "checkpoint_info",
    "resolve_pinned",
    "load_config",
    "declared_defaults",
    "load_state_dict",
    "save_checkpoint",
    "write_checksums",
    "write_files_atomically",
    "verify_checkpoint",
    "is_checkpoint_folder",
]

ModelT = TypeVar("ModelT", bound=torch.nn.Module)
T = TypeVar("T")

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: The newest official repo of each task: the first that ``checkpoint=None`` tries.
OFFICIAL_CHECKPOINTS = {task: chain[0] for task, chain in DEFAULT_CHAIN.items()}
SHIPPED_CHECKPOINTS_DIR = Path(__file__).resolve().parent / "checkpoints"
# Shipped checkpoint preferred for each task, when installed (else any shipped one of the task).
DEFAULT_SHIPPED = {Task.CLASSIFICATION: "mitra-small-classifier", Task.REGRESSION: "mitra-small-regressor"}

# The config as saved with the weights, in the safetensors header.
_CONFIG_METADATA_KEY = "mitra_config"
# Problems listed in a config/weights mismatch message (per kind).
_MAX_LISTED = 5

# (model class, SHA-256 of config.json, of model.safetensors, device) -> model: keyed by content.
_MODEL_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_MODEL_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()
# Resolved path -> its digest and the identity it had (a 303 MB file takes about a quarter second).
_DIGESTS: dict[str, _Digest] = {}
# File timestamps are only as fine as the kernel's clock tick (2 s on FAT): a digest is trusted
# again only for a file last changed longer than this before it was hashed.
_TIMESTAMP_SLACK_NS = 2_000_000_000
# Reads of a checkpoint that another process replaces meanwhile are tried this often.
_READ_ATTEMPTS = 4
_SAFETENSORS_MAX_HEADER = 100_000_000  # the safetensors format's own limit
# A TCP connection to the Hub that takes longer than this counts as no network.
_CONNECT_TIMEOUT_S = 3.0
# checkpoint=None does not retry a failed official download for this long (a grid search would
# otherwise probe the network in every fit); (repo id, Hub cache) -> (time, reason).
_RETRY_DEFAULT_DOWNLOAD_AFTER_S = 600.0
_DEFAULT_DOWNLOAD_FAILURES: dict[tuple[str, str], _Failure] = {}
_COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CheckpointFiles:
    """Where a checkpoint's two files were found, and from what kind of source."""

    config_path: Path
    weights_path: Path
    source: str  # "shipped", "local" or "hub"

    @property
    def revision(self) -> str | None:
        """The Hub commit hash of the files (their snapshot folder in the Hub cache); None off the Hub."""
        snapshot = self.weights_path.parent
        if self.source == "hub" and snapshot.parent.name == "snapshots" and _COMMIT_HASH.match(snapshot.name):
            return snapshot.name
        return None


@dataclass(frozen=True)
class CheckpointInfo:
    """The exact weights a fitted estimator uses (its ``checkpoint_info_``), enough to reload them.

    Attributes
    ----------
    reference : str
        Shipped name, absolute folder or Hub repo id (the estimator's ``checkpoint_``).
    source : {'shipped', 'local', 'hub'}
        Where the files were found.
    revision : str or None
        Hub commit hash (Hub checkpoints only).
    sha256 : str
        SHA-256 of ``model.safetensors``.
    n_parameters : int
        Number of weights.
    reason : str
        Why this checkpoint: the ``checkpoint`` argument, or the default rule's reason.
    """

    reference: str
    source: str
    revision: str | None
    sha256: str
    n_parameters: int
    reason: str

    def __str__(self) -> str:
        pin = f"revision {self.revision[:12]}" if self.revision else f"sha256 {self.sha256[:12]}"
        return (f"{self.reference!r} ({self.source}, {pin}, {_millions(self.n_parameters)} parameters; "
                f"{self.reason})")


@dataclass(frozen=True)
class DefaultCheckpoint:
    """What ``checkpoint=None`` resolves to for a task (`resolve_default_checkpoint`).

    ``warning`` is set when the shipped checkpoint stands in for the official one: it says which
    model is used, why, and how to get the other.
    """

    reference: str
    files: CheckpointFiles
    reason: str
    warning: str | None = None


def shipped_checkpoints() -> list[str]:
    """Names of the checkpoints shipped inside the package."""
    if not SHIPPED_CHECKPOINTS_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_CHECKPOINTS_DIR.iterdir() if is_checkpoint_folder(p))


def is_checkpoint_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds both files of a checkpoint."""
    folder = Path(folder)
    return (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()


def shipped_default(task: Task | str) -> str | None:
    """The shipped checkpoint of ``task`` that ``checkpoint=None`` falls back to, or None.

    `DEFAULT_SHIPPED` when it is installed, else the first shipped checkpoint trained for
    ``task``.
    """
    task = Task.parse(task)
    names = [name for name in shipped_checkpoints() if _shipped_task(name) is task]
    return DEFAULT_SHIPPED[task] if DEFAULT_SHIPPED[task] in names else next(iter(names), None)


def default_checkpoint(task: Task | str) -> str:
    """The reference ``checkpoint=None`` resolves to now (see `resolve_default_checkpoint`)."""
    return resolve_default_checkpoint(task).reference


def resolve_default_checkpoint(task: Task | str, *, estimator: str | None = None) -> DefaultCheckpoint:
    """Resolve ``checkpoint=None``: the newest official repo that can be had, else the shipped one.

    For each official repo of ``task`` in ``catalog.DEFAULT_CHAIN`` (Mitra v2, then v1): the
    local Hub cache, then a download (unless ``HF_HUB_OFFLINE`` is set; failing within seconds
    without a network; a failed download is not retried for 10 minutes in this process). Then
    the checkpoint shipped for ``task`` (``shipped_default``). Whenever the choice is not the
    newest official repo, ``warning`` says which checkpoint is used, why, and how to get the
    newest. A damaged copy in the Hub cache (`verify_checkpoint`) is downloaded again where the
    Hub can be reached, else passed over; the warning names the file, what is wrong with it and
    how to repair the cache.

    Parameters
    ----------
    task : Task or str
        The task the checkpoint is for.
    estimator : str, optional
        Name of the estimator class asking; shapes the messages (its arguments).

    Returns
    -------
    DefaultCheckpoint
        The reference, its files, why it was chosen and, unless it is the newest official
        checkpoint, the warning.

    Raises
    ------
    CheckpointNotFoundError
        Only when no official repo and no shipped checkpoint of ``task`` is available.
    CheckpointIntegrityError
        Only when the shipped checkpoint it falls back to is damaged (the message says to
        reinstall the package).
    """
    task = Task.parse(task)
    missed: list[tuple[str, _Lookup]] = []  # (repo id, why it was not used), newest first
    hub_down = False  # once the Hub itself failed, later repos are looked up in the cache only
    for repo in DEFAULT_CHAIN[task]:
        lookup = _cached_or_downloaded(repo, task, estimator, download=not hub_down)
        if lookup.files is not None:
            reason = f"the official {_generation(repo)} checkpoint, {lookup.note}" + _because(missed)
            warning = _fallback_warning(task, repo, lookup.files, missed, estimator) or _repaired_warning(
                repo, lookup, estimator)
            return DefaultCheckpoint(repo, lookup.files, reason, warning=warning)
        missed.append((repo, lookup))
        hub_down = hub_down or lookup.hub_down
    shipped = shipped_default(task)
    if shipped is None:
        raise CheckpointNotFoundError(
            f"No {task.value} checkpoint is available: no checkpoint is shipped with this installation, and "
            + "; ".join(f"{repo} {lookup.why(local=True)}" for repo, lookup in missed)
            + ". " + _offline_message(missed[0][0], WEIGHTS_NAME, missed[0][1].note,
                                      hints=_OfflineHints(task, estimator), local_files_only=False)
        )
    files = resolve_checkpoint(shipped)
    damage = _damage(files)
    if damage is not None:
        raise CheckpointIntegrityError(
            f"checkpoint=None has no usable {task.value} checkpoint: "
            + "".join(f"{repo} {lookup.why(local=True)}; " for repo, lookup in missed)
            + f"and the shipped fallback {shipped!r} is damaged: {damage}",
            path=damage.path, reason=damage.reason, repair=damage.repair,
        ) from damage
    return DefaultCheckpoint(shipped, files, "the shipped fallback" + _because(missed),
                             warning=_fallback_warning(task, shipped, files, missed, estimator))


@dataclass(frozen=True)
class _Lookup:
    """One official repo tried by `resolve_default_checkpoint`: its files and how they were had,
    or why not (``files`` None) and whether the Hub itself failed (offline, unreachable).
    ``damage`` is what was wrong with its copy in the Hub cache, if one was there."""

    files: CheckpointFiles | None
    note: str
    hub_down: bool = False
    damage: CheckpointIntegrityError | None = None

    def why(self, *, local: bool = False, repair: bool = True) -> str:
        """Why it was not used, as the rest of a sentence that starts with the repo id."""
        cache = "local Hub cache" if local else "Hub cache"
        if self.damage is None:
            return f"is not in the {cache} and {self.note}"
        fix = f". {self.damage.repair}" if repair and self.damage.repair else ""
        return (f"is damaged in the {cache} ({self.damage.path} {self.damage.reason}{fix}) and "
                f"{self.note}")


def _cached_or_downloaded(repo: str, task: Task, estimator: str | None, *, download: bool) -> _Lookup:
    """An official repo's files from the Hub cache, else (``download``) from a download; a damaged
    cached copy is downloaded again (``force_download``) where downloads are possible."""
    resolve = partial(resolve_checkpoint, repo, task=task, estimator=estimator)
    damage = None
    try:
        cached = resolve(local_files_only=True)
    except CheckpointNotFoundError:
        cached = None
    else:
        damage = _damage(cached)
        if damage is None:
            return _Lookup(cached, "from the Hub cache")
    if not download:
        return _Lookup(None, "the Hub could not be used (see above)", hub_down=True, damage=damage)
    key = (repo, _hub_cache_dir())
    failed = _DEFAULT_DOWNLOAD_FAILURES.get(key)
    if failed is not None and time.monotonic() - failed.time < _RETRY_DEFAULT_DOWNLOAD_AFTER_S:
        return replace(failed.lookup, damage=damage)
    try:
        files = resolve(force_download=damage is not None)
    except CheckpointNotFoundError as err:
        lookup = _Lookup(None, getattr(err, "reason", None) or str(err), isinstance(err, _HubUnavailableError),
                         damage)
        if not _offline_mode():  # the offline flag is checked at no cost: no need to remember
            _DEFAULT_DOWNLOAD_FAILURES[key] = _Failure(time.monotonic(), lookup)
        return lookup
    _DEFAULT_DOWNLOAD_FAILURES.pop(key, None)
    again = _damage(files)
    if again is not None:
        return _Lookup(None, "the copy just downloaded is damaged too", damage=again)
    return _Lookup(files, "downloaded again from the Hub" if damage else "downloaded from the Hub", damage=damage)


def _damage(files: CheckpointFiles) -> CheckpointIntegrityError | None:
    """What `verify_checkpoint` finds wrong with ``files``, or None."""
    try:
        verify_checkpoint(files)
    except CheckpointIntegrityError as err:
        return err
    return None


def _repaired_warning(repo: str, lookup: _Lookup, estimator: str | None) -> str | None:
    """The warning of a damaged cached copy that a new download replaced (None when there was none)."""
    if lookup.damage is None:
        return None
    who = f"{estimator}(checkpoint=None)" if estimator else "checkpoint=None"
    return (f"{who} found {lookup.damage.path} of {repo!r} damaged in the Hub cache ({lookup.damage.reason}) and "
            "downloaded it again. (Shown once per process and task.)")


@dataclass(frozen=True)
class _Failure:
    time: float
    lookup: _Lookup


def _generation(repo: str) -> str:
    official = official_checkpoint(repo)
    return f"Mitra {official.generation}" if official is not None else repo


def _because(missed: list[tuple[str, _Lookup]]) -> str:
    """Why the newer official checkpoints were passed over ('' when none was)."""
    if not missed:
        return ""
    return ": " + "; ".join(f"{repo} {lookup.why(repair=False)}" for repo, lookup in missed)


def resolve_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    task: Task | str | None = None,
    estimator: str | None = None,
    force_download: bool = False,
) -> CheckpointFiles:
    """Find ``config.json`` and ``model.safetensors`` for a checkpoint reference.

    Parameters
    ----------
    checkpoint : str or path-like
        Shipped checkpoint name, local folder or Hub repo id.
    revision, cache_dir, token, local_files_only, force_download
        Passed to ``huggingface_hub.hf_hub_download`` for Hub checkpoints; ``force_download``
        downloads the files again although they are in the Hub cache (the repair of a damaged
        cached copy).
    task : Task or str, optional
        The task the caller needs; only shapes the error message (which shipped checkpoint
        to suggest). None: the task of an official repo id, else every shipped checkpoint.
    estimator : str, optional
        Name of the estimator class asking (e.g. ``"MitraRegressor"``); only shapes the error
        message, which then suggests that estimator's arguments (it has no
        ``local_files_only``).

    Raises
    ------
    CheckpointNotFoundError
        When the files are neither shipped, nor in a local folder, nor in the Hub cache, and
        cannot be downloaded. The message names the offline alternatives.
    """
    reference = os.fspath(checkpoint)
    if reference in shipped_checkpoints():  # names only: "." or ".." are folders, not shipped names
        return _files_in_folder(SHIPPED_CHECKPOINTS_DIR / reference, source="shipped")
    if os.path.isdir(reference):
        return _files_in_folder(Path(reference), source="local")
    if not _looks_like_repo_id(reference):
        raise CheckpointNotFoundError(
            f"Checkpoint {reference!r} is neither a folder on this machine, nor a shipped checkpoint "
            f"({', '.join(shipped_checkpoints()) or 'none installed'}), nor a Hugging Face repo id "
            "of the form 'owner/name'."
        )
    hints = _OfflineHints(None if task is None else Task.parse(task), estimator)
    fetch = partial(_hub_file, reference, revision=revision, cache_dir=cache_dir, token=token,
                    local_files_only=local_files_only, hints=hints, force_download=force_download)
    return CheckpointFiles(fetch(CONFIG_NAME), fetch(WEIGHTS_NAME), source="hub")


def load_model(
    checkpoint: str | os.PathLike,
    *,
    model_class: type[ModelT] = MitraModel,  # type: ignore[assignment]
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    device: str | torch.device = "cpu",
    use_cache: bool = False,
    force_download: bool = False,
) -> ModelT:
    """Load a checkpoint in evaluation mode (``mitra_sklearn.load_model``, ``MitraModel.from_pretrained``).

    Parameters
    ----------
    checkpoint : str or path-like
        Shipped checkpoint name, local folder, or Hugging Face repo id (in this order, see
        the module docstring).
    model_class : type, default=MitraModel
        The class built from the checkpoint's `MitraConfig` (``model_class(config)``, an
        ``nn.Module`` whose state dict the weights fill).
    revision, cache_dir, token, local_files_only
        Passed to ``huggingface_hub.hf_hub_download`` for Hub checkpoints.
    device : str or torch.device, default='cpu'
        Where to put the weights.
    use_cache : bool, default=False
        Return the model shared by every caller that loaded the same unchanged files onto
        the same device in this process (the estimators do). A shared model must not be
        modified in place: that would change every fitted estimator using it. The default
        returns a model of your own.
    force_download : bool, default=False
        Download a Hub checkpoint again although it is in the Hub cache: the repair of a
        damaged cached copy (a `CheckpointIntegrityError` suggests it).

    Returns
    -------
    model
        An instance of ``model_class``.

    Raises
    ------
    CheckpointNotFoundError
        When the files cannot be found or downloaded (the message names the offline ways).
    CheckpointIntegrityError
        When a file is corrupt, fails its checksum, or does not fit its config.
    """
    files = resolve_checkpoint(checkpoint, revision=revision, cache_dir=cache_dir, token=token,
                               local_files_only=local_files_only, force_download=force_download)
    return load_model_files(files, model_class=model_class, device=device, use_cache=use_cache)


def load_model_files(
    files: CheckpointFiles,
    *,
    model_class: type[ModelT] = MitraModel,  # type: ignore[assignment]
    device: str | torch.device = "cpu",
    use_cache: bool = False,
) -> ModelT:
    """Load a checkpoint already resolved (`resolve_checkpoint`, `resolve_pinned`).

    Parameters
    ----------
    files : CheckpointFiles
        The checkpoint's two files.
    model_class, device, use_cache
        As in `load_model`.

    Returns
    -------
    model
        An instance of ``model_class``.

    Notes
    -----
    Files replaced while they are read (another process saving the checkpoint) are read
    again, so config and weights always come from one version. The shared models
    (``use_cache``) are keyed by the SHA-256 of both files.
    """
    device = torch.device(device)
    if not use_cache:
        return _read_consistently(files, partial(_build_model, model_class, files, device))

    def shared_or_built() -> tuple[tuple, ModelT]:
        key = (model_class, _sha256(files.config_path), _sha256(files.weights_path), str(device))
        with _CACHE_LOCK:
            model = _MODEL_CACHE.get(key)
        return key, model if model is not None else _build_model(model_class, files, device)

    key, model = _read_consistently(files, shared_or_built)
    with _CACHE_LOCK:
        model = _MODEL_CACHE.setdefault(key, model)  # another thread's copy, if it was first
        _MODEL_CACHE.move_to_end(key)
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    return model


def save_model(model: Any, folder: str | os.PathLike) -> None:
    """Write a model's ``config.json`` and ``model.safetensors`` in the official format
    (``mitra_sklearn.save_model``, ``MitraModel.save_pretrained``).

    Parameters
    ----------
    model : MitraModel
        Any module with a `MitraConfig` as ``config`` and a ``state_dict``.
    folder : str or path-like
        Created if missing; its two files are replaced.

    Raises
    ------
    CheckpointWriteError
        When the folder cannot be written (full disk, read-only); nothing half-written is
        left under the final names (``save_checkpoint``).
    """
    save_checkpoint(folder, model.config, model.state_dict())


# The model module knows no files; its classic names are thin aliases of the functions above.
def _from_pretrained(cls: type[ModelT], checkpoint: str | os.PathLike, **kwargs: Any) -> ModelT:
    """Alias of ``mitra_sklearn.load_model`` that builds this class."""
    return load_model(checkpoint, model_class=cls, **kwargs)


MitraModel.from_pretrained = classmethod(_from_pretrained)  # type: ignore[attr-defined]
MitraModel.save_pretrained = save_model  # type: ignore[attr-defined]


def load_config(checkpoint_files: CheckpointFiles) -> MitraConfig:
    """Read and validate a checkpoint's ``config.json``."""
    path = checkpoint_files.config_path
    _verify_content(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return MitraConfig.from_dict(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as err:
        raise _damaged(path, f"is not a valid Mitra config ({err})", what="Invalid Mitra config file") from err


def declared_defaults(checkpoint_files: CheckpointFiles) -> CheckpointDefaults | None:
    """The inference defaults a checkpoint's ``config.json`` declares (``"context_limits"``,
    ``"softmax_temperature"``; the official files declare none, `catalog.checkpoint_defaults`
    knows theirs), or None.

    Raises
    ------
    CheckpointIntegrityError
        When a declared value is malformed.
    """
    path = checkpoint_files.config_path
    try:
        return CheckpointDefaults.from_config(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as err:
        raise CheckpointIntegrityError(f"Invalid Mitra config file {path}: {err}") from err


def save_checkpoint(folder: str | os.PathLike, config: MitraConfig, state_dict: dict[str, torch.Tensor]) -> None:
    """Write a checkpoint folder (``config.json`` + ``model.safetensors``) in the official format.

    Files are written to temporary names and renamed (`write_files_atomically`), so an
    interrupted or failed save never leaves a half-written checkpoint behind. Tensors are stored
    in the dtype they have; the config is also stored in the safetensors header (what loading
    checks ``n_heads`` against).

    Raises
    ------
    CheckpointWriteError
        When the folder cannot be written (full disk, read-only): the message says which and
        what to do; the folder keeps what it held.
    """
    from safetensors.torch import save as serialize

    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
    text = json.dumps(config.to_dict())
    # Checksums of older files would be wrong: they go before the new files arrive, so that no
    # reader pairs a new file with an old checksum.
    write_files_atomically(
        folder,
        [(WEIGHTS_NAME, serialize(state, metadata={_CONFIG_METADATA_KEY: text})), (CONFIG_NAME, text.encode())],
        remove=[WEIGHTS_NAME + ".sha256", CONFIG_NAME + ".sha256"],
    )


def load_state_dict(checkpoint: str | os.PathLike, **resolve_kwargs: Any) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint as stored (dtype unchanged), after the checksum check."""
    return _read_weights(resolve_checkpoint(checkpoint, **resolve_kwargs).weights_path)


def checkpoint_info(files: CheckpointFiles, reference: str, reason: str) -> CheckpointInfo:
    """Pin the checkpoint in ``files``: its Hub commit, the SHA-256 of its weights, its size.

    The files are checked first (`verify_checkpoint`): a damaged one raises a
    `CheckpointIntegrityError` that says how to repair it.
    """
    verify_checkpoint(files)
    return CheckpointInfo(reference=reference, source=files.source, revision=files.revision,
                          sha256=_weights_sha256(files.weights_path),
                          n_parameters=_parameter_count(files.weights_path), reason=reason)


def resolve_pinned(info: CheckpointInfo, *, task: Task | str | None = None,
                   estimator: str | None = None) -> CheckpointFiles:
    """The files of exactly the checkpoint ``info`` describes, or a clear error.

    A Hub checkpoint is resolved at its commit (from the Hub cache, else downloaded); a shipped
    or local one by its reference, and its weights must still have the SHA-256 in ``info``. A
    shipped name whose weights were replaced by a package update resolves to the shipped copy
    that still has them (each replaced release is kept as ``<name>-v1``, ``<name>-v2``, ...), if there is one.

    Raises
    ------
    CheckpointNotFoundError
        When those weights are not available here (offline without them in the Hub cache, or
        the shipped or local checkpoint has been replaced by other weights).
    """
    files = resolve_checkpoint(info.reference, revision=info.revision, task=task, estimator=estimator)
    actual = _weights_sha256(files.weights_path)
    if actual == info.sha256:
        return files
    if files.source == "shipped":
        # A newer package keeps the weights it replaced under another name (``...-v1``, ``...-v2``): the
        # same SHA-256 means the same weights, so the pickle predicts exactly as before.
        renamed = _shipped_with_sha256(info.sha256)
        if renamed is not None:
            return renamed
    what = "the package (or its shipped checkpoint) was updated" if files.source == "shipped" else (
        "the folder now holds other weights")
    raise CheckpointNotFoundError(
        f"{estimator or 'The estimator'} was fitted with the {files.source} checkpoint {info.reference!r} "
        f"whose {WEIGHTS_NAME} had SHA-256 {info.sha256}, but {files.weights_path} now has {actual}: {what}. "
        "Its predictions would change silently, so it does not load other weights: put the original "
        f"checkpoint back (a folder holding it, or the mitra-sklearn version it was fitted with), or refit "
        "the estimator on the new weights."
    )


def _shipped_with_sha256(sha256: str) -> CheckpointFiles | None:
    """The shipped checkpoint whose weights have this SHA-256, if one is installed."""
    for name in shipped_checkpoints():
        files = _files_in_folder(SHIPPED_CHECKPOINTS_DIR / name, source="shipped")
        if _weights_sha256(files.weights_path) == sha256:
            return files
    return None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    problem = _layout_problem(path)
    if problem is not None:
        raise _damaged(path, problem)
    _verify_content(path)
    try:
        # safetensors maps the file into memory: copied, so that a model never changes (or crashes
        # with SIGBUS) when its file is rewritten or truncated in place after loading.
        return {name: tensor.clone() for name, tensor in load_file(str(path), device="cpu").items()}
    except Exception as err:  # safetensors raises its own error type for corrupt files
        raise _damaged(path, f"cannot be read by safetensors ({err})") from err


def write_checksums(folder: str | os.PathLike) -> None:
    """Write ``<file>.sha256`` next to both checkpoint files (used for shipped checkpoints).

    Raises
    ------
    CheckpointWriteError
        When the folder cannot be written; no half-written checksum is left.
    """
    folder = Path(folder)
    write_files_atomically(folder, [(name + ".sha256", (_sha256(folder / name) + "\n").encode())
                                    for name in (CONFIG_NAME, WEIGHTS_NAME)])


# ---------------------------------------------------------------------------- internals
def _build_model(model_class: type[ModelT], files: CheckpointFiles, device: torch.device) -> ModelT:
    config = load_config(files)
    state = _read_weights(files.weights_path)
    # Weights stored in bf16/fp16 (to keep files small) are used in float32, like the official ones.
    state = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    with torch.device("meta"):
        model = model_class(config)  # type: ignore[call-arg]
    problems = _config_problems(config, state, _read_metadata(files.weights_path)) + _state_dict_problems(model, state)
    if problems:
        raise CheckpointIntegrityError(
            f"Weights file {files.weights_path} does not fit {files.config_path} ({config}): " + "; ".join(problems)
        )
    model.load_state_dict(state, assign=True)  # type: ignore[attr-defined]
    return model.to(device).eval()  # type: ignore[attr-defined]


def _state_dict_problems(model: Any, state: dict[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and mis-shaped tensors, at most `_MAX_LISTED` of each kind."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}"
        for key, tensor in state.items()
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s) {_capped(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s) {_capped(unexpected)}")
    problems.extend(shapes[:_MAX_LISTED])
    if len(shapes) > _MAX_LISTED:
        problems.append(f"and {len(shapes) - _MAX_LISTED} more tensors of other shapes")
    return problems


def _capped(names: list[str]) -> str:
    return f"{names[:_MAX_LISTED]}{' ...' if len(names) > _MAX_LISTED else ''}"


def _config_problems(config: MitraConfig, state: dict[str, torch.Tensor], stored: dict[str, Any] | None) -> list[str]:
    """Fields of ``config`` that the tensors (or the config saved with them) contradict.

    From shapes: ``dim`` (cell embedding), ``dim_output`` (head), ``n_layers`` (layer
    indices), and a scalar regression head (its label embedding has a bias). ``n_heads`` and
    classification vs a binned regression head only from ``stored`` (the safetensors metadata).
    """
    told: dict[str, Any] = {}
    if "x_embedding.x_embedding.weight" in state:
        told["dim"] = int(state["x_embedding.x_embedding.weight"].shape[0])
    if "final_layer.weight" in state:
        told["dim_output"] = int(state["final_layer.weight"].shape[0])
    layers = {int(key.split(".")[1]) for key in state if key.startswith("layers.") and key.split(".")[1].isdigit()}
    if layers:
        told["n_layers"] = max(layers) + 1
    if "y_embedding.y_embedding.bias" in state:  # only the scalar head's label embedding is a Linear
        told["task"] = Task.REGRESSION
    problems = [
        f"config.json says {name}={getattr(config, name)!s}, the tensors have {name}={value!s}"
        for name, value in told.items()
        if getattr(config, name) != value
    ]
    if stored is not None:
        try:
            saved = MitraConfig.from_dict(stored)
        except (ValueError, TypeError, KeyError):
            return problems
        problems += [
            f"config.json says {name}={getattr(config, name)!s}, the weights were saved with {name}="
            f"{getattr(saved, name)!s}"
            for name in ("dim", "dim_output", "n_layers", "n_heads", "task")
            if name not in told and getattr(config, name) != getattr(saved, name)
        ]
    return problems


def _read_metadata(path: Path) -> dict[str, Any] | None:
    """The config saved in a safetensors header by `save_checkpoint`, or None."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        return json.loads(metadata[_CONFIG_METADATA_KEY]) if _CONFIG_METADATA_KEY in metadata else None
    except Exception:  # unreadable or foreign metadata: the shapes are still checked
        return None


def _files_in_folder(folder: Path, source: str) -> CheckpointFiles:
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    missing = [p.name for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise CheckpointNotFoundError(
            f"Checkpoint folder {folder} is missing {' and '.join(missing)}; a Mitra checkpoint folder holds "
            f"{CONFIG_NAME} and {WEIGHTS_NAME} (as written by save_model / save_pretrained)."
        )
    return CheckpointFiles(config_path, weights_path, source=source)


def _looks_like_repo_id(reference: str) -> bool:
    parts = reference.split("/")
    return len(parts) == 2 and all(parts) and not reference.startswith((".", "~")) and " " not in reference


class _HubUnavailableError(CheckpointNotFoundError):
    """The Hub could not be used (offline, unreachable, download failed); ``reason`` says why in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _hub_cache_dir() -> str:
    """The Hub cache ``hf_hub_download`` uses when given none (``HF_HUB_CACHE`` / ``HF_HOME``)."""
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except (ImportError, AttributeError):  # pragma: no cover - very old huggingface_hub
        return ""


def _offline_mode() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except (ImportError, AttributeError):  # pragma: no cover - very old huggingface_hub
        return os.environ.get("HF_HUB_OFFLINE", "0").upper() in {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class _OfflineHints:
    """Who asks for a Hub checkpoint: what the error message may suggest."""

    task: Task | None = None
    estimator: str | None = None


def _hub_file(
    repo_id: str,
    filename: str,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike | None,
    token: str | bool | None,
    local_files_only: bool,
    hints: _OfflineHints = _OfflineHints(),
    force_download: bool = False,
) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    kwargs = dict(repo_id=repo_id, filename=filename, revision=revision, cache_dir=cache_dir, token=token)
    try:  # the local Hub cache first: no network at all
        if not force_download:
            return Path(hf_hub_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if force_download:
        kwargs["force_download"] = True  # only when asked: fakes of hf_hub_download need not know it
    def unavailable(reason: str) -> _HubUnavailableError:
        message = _offline_message(repo_id, filename, reason, hints=hints, local_files_only=local_files_only)
        return _HubUnavailableError(message, reason)

    if local_files_only or _offline_mode():
        reason = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
        raise unavailable(f"downloads are disabled ({reason})")
    unreachable = _hub_unreachable_reason()
    if unreachable:
        raise unavailable(unreachable)
    try:
        return Path(hf_hub_download(**kwargs))
    except GatedRepoError as err:
        raise CheckpointNotFoundError(
            f"{repo_id} is gated on the Hugging Face Hub: accept its terms on the website and pass token=... "
            f"(or set HF_TOKEN). Hub said: {err}"
        ) from err
    except (RepositoryNotFoundError, RevisionNotFoundError) as err:
        raise CheckpointNotFoundError(
            f"Hugging Face repo {repo_id!r} (revision {revision or 'main'}) was not found or is private; check the "
            f"name, revision and token. Hub said: {type(err).__name__}"
        ) from err
    except LocalEntryNotFoundError as err:  # connection failed during the download
        raise unavailable("the Hub could not be reached") from err
    except EntryNotFoundError as err:
        raise CheckpointNotFoundError(
            f"Hugging Face repo {repo_id!r} has no file {filename!r}; a Mitra checkpoint needs {CONFIG_NAME} and "
            f"{WEIGHTS_NAME}."
        ) from err
    except OSError as err:  # other network failures (proxy, TLS, timeouts), or the cache cannot be written
        raise unavailable(_download_failure(err, cache_dir)) from err


def _download_failure(err: OSError, cache_dir: str | os.PathLike | None) -> str:
    """Why a download failed, in words that say what to change (read-only or full Hub cache)."""
    cache = os.fspath(cache_dir) if cache_dir is not None else _hub_cache_dir()
    if err.errno in _NOT_WRITABLE:
        return (f"the Hub cache {cache} is not writable ({err.strerror or err}): set HF_HUB_CACHE (or HF_HOME) "
                "to a writable folder")
    if err.errno in _DISK_FULL:
        return (f"the disk of the Hub cache {cache} is full ({err.strerror or err}): free space there, or set "
                "HF_HUB_CACHE to a folder on another disk")
    return f"the download failed ({err})"


def _hub_unreachable_reason() -> str | None:
    """Fail fast when the Hub's host cannot be resolved or connected to.

    ``huggingface_hub`` retries failed connections with back-off for about 20 seconds; on a
    machine without network a DNS lookup fails at once, and a firewall that drops packets is
    caught by a TCP connection with a `_CONNECT_TIMEOUT_S` limit. With a proxy configured, the
    proxy resolves names and connects, so no check is made.
    """
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except (ImportError, AttributeError):  # pragma: no cover
        endpoint = "https://huggingface.co"
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.getaddrinfo(host, port)
    except OSError as err:
        return f"the Hub host {host} cannot be resolved ({err})"
    try:
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        return f"the Hub host {host} cannot be reached ({err or 'timed out'})"
    return None


def _offline_message(repo_id: str, filename: str, reason: str, *, hints: _OfflineHints,
                     local_files_only: bool) -> str:
    """What went wrong and the offline alternatives that apply to this caller and task."""
    official = official_checkpoint(repo_id)
    task = hints.task or (official.task if official is not None else None)
    estimator = hints.estimator
    use = f"{estimator}(checkpoint=...)" if estimator else "checkpoint="
    alternatives = [_shipped_hint(task, estimator)]
    alternatives.append(
        f"point {use} at a local folder holding {CONFIG_NAME} and {WEIGHTS_NAME}, e.g. downloaded once on a "
        f"connected machine (`hf download {repo_id} --local-dir <folder>`) and copied here"
    )
    alternatives.append(
        f"fill the Hub cache on a connected machine (mitra_sklearn.load_model({repo_id!r})) and copy it here"
    )
    skip = [] if _offline_mode() else ["set HF_HUB_OFFLINE=1"]
    if estimator is None and not local_files_only:
        skip.append("pass local_files_only=True")
    text = (
        f"Cannot get {filename!r} of the Hugging Face repo {repo_id!r}: {reason}, and it is not in the local Hub "
        "cache. Offline alternatives: " + "; or ".join(alternatives) + "."
    )
    if skip:
        text += f" With the files in the Hub cache, {' or '.join(skip)} to skip network look-ups."
    return text


def _shipped_hint(task: Task | None, estimator: str | None) -> str:
    """Suggest the shipped checkpoint for ``task`` (all shipped ones when the task is unknown)."""
    if task is not None:
        name = shipped_default(task)
        if name is None:
            return f"install mitra-sklearn with its shipped {task.value} checkpoint (none is installed here)"
        argument = f"{estimator}(checkpoint={name!r})" if estimator else f"checkpoint={name!r}"
        return (f"use the {task.value} checkpoint shipped with the package, {argument} (what checkpoint=None falls "
                "back to)")
    shipped = {name: _shipped_task(name) for name in shipped_checkpoints()}
    if not shipped:
        return "use a checkpoint shipped with the package (checkpoint=None, once one is installed)"
    listed = ", ".join(f"{name!r} ({its_task.value if its_task else 'unknown task'})"
                       for name, its_task in shipped.items())
    return f"use a checkpoint shipped with the package: {listed}"


def _fallback_warning(task: Task, used: str, files: CheckpointFiles, missed: list[tuple[str, _Lookup]],
                      estimator: str | None) -> str | None:
    """Which model checkpoint=None uses instead of the newest official one, why, and how to get it
    (None when the newest is used)."""
    if not missed:
        return None
    newest = DEFAULT_CHAIN[task][0]
    who = f"{estimator}(checkpoint=None)" if estimator else "checkpoint=None"
    pin = f"{estimator}(checkpoint={used!r})" if estimator else f"checkpoint={used!r}"
    official = official_checkpoint(used)
    if official is not None:
        what = f"the official {_generation(used)} checkpoint {used!r}"
    else:
        what = (f"the shipped checkpoint {used!r} ({_millions(_parameter_count(files.weights_path))} parameters, "
                "pretrained by mitra-sklearn on synthetic tables; weaker than the official models)")
    why = "; ".join(f"{repo!r} ({official_checkpoint(repo).size}) {lookup.why(local=True)}" for repo, lookup in missed)
    to_get = ("unset HF_HUB_OFFLINE on a machine with a network" if _offline_mode()
              else "run where the Hugging Face Hub can be reached")
    return (
        f"{who} uses {what}, because {why}. To use the newest official model, {to_get} (it is downloaded on first "
        f"use), or copy a Hub cache holding it (filled with mitra_sklearn.load_model({newest!r})) here, or pass "
        f"checkpoint='<folder>' holding its files (`hf download {newest} --local-dir <folder>`). Pass {pin} to "
        "use this model without this warning. (Shown once per process and task.)"
    )


def _millions(n_parameters: int) -> str:
    return f"{n_parameters / 1e6:.{1 if n_parameters >= 10_000_000 else 2}f} M"


def _parameter_count(path: Path) -> int:
    """Number of weights in a safetensors file, from its header alone (nothing is loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())  # noqa: SIM118 - not a dict
    except Exception as err:  # safetensors raises its own error type for corrupt files
        raise _damaged(path, f"has a header safetensors cannot read ({err})") from err


def _weights_sha256(path: Path) -> str:
    """SHA-256 of a weights file, as cheaply as it is known.

    A ``<file>.sha256`` next to it, else the Hub cache's blob name (large files are stored under
    their SHA-256), both checked whenever the file is verified or loaded; else computed (once
    per file version and process).
    """
    expected = _expected_sha256(path)
    return expected[0] if expected is not None else _sha256(path)


def _shipped_task(name: str) -> Task | None:
    try:
        raw = json.loads((SHIPPED_CHECKPOINTS_DIR / name / CONFIG_NAME).read_text(encoding="utf-8"))
        return Task.parse(raw.get("task"))
    except (OSError, ValueError, AttributeError):
        return None


# ---------------------------------------------------------------------------- integrity
def verify_checkpoint(files: CheckpointFiles) -> None:
    """Check a checkpoint's files without loading its weights.

    ``config.json`` must be a valid Mitra config; ``model.safetensors`` must be as long as its
    header says (a truncated download or copy is not); every ``<file>.sha256`` must hold a
    SHA-256 and match its file, and a Hub cache file must match its blob name (its SHA-256).
    Digests are computed once per file version and process. Files that another process
    replaces meanwhile are checked again.

    Parameters
    ----------
    files : CheckpointFiles
        The checkpoint's files (`resolve_checkpoint`).

    Raises
    ------
    CheckpointIntegrityError
        Naming the damaged file, what is wrong with it (``reason``) and how to repair it
        (``repair``: delete the Hub snapshot or download again with ``force_download=True``,
        reinstall the package, save or copy the folder again).
    """
    def check() -> None:
        load_config(files)
        problem = _layout_problem(files.weights_path)
        if problem is not None:
            raise _damaged(files.weights_path, problem)
        _verify_content(files.weights_path)

    _read_consistently(files, check)


def _layout_problem(path: Path) -> str | None:
    """What the safetensors layout of ``path`` says is wrong with it (truncated, padded, no
    header), or None. Reads only the header: a truncated download is found at no cost."""
    size = path.stat().st_size
    if size < 8:
        return f"is truncated: {size} bytes, not even the 8-byte header length of a safetensors file"
    with open(path, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        if header_size > _SAFETENSORS_MAX_HEADER:
            return f"is not a safetensors file: its first 8 bytes give a header length of {header_size:,} bytes"
        if header_size > size - 8:
            return f"is truncated: {size:,} bytes, shorter than its {8 + header_size:,}-byte header"
        header = handle.read(header_size)
    try:
        entries = json.loads(header)
        end = max((int(entry["data_offsets"][1]) for name, entry in entries.items() if name != "__metadata__"),
                  default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "has a damaged header (not the JSON table of tensors of a safetensors file)"
    expected = 8 + header_size + end
    if size < expected:
        return f"is truncated: {size:,} of the {expected:,} bytes its header describes"
    if size > expected:
        return f"has {size - expected:,} bytes more than its header describes"
    return None


def _expected_sha256(path: Path) -> tuple[str, str] | None:
    """The SHA-256 ``path`` should have and where that comes from (its ``.sha256`` file or its Hub
    blob name), or None when nothing says."""
    checksum_file = path.with_name(path.name + ".sha256")
    if checksum_file.is_file():
        try:
            text = checksum_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = "<binary data>"
        words = text.split()
        if not words or not _SHA256_HEX.match(words[0].lower()):
            raise _damaged(checksum_file, f"holds {text[:40]!r}, not a 64-hex-digit SHA-256")
        return words[0].lower(), f"its checksum file {checksum_file.name}"
    blob = path.resolve().name
    if path.is_symlink() and _SHA256_HEX.match(blob):
        return blob, "its Hub cache blob name"
    return None


def _verify_content(path: Path) -> None:
    """Compare ``path`` with the SHA-256 it should have, when something says (`_expected_sha256`)."""
    expected = _expected_sha256(path)
    if expected is None:
        return
    actual = _sha256(path)
    if actual != expected[0]:
        raise _damaged(path, f"is corrupt or truncated: its SHA-256 is {actual}, {expected[1]} says {expected[0]}")


def _damaged(path: Path, reason: str, *, what: str = "Checkpoint file") -> CheckpointIntegrityError:
    """The error for a damaged file: which, what is wrong, how to repair it (`_repair_hint`)."""
    repair = _repair_hint(Path(path))
    return CheckpointIntegrityError(f"{what} {path} {reason}. {repair}", path=Path(path), reason=reason,
                                    repair=repair)


def _repair_hint(path: Path) -> str:
    """How to repair a damaged file, by where it is: the Hub cache, the package, a folder."""
    hub = _hub_location(path)
    if hub is not None:
        repo, snapshot = hub
        blob = f" and the blob it links to, {path.resolve()}" if path.is_symlink() else ""
        return (f"To repair the Hub cache, delete the snapshot folder {snapshot}{blob}, or download the files again: "
                f"mitra_sklearn.load_model({repo!r}, force_download=True) (or `hf download {repo} --force-download`)")
    if path.parent.parent == SHIPPED_CHECKPOINTS_DIR:
        return ("It is part of a checkpoint shipped inside the package: reinstall mitra-sklearn "
                "(pip install --force-reinstall --no-deps mitra-sklearn) to restore it")
    if path.name.endswith(".sha256"):
        return (f"Delete {path} (the file it checks is then loaded unchecked), or write it again from a good copy "
                "with mitra_sklearn.checkpoint.write_checksums(<folder>)")
    return (f"Save the checkpoint again (mitra_sklearn.save_model) or copy the folder {path.parent} again from where "
            "it came from")


def _hub_location(path: Path) -> tuple[str, Path] | None:
    """(repo id, snapshot folder) of a file in a Hub cache (``models--owner--name/snapshots/<commit>/``)."""
    snapshot = path.parent
    repo_dir = snapshot.parent.parent
    if snapshot.parent.name != "snapshots" or not repo_dir.name.startswith("models--"):
        return None
    return repo_dir.name.removeprefix("models--").replace("--", "/"), snapshot


# ---------------------------------------------------------------------------- digests and consistent reads
@dataclass(frozen=True)
class _Digest:
    """A file's SHA-256, the identity the file had when hashed, and when hashing started."""

    identity: tuple[int, ...]
    sha256: str
    hashed_at_ns: int

    def holds_for(self, stat: os.stat_result) -> bool:
        """Whether the file (``stat``) is the one hashed: same identity, and last changed long
        enough before hashing that a change since would have moved its timestamps."""
        settled = max(stat.st_mtime_ns, stat.st_ctime_ns) < self.hashed_at_ns - _TIMESTAMP_SLACK_NS
        return settled and _stat_identity(stat) == self.identity


def _stat_identity(stat: os.stat_result) -> tuple[int, ...]:
    # The inode changes with every rename into place; ctime with every write, even one that keeps
    # size and mtime (which a writer can set back).
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _sha256(path: Path) -> str:
    """SHA-256 of a file's content, reused while `_Digest.holds_for` the file."""
    key = os.path.realpath(path)
    entry = _DIGESTS.get(key)
    if entry is not None and entry.holds_for(os.stat(key)):
        return entry.sha256
    started = time.time_ns()
    digest = hashlib.sha256()
    with open(key, "rb") as handle:
        before = os.fstat(handle.fileno())
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if _stat_identity(os.stat(key)) == _stat_identity(before):  # not replaced or rewritten while read
        _DIGESTS[key] = _Digest(_stat_identity(before), digest.hexdigest(), started)
    return digest.hexdigest()


def _identities(files: CheckpointFiles) -> tuple:
    """Identities of a checkpoint's files and checksum files (None for an absent one)."""
    paths = (files.config_path, files.weights_path)
    identities = []
    for path in (*paths, *(p.with_name(p.name + ".sha256") for p in paths)):
        try:
            identities.append(_stat_identity(os.stat(path)))
        except OSError:
            identities.append(None)
    return tuple(identities)


def _read_consistently(files: CheckpointFiles, read: Callable[[], T]) -> T:
    """``read()`` a checkpoint; again when its files were replaced meanwhile (another process saving
    it), so that a result (or an integrity error) never mixes two versions of the files."""
    for _ in range(_READ_ATTEMPTS):
        before = _identities(files)
        try:
            result = read()
        except CheckpointIntegrityError:
            if _identities(files) == before:
                raise
            continue
        if _identities(files) == before:
            return result
    raise CheckpointIntegrityError(
        f"Checkpoint {files.weights_path.parent} changed while it was read, {_READ_ATTEMPTS} times: another process "
        "is writing it. Load it again once that process is done.", path=files.weights_path,
        reason="changed while it was read")


# ---------------------------------------------------------------------------- writing
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def write_files_atomically(folder: str | os.PathLike, contents: Iterable[tuple[str, bytes]], *,
                           remove: Iterable[str] = ()) -> list[Path]:
    """Write files into ``folder`` so that none is ever seen half-written under its name.

    Each file is written to a hidden temporary name in ``folder`` and flushed to the disk; once
    every one is complete, the files named in ``remove`` are deleted and the new ones renamed
    into place, in the order given. ``contents`` may be a generator: one file's bytes are held
    at a time.

    Parameters
    ----------
    folder : path-like
        Created if missing.
    contents : iterable of (str, bytes)
        File names (inside ``folder``) and their bytes.
    remove : iterable of str, optional
        Files to delete before the renames (e.g. checksums of older files).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    CheckpointWriteError
        When the disk is full or the folder is not writable (or any other write error): the
        temporary files are removed, and the folder keeps what it held.
    """
    folder = Path(folder)
    written: list[tuple[Path, Path]] = []  # (temporary, final)
    current, size, renamed = folder, 0, 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in contents:
            current, size = folder / name, len(data)
            # A name of its own per writer; mode 0o666 less the umask, as an ordinary file (mkstemp's
            # 0o600 would hide a shared checkpoint from the other users).
            tmp = folder / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
            handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            written.append((tmp, current))
            with os.fdopen(handle, "wb") as out:
                _write_bytes(out, data)
                out.flush()
                os.fsync(out.fileno())
        for name in remove:
            (folder / name).unlink(missing_ok=True)
        for tmp, final in written:
            current = final
            os.replace(tmp, final)
            renamed += 1
    except BaseException as err:
        for tmp, _ in written[renamed:]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(err, OSError):
            raise _write_error(err, current, size, replaced=[final.name for _, final in written[:renamed]]) from err
        raise
    _sync_folder(folder)
    return [final for _, final in written]


def _write_bytes(handle: BinaryIO, data: bytes) -> None:
    """The one place where file contents are written (tests inject a full disk here)."""
    handle.write(data)


def _sync_folder(folder: Path) -> None:
    """Flush the renames in ``folder`` to the disk (POSIX; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _write_error(err: OSError, path: Path, size: int, *, replaced: list[str]) -> CheckpointWriteError:
    """A write error that says what happened, what to do, and that nothing half-written was left."""
    folder = path if path.is_dir() else path.parent
    if err.errno in _DISK_FULL:
        free = _free_bytes(folder)
        detail = (f"the disk is full ({err.strerror or err}; {_mib(free)} free there, {_mib(size)} needed for "
                  f"{path.name}). Free space on that disk, or write to a folder on another disk")
    elif err.errno in _NOT_WRITABLE:
        detail = (f"{folder} is not writable ({err.strerror or err}). Write to a folder this user can write to, "
                  "on a disk that is not mounted read-only")
    else:
        detail = str(err)
    left = (f"Only {', '.join(replaced)} had been replaced." if replaced
            else "Nothing was replaced: the folder keeps what it held, and no half-written file is left.")
    error = CheckpointWriteError(err.errno or errno.EIO, f"Could not write {path}: {detail}. {left}")
    error.filename = str(path)
    return error


def _free_bytes(folder: Path) -> int | None:
    with contextlib.suppress(OSError):
        return shutil.disk_usage(folder).free
    return None


def _mib(n_bytes: int | None) -> str:
    return "unknown" if n_bytes is None else f"{n_bytes / 2**20:,.1f} MiB"
