"""Shared scikit-learn machinery of MitraClassifier and MitraRegressor."""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from ._inference import SUPPORT_CACHE_MODES, InferenceRunner, cpu_seconds, cpu_time_warning, map_on_devices
from ._retrieval import Neighbourhood, build_local_support
from ._runtime import RuntimeState, model_key, warn_once
from ._version import __version__
from .catalog import checkpoint_defaults
from .checkpoint import (
    CheckpointFiles,
    CheckpointInfo,
    checkpoint_info,
    declared_defaults,
    load_config,
    load_model_files,
    resolve_checkpoint,
    resolve_default_checkpoint,
    resolve_pinned,
    shipped_checkpoints,
    shipped_default,
)
from .config import MitraConfig, Task
from .devices import member_devices, resolve_devices, resolve_precision, torch_threads
from .ensemble import MAX_SEED, EnsembleMember
from .exceptions import CheckpointNotFoundError
from .finetune import RECIPES, FineTuneRecipe, fine_tune, fine_tune_recipe
from .model import MitraModel, SupportCache
from .preprocessing import TabularEncoder
from .progress import progress_bar, report

__all__ = ["MitraEstimatorBase"]

#: What a member's raw outputs become: ``(member, outputs, context) -> per-row array``.
MemberOutput = Callable[[EnsembleMember, np.ndarray, Any], np.ndarray]


class MitraEstimatorBase(BaseEstimator, metaclass=ABCMeta):
    """Fit stores the encoded training set; predict runs every ensemble member over it.

    Abstract: `MitraClassifier` and `MitraRegressor` supply the task (``_task``,
    `_encode_targets`, `_make_task`) and the predict methods.
    """

    _task: Task  # set by subclasses

    _parameter_constraints: dict = {
        "checkpoint": [str, os.PathLike, None, list, tuple],  # entries checked by _resolve_checkpoints
        "n_estimators": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "device": [str, torch.device, list, tuple],  # entries checked by devices.check_device_parameter
        "inference_precision": [StrOptions({"auto", "float32", "bfloat16", "float16", "float64"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_support_rows": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "max_features": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "support_selection": [StrOptions({"random", "nearest"})],
        "softmax_temperature": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "support_cache": [StrOptions(set(SUPPORT_CACHE_MODES))],
        "categorical_features": ["array-like", StrOptions({"auto"}), None],
        "fine_tune": ["boolean", StrOptions(set(RECIPES))],
        "fine_tune_steps": [Interval(Integral, 1, None, closed="left")],
        "fine_tune_lr": [Interval(Real, 0, None, closed="neither")],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Interval(Integral, None, -1, closed="right"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        checkpoint: str | os.PathLike | list[str | os.PathLike] | None = None,
        *,
        n_estimators: int | str = "auto",
        device: str | torch.device | list[str | torch.device] = "auto",
        inference_precision: str = "auto",
        batch_size: int | str = "auto",
        max_support_rows: int | str = "auto",
        max_features: int | str = "auto",
        support_selection: str = "random",
        softmax_temperature: float | str = "auto",
        support_cache: str = "predict",
        categorical_features: Any = "auto",
        fine_tune: bool | str = False,
        fine_tune_steps: int = 50,
        fine_tune_lr: float = 1e-5,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int = False,
    ) -> None:
        self.checkpoint = checkpoint
        self.n_estimators = n_estimators
        self.device = device
        self.inference_precision = inference_precision
        self.batch_size = batch_size
        self.max_support_rows = max_support_rows
        self.max_features = max_features
        self.support_selection = support_selection
        self.softmax_temperature = softmax_temperature
        self.support_cache = support_cache
        self.categorical_features = categorical_features
        self.fine_tune = fine_tune
        self.fine_tune_steps = fine_tune_steps
        self.fine_tune_lr = fine_tune_lr
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _encode_targets(self, y: Any) -> np.ndarray:
        """Validate ``y`` and return what the task trains on (class indices or floats)."""

    @abstractmethod
    def _make_task(self, config: MitraConfig) -> Any:
        """The task object (labels in, predictions out) for a checkpoint's head."""

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MitraEstimatorBase:
        """Store the training set as the in-context support set (and fine-tune if asked).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Training features: numbers, booleans, categories or strings; NaN and None allowed.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, counted as copies of the rows (scikit-learn's meaning):
            rows of weight 0 are left out as if absent, and every ensemble member draws its
            support rows in proportion to the weights (``round(sum(sample_weight))`` rows, at
            least one per weighted row, at most ``max_support_rows``; integer weights give
            exactly the support set of the repeated rows). The imputation means are weighted,
            and so is the fine-tuning loss. Not supported with ``support_selection='nearest'``
            on more than ``max_support_rows`` rows.

        Returns
        -------
        self
            The fitted estimator.
        """
        _check_2d(X)
        X, y = validate_data(self, X, y, skip_check_array=True)
        _check_not_empty(X)
        check_consistent_length(X, y)
        X, y, weights = self._positive_weight_rows(X, y, sample_weight)
        with torch_threads(self.n_jobs) as threads:
            return self._fit(X, y, weights, threads)

    def _positive_weight_rows(self, X: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, np.ndarray | None]:
        """``X`` and ``y`` without their zero-weight rows, and the positive weights (None: unweighted)."""
        if sample_weight is None:
            return X, y, None
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not np.any(weights > 0):
            raise ValueError("sample_weight is zero for every row: weights must contain at least one non-zero number.")
        keep = np.flatnonzero(weights > 0)
        if len(keep) < len(weights):  # weight 0 = the row is absent
            X, y, weights = _safe_indexing(X, keep), _safe_indexing(y, keep), weights[keep]
        # Unit weights are no weights: the very same fit as without them.
        return X, y, None if np.all(weights == 1.0) else weights

    def _fit(self, X: Any, y: Any, weights: np.ndarray | None, threads: int) -> MitraEstimatorBase:
        started = time.perf_counter()
        verbose = bool(self.verbose)
        name = type(self).__name__
        # Checkpoint and device first: if they fail, a fitted estimator keeps its whole old state.
        devices = resolve_devices(self.device)
        device = devices[0]
        precision = resolve_precision(self.inference_precision, device, inference=True)
        resolved = self._resolve_checkpoints()
        files, checkpoint, _ = resolved[0]
        configs = tuple(load_config(entry[0]) for entry in resolved)
        config = configs[0]
        self._check_checkpoint_fits(config, checkpoint)
        self._check_same_head(configs, resolved)
        if self.fine_tune and len(resolved) > 1:
            raise ValueError(
                f"fine_tune={self.fine_tune!r} needs one checkpoint, but the members come from {len(resolved)}: "
                f"{', '.join(reference for _, reference, _ in resolved)} (a list, or a checkpoint's declared "
                "ensemble_with partners). Fine-tune one of them alone."
            )
        infos = tuple(checkpoint_info(*entry) for entry in resolved)
        report(f"{name}: checkpoint {' + '.join(map(str, infos))} (dim {config.dim}, {config.n_layers} layers, "
               f"{config.n_heads} heads) on {', '.join(map(str, devices))}, {str(precision).replace('torch.', '')}, "
               f"{threads} torch thread(s)", enabled=verbose)
        self.device_, self.checkpoint_, self.checkpoint_info_, self.config_ = device, checkpoint, infos[0], config
        self.checkpoint_infos_, self.configs_ = infos, configs
        self.devices_ = devices

        encoding = time.perf_counter()
        y_encoded = self._encode_targets(y)
        self._resolve_defaults(checkpoint, files, n_weighted_rows=None if weights is None else len(weights))
        self.encoder_ = TabularEncoder(categorical_features=self.categorical_features)
        X_encoded = self.encoder_.fit_transform(X, sample_weight=weights)
        self.task_ = self._make_task(self.config_)
        report(f"{name}: encoded {X_encoded.shape[0]} training rows x {self.n_features_in_} columns into "
               f"{X_encoded.shape[1]} features ({int(self.encoder_.categorical_mask_.sum())} categorical, "
               f"{self.n_features_in_ - len(self.encoder_.kept_columns_)} constant dropped)"
               + ("" if weights is None else ", weighted") + f" in {time.perf_counter() - encoding:.2f} s",
               enabled=verbose)

        rng = check_random_state(self.random_state)
        self.members_ = self.task_.plan_members(
            self._n_estimators, y_encoded, X_encoded.shape[1], rng,
            max_support_rows=self.max_support_rows_, max_features=self.max_features_,
            category_ranks=self.encoder_.category_ranks(), sample_weight=weights,
        )
        self.n_estimators_ = len(self.members_)
        self._warn_about_extra_members(X_encoded.shape[1])
        self.X_support_ = X_encoded
        self.y_support_ = y_encoded
        self.local_support_ = None
        if self.support_selection == "nearest" and len(X_encoded) > self.max_support_rows_:
            seed = int(rng.randint(MAX_SEED))  # drawn only here: other draws stay as they are
            self.local_support_ = build_local_support(X_encoded, self.max_support_rows_, seed)
        self._reset_runtime_state()
        # Resolved and checked above: not again when the models load.
        self._runtime.files = {index: entry[0] for index, entry in enumerate(resolved)}
        member = self.members_[0]
        support_rows = len(X_encoded) if member.support_rows is None else len(member.support_rows)
        report(f"{name}: {self.n_estimators_} ensemble member(s), each reading "
               + (f"the support set of its query rows' nearest of {len(self.local_support_.centres)} centres"
                  if self.local_support_ is not None else f"{support_rows} support rows")
               + f" x {len(member.feature_order)} features", enabled=verbose)

        self._fine_tune_if_asked(X_encoded, y_encoded, weights, precision, rng, verbose)
        if not self._is_trivial():
            loading = time.perf_counter()
            for device in dict.fromkeys(self.devices_):  # load now: a broken checkpoint fails in fit, not in predict
                for index in range(len(infos)):
                    self._inference_model(device, index)
            if self.support_cache == "fit":
                self._support_caches()
            report(f"{name}: model ready in {time.perf_counter() - loading:.2f} s"
                   + (" (support sets encoded)" if self.support_cache == "fit" else ""), enabled=verbose)
        report(f"{name}: fit done in {time.perf_counter() - started:.2f} s; predict runs {self.n_estimators_} "
               "member(s) over every query row (its progress bar shows the time left)", enabled=verbose)
        return self

    def get_embeddings(self, X: Any) -> np.ndarray:
        """Each ensemble member's embedding of each row: what its output head reads.

        For every member, the rows of ``X`` run through the model against that member's support
        set (as in `predict`), and the last layer's normalised label cell of each row is kept:
        a vector of the checkpoint's width that the output head maps to the logits (or the
        regression output) linearly. Useful as features for another model, for clustering or
        for nearest-neighbour search. Each member reads its own view (feature order, class
        order or mirrored target, support rows), so the members' vectors are not aligned:
        keep them side by side (``embeddings.transpose(1, 0, 2).reshape(n_samples, -1)``) or
        take one member, rather than averaging them.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Rows to embed, with the columns seen in ``fit``. Rows of the training set may be
            given; each then also sits in the support set it is read against, so its
            embedding knows its own target.

        Returns
        -------
        ndarray of shape (n_members, n_samples, dim)
            Float32; ``n_members`` is ``n_estimators_`` and ``dim`` the checkpoint's width
            (``config_.dim``).
        """
        X_encoded = self._encode_query(X)
        widths = {config.dim for config in self._configs()}
        if len(widths) > 1:
            raise ValueError(
                "get_embeddings needs members of one width, but the checkpoints have widths "
                f"{sorted(widths)}: fit an estimator with one of them for embeddings."
            )
        with torch_threads(self.n_jobs):
            embeddings = self._run_members(X_encoded, lambda member, outputs, context: outputs, embeddings=True)
        return np.stack(embeddings).astype(np.float32, copy=False)

    def _fine_tune_if_asked(self, X_encoded: np.ndarray, y_encoded: np.ndarray, weights: np.ndarray | None,
                            precision: torch.dtype, rng: np.random.RandomState, verbose: bool) -> None:
        """``fine_tuned_weights_`` and ``fine_tune_losses_``: None, or the result of ``fine_tune``."""
        self.fine_tuned_weights_ = None
        self.fine_tune_losses_ = None
        if self.fine_tune and not self._is_trivial():
            result = fine_tune(
                self._pretrained_model(),
                X_encoded,
                y_encoded,
                task=self.task_,
                members=self.members_,
                recipe=self._fine_tune_recipe(len(y_encoded)),
                device=self.device_,
                # float16 gradients would need loss scaling: tune in float32 then (bf16 needs none).
                dtype=torch.bfloat16 if precision == torch.bfloat16 else torch.float32,
                rng=rng,
                max_support_rows=self.max_support_rows_,
                max_query_rows=1024 if self.batch_size == "auto" else self.batch_size,
                stratify=self.task_.stratify,
                verbose=verbose,
                sample_weight=weights,
            )
            self.fine_tuned_weights_ = result.state_dict
            self.fine_tune_losses_ = np.asarray(result.validation_losses)

    def _warn_about_extra_members(self, n_features: int) -> None:
        """Feature subsets can need more members than n_estimators: say so (predict time grows with them)."""
        n_subsets = -(-n_features // self.max_features_)
        if n_subsets > self._n_estimators:
            warnings.warn(
                f"The table has {n_features} (encoded) features, more than max_features={self.max_features_}: each "
                f"ensemble member reads a subset of at most max_features features, and covering every feature takes "
                f"{self.n_estimators_} members instead of n_estimators={self._n_estimators} (predict time grows with "
                "the member count; see n_estimators_). Raise max_features, or select features first, for fewer.",
                UserWarning,
                stacklevel=5,
            )

    def _resolve_defaults(self, checkpoint: str, files: CheckpointFiles, n_weighted_rows: int | None) -> None:
        """``max_support_rows_``, ``max_features_``, ``softmax_temperature_`` and the members asked
        for: the parameters, or for "auto" the checkpoint's own (`catalog.checkpoint_defaults`);
        and the checkpoint's classes per member."""
        defaults = checkpoint_defaults(checkpoint, declared_defaults(files))
        auto_rows = defaults.limits.support_rows_for(self._n_classes())
        self.max_support_rows_ = auto_rows if self.max_support_rows == "auto" else self.max_support_rows
        self.max_features_ = defaults.limits.features if self.max_features == "auto" else self.max_features
        self.softmax_temperature_ = (defaults.softmax_temperature if self.softmax_temperature == "auto"
                                     else float(self.softmax_temperature))
        self._max_classes_per_member = defaults.max_classes_per_member  # the checkpoint's class-group size
        # Members asked for (``n_estimators_`` adds those that feature subsets or class groups need).
        self._n_estimators = defaults.n_estimators if self.n_estimators == "auto" else self.n_estimators
        if (self.support_selection == "nearest" and n_weighted_rows is not None
                and n_weighted_rows > self.max_support_rows_):
            raise ValueError(
                "sample_weight is not supported with support_selection='nearest' when the training set has more "
                f"than max_support_rows={self.max_support_rows_} rows; use support_selection='random'."
            )

    def _fine_tune_recipe(self, n_rows: int) -> FineTuneRecipe:
        """``fine_tune=True``: ``fine_tune_steps`` and ``fine_tune_lr`` with this package's settings;
        a recipe name: that recipe, for this task and table."""
        if self.fine_tune is True:
            return FineTuneRecipe(steps=self.fine_tune_steps, learning_rate=self.fine_tune_lr)
        return fine_tune_recipe(self.fine_tune, n_classes=self._n_classes(), n_rows=n_rows)

    def _n_classes(self) -> int | None:
        """Classes of the fitted target (None for regression); set by `_encode_targets`."""
        return None

    def _resolve_checkpoints(self) -> list[tuple[CheckpointFiles, str, str]]:
        """Every checkpoint the members come from: (files, reference to record, why it was chosen).

        ``checkpoint=None`` follows the default rule (`resolve_default_checkpoint`), warning once
        per process and task when the shipped checkpoint stands in for the official one; an
        explicit checkpoint (or each entry of a list) is used as given, or its error raised
        (never a fallback). Each is followed by the partners its ``config.json`` declares
        (``"ensemble_with"``); a checkpoint named twice counts once.
        """
        name = type(self).__name__
        if self.checkpoint is None:
            default = resolve_default_checkpoint(self._task, estimator=name)
            if default.warning is not None:
                warn_once(("default checkpoint", self._task), default.warning, stacklevel=5)
            chosen = [(default.files, default.reference, default.reason)]
        else:
            entries = list(self.checkpoint) if isinstance(self.checkpoint, (list, tuple)) else [self.checkpoint]
            if not entries:
                raise ValueError("checkpoint is an empty list: give at least one checkpoint, or None for the default.")
            for entry in entries:
                if not isinstance(entry, (str, os.PathLike)):
                    raise TypeError(f"checkpoint entries must be str or path-like, got {type(entry).__name__} "
                                    f"{entry!r}.")
            chosen = [self._resolve_reference(os.fspath(entry), "the checkpoint argument") for entry in entries]
        resolved: dict[str, tuple[CheckpointFiles, str, str]] = {}
        for files, reference, reason in chosen:
            resolved.setdefault(reference, (files, reference, reason))
            declared = declared_defaults(files)
            for partner in () if declared is None else declared.ensemble_with:
                located = _partner_reference(partner, files)
                if located not in resolved:
                    resolved[located] = self._resolve_reference(
                        located, f"the ensemble partner that {reference!r} declares (ensemble_with)")
        return list(resolved.values())

    def _resolve_reference(self, reference: str, reason: str) -> tuple[CheckpointFiles, str, str]:
        # A local folder is stored as an absolute path, so the fitted estimator does not depend
        # on the working directory.
        if os.path.isdir(reference) and not _is_shipped(reference):
            reference = os.path.abspath(reference)
        return resolve_checkpoint(reference, task=self._task, estimator=type(self).__name__), reference, reason

    def _check_same_head(self, configs: tuple[MitraConfig, ...], resolved: list[tuple[CheckpointFiles, str, str]]
                         ) -> None:
        """Members of several checkpoints share one plan and one way of reading their outputs: every
        checkpoint needs the first one's task and output head; width and depth may differ."""
        for other, (_, reference, _) in zip(configs[1:], resolved[1:]):
            if (other.task, other.dim_output) != (configs[0].task, configs[0].dim_output):
                raise ValueError(
                    f"The ensemble members come from several checkpoints, which must all have the same task and "
                    f"output head (dim_output): {resolved[0][1]!r} has {configs[0].task.value} with dim_output "
                    f"{configs[0].dim_output}, {reference!r} has {other.task.value} with dim_output {other.dim_output}."
                )

    def _check_checkpoint_fits(self, config: MitraConfig, checkpoint: str) -> None:
        if config.task is not self._task:
            other = "MitraRegressor" if config.task is Task.REGRESSION else "MitraClassifier"
            raise ValueError(
                f"Checkpoint {checkpoint!r} was trained for {config.task.value}; "
                f"{type(self).__name__} needs a {self._task.value} checkpoint (use {other} with it, or "
                f"checkpoint=None for the default {self._task.value} checkpoint)."
            )

    def _is_trivial(self) -> bool:
        """True when predictions need no model (e.g. a constant regression target)."""
        return False

    # ------------------------------------------------------------------ models at prediction time
    def _reset_runtime_state(self, shared: bool = False) -> None:
        # Loaded weights and cached support sets live in one holder object, so that predicting
        # does not change the estimator's __dict__ and pickles stay weight-free. An unpickled copy
        # (a Dask or joblib worker's) shares encoded support sets with the other copies in its process.
        self._runtime = RuntimeState(shared=shared)

    def _devices(self) -> list[torch.device]:
        """The devices of the members, in order (``devices_``; estimators fitted before it: ``device_``)."""
        return self.__dict__.get("devices_") or [self.device_]

    def _checkpoint_infos(self) -> tuple[CheckpointInfo | None, ...]:
        """What fit recorded of each checkpoint (``checkpoint_infos_``; estimators fitted before it:
        ``checkpoint_info_``, or None when pickled by mitra-sklearn 0.2 or older)."""
        return self.__dict__.get("checkpoint_infos_") or (self.__dict__.get("checkpoint_info_"),)

    def _configs(self) -> tuple[MitraConfig, ...]:
        """The shape of each checkpoint (``configs_``; estimators fitted before it: ``config_`` for all)."""
        return self.__dict__.get("configs_") or (self.config_,) * len(self._checkpoint_infos())

    def _checkpoint_reference(self, checkpoint: int) -> str:
        """How checkpoint number ``checkpoint`` was referred to (the first: ``checkpoint_``, also
        recorded by estimators pickled before ``checkpoint_infos_``)."""
        return self.checkpoint_ if checkpoint == 0 else self._checkpoint_infos()[checkpoint].reference

    def _member_checkpoint(self, member_index: int) -> int:
        """The index of the checkpoint whose model runs member ``member_index``: the checkpoints in turn."""
        return member_index % len(self._checkpoint_infos())

    def _pinned_files(self, checkpoint: int = 0) -> CheckpointFiles:
        """The files of the weights recorded in fit (also after unpickling elsewhere), never what resolves now."""
        if checkpoint in self._runtime.files:
            return self._runtime.files[checkpoint]
        name = type(self).__name__
        info = self._checkpoint_infos()[checkpoint]
        if info is None:  # pickled by mitra-sklearn 0.2 or older: only the reference was recorded
            return resolve_checkpoint(self.checkpoint_, task=self._task, estimator=name)
        return resolve_pinned(info, task=self._task, estimator=name)

    def _pretrained_model(self, device: torch.device | None = None, files: CheckpointFiles | None = None,
                          checkpoint: int = 0) -> MitraModel:
        """The weights of checkpoint number ``checkpoint`` recorded in fit (`_pinned_files`, or
        ``files`` found by it) on ``device``."""
        files = files or self._pinned_files(checkpoint)
        model = load_model_files(files, device=device or self.device_, use_cache=True)
        self._check_config(model.config, files, checkpoint)
        return model

    def _check_config(self, config: MitraConfig, files: CheckpointFiles, checkpoint: int = 0) -> None:
        recorded = self._configs()[checkpoint]
        if config != recorded:
            raise CheckpointNotFoundError(
                f"This {type(self).__name__} was fitted with checkpoint {self._checkpoint_reference(checkpoint)!r} "
                f"of config {recorded}, "
                f"but {files.config_path} now says {config}; refit the estimator, or put the original checkpoint back."
            )

    def _inference_model(self, device: torch.device | None = None, checkpoint: int = 0) -> MitraModel:
        """The model of checkpoint number ``checkpoint`` used to predict on ``device`` (default
        ``device_``): pretrained or fine-tuned, in the requested precision; one per process for
        the same weights (`_runtime`)."""
        device = device or self.device_
        precision = resolve_precision(self.inference_precision, device, inference=True)
        if checkpoint not in self._runtime.files:
            # First use by an unpickled copy: the recorded checkpoint must still be where it was, even
            # when the process holds a model with its SHA-256 (a pickle never silently outlives its files).
            files = self._pinned_files(checkpoint)
            self._check_config(load_config(files), files, checkpoint)
            self._runtime.files[checkpoint] = files
        files = self._runtime.files[checkpoint]

        def build() -> MitraModel:
            model = self._pretrained_model(device, files, checkpoint)
            if self.fine_tuned_weights_ is not None or precision == torch.float64:
                model = _copy_model(model, self.fine_tuned_weights_)
                if precision == torch.float64:
                    model = model.double()
            return model.eval()

        key = self._model_key(device, precision, checkpoint)
        return self._runtime.model(device, precision, key, build, checkpoint)

    def _model_key(self, device: torch.device, precision: torch.dtype, checkpoint: int = 0) -> tuple | None:
        """The process-level key of an inference model (None: not shared, e.g. no SHA-256 recorded)."""
        info = self._checkpoint_infos()[checkpoint]
        tuned = self.fine_tuned_weights_
        if tuned is not None and not self._runtime.shared:
            return None  # the fitting process keeps its own copy (no need to hash the weights)
        if tuned is not None and self._runtime.tuned_digest is None:
            self._runtime.tuned_digest = _weights_digest(tuned)
        return model_key(None if info is None else info.sha256, self._runtime.tuned_digest, precision, device)

    def _runner(self, device: torch.device | None = None, checkpoint: int = 0) -> InferenceRunner:
        device = device or self.device_
        precision = resolve_precision(self.inference_precision, device, inference=True)
        return InferenceRunner(
            model=self._inference_model(device, checkpoint),
            device=device,
            dtype=precision,
            batch_size=self.batch_size,
            support_cache=self.support_cache,
        )

    def _member_runners(self) -> list[InferenceRunner]:
        """The runner of every member: its device's (``device`` list, in turn) model of its checkpoint."""
        devices = member_devices(len(self.members_), self._devices())
        places = [(device, self._member_checkpoint(index)) for index, device in enumerate(devices)]
        runners: dict[tuple[str, int], InferenceRunner] = {}
        for device, checkpoint in places:
            if (str(device), checkpoint) not in runners:
                runners[str(device), checkpoint] = self._runner(device, checkpoint)
        return [runners[str(device), checkpoint] for device, checkpoint in places]

    def _member_support(self, member: EnsembleMember) -> tuple[np.ndarray, np.ndarray, Any]:
        X, y = member.support(self.X_support_, self.y_support_)
        labels, context = self.task_.support_labels(member, y)
        return member.view(X), labels, context

    def _support_caches(self) -> dict[int, SupportCache]:
        """Encoded support sets kept between predict calls (support_cache='fit')."""
        # (Re)load the models first, which drops caches of another model.
        runners = self._member_runners()
        if self._runtime.caches is None:
            supports = self._cacheable_supports()
            self._warn_if_slow_on_cpu(0, None if self.local_support_ is None else self.local_support_.everywhere())
            # Memory is checked per device, for all the support sets that device holds.
            on_device = {str(runner.device): runner for runner in runners}
            shapes = [(str(runners[i].device), x.shape) for (i, _), (x, _) in supports.items()]
            if not all(runner.caches_fit([shape for where, shape in shapes if where == name])
                       for name, runner in on_device.items()):
                warnings.warn(
                    f"support_cache='fit' needs more than half the free memory on {self.device_} for the "
                    f"{len(supports)} encoded support sets of {len(self.members_)} members: caching each predict "
                    "call's support sets instead. Lower n_estimators or max_support_rows to keep them.",
                    UserWarning,
                    stacklevel=3,
                )
                self._runtime.caches = {}
            else:
                self._runtime.caches = {key: runners[key[0]].encode(x, labels) for key, (x, labels) in supports.items()}
        return self._runtime.caches

    def _cacheable_supports(self) -> dict[tuple[int, int | None], tuple[np.ndarray, np.ndarray]]:
        """What support_cache='fit' encodes, by (member index, neighbourhood): each member's support set,
        or with local support sets each member's view of every neighbourhood (neighbourhood None: none)."""
        if self.local_support_ is None:
            return {(i, None): self._member_support(member)[:2] for i, member in enumerate(self.members_)}
        supports = {}
        for i, member in enumerate(self.members_):
            for cluster, rows in enumerate(self.local_support_.support_rows):
                labels, _ = self.task_.support_labels(member, self.y_support_[rows])
                supports[i, cluster] = member.view(self.X_support_[rows]), labels
        return supports

    def _encode_query(self, X: Any) -> np.ndarray:
        """Check a predict-time ``X`` (fitted estimator, 2-D, columns seen in fit) and encode it."""
        check_is_fitted(self)
        _check_2d(X)
        X = validate_data(self, X, reset=False, skip_check_array=True)
        _check_not_empty(X)
        return self.encoder_.transform(X)

    def _predict_members(self, X: Any) -> list[np.ndarray]:
        """Every member's prediction for ``X`` (label-id probabilities or values in user units)."""
        X_encoded = self._encode_query(X)
        with torch_threads(self.n_jobs):
            return self._run_members(X_encoded)

    def _run_members(self, X_encoded: np.ndarray, member_output: MemberOutput | None = None,
                     embeddings: bool = False) -> list[np.ndarray]:
        """Each member's ``member_output`` (default: the task's ``member_prediction``) for the rows;
        with ``embeddings`` it receives the rows' embeddings instead of the head's outputs."""
        member_output = member_output or self.task_.member_prediction
        runners = self._member_runners()  # models loaded before any thread
        devices = [runner.device for runner in runners]
        local = self.local_support_ is not None
        contexts = self.local_support_.assign(X_encoded) if local else None
        self._warn_if_slow_on_cpu(len(X_encoded), contexts)
        shared = self._runtime.shared and self.support_cache != "off"
        caches = self._support_caches() if self.support_cache == "fit" and not shared else {}
        progress = self._progress(len(X_encoded))

        def run(index: int, bar: Any) -> np.ndarray:
            member, runner = self.members_[index], runners[index]
            if local:
                encoded = {cluster: cache for (i, cluster), cache in caches.items() if i == index}
                return self._predict_local(runner, index, X_encoded, contexts, bar, member_output, encoded, embeddings)
            x_support, labels, context = self._member_support(member)
            cache = caches.get((index, None)) or self._shared_support(runner, index, x_support, labels)
            outputs = runner.predict(x_support, labels, member.view(X_encoded), cache=cache, progress=bar,
                                     embeddings=embeddings)
            return member_output(member, outputs, context)

        # Members on different accelerators run at once; results are combined in member order.
        predictions = map_on_devices(run, devices, progress)
        if progress is not None:
            progress.close()
        return predictions

    def _warn_if_slow_on_cpu(self, n_query: int, contexts: list[Neighbourhood] | None) -> None:
        """Once per process: say how long a call will take on the CPU (`cpu_time_warning`: a large
        model, or large or many support sets), and what is faster."""
        if self.device_.type != "cpu":
            return
        passes = []
        for member in self.members_:
            n_features = len(member.feature_order)
            if contexts is not None:
                passes += [(len(support), len(queries), n_features) for queries, support in contexts]
            else:
                n_support = len(self.X_support_) if member.support_rows is None else len(member.support_rows)
                passes.append((n_support, n_query, n_features))
        # With checkpoints of several shapes, the costliest one's estimate (an upper bound).
        configs, threads = self._configs(), torch.get_num_threads()
        costliest = max(range(len(configs)), key=lambda i: cpu_seconds(configs[i], passes, threads))
        info = self._checkpoint_infos()[costliest]
        warning = cpu_time_warning(
            configs[costliest], passes, threads, estimator=type(self).__name__,
            doing=f"predicts {n_query:,} rows" if n_query else "encodes its support sets in fit (support_cache='fit')",
            n_members=len(self.members_),
            n_neighbourhoods=None if contexts is None else len({c.cluster for c in contexts}),
            checkpoint=self._checkpoint_reference(costliest),
            n_parameters=None if info is None else info.n_parameters,
            shipped=shipped_default(self._task),
        )
        if warning is not None:
            warn_once(*warning, stacklevel=5)

    def _predict_local(
        self, runner: InferenceRunner, index: int, X_encoded: np.ndarray,
        contexts: list[Neighbourhood], progress: Any, member_output: MemberOutput,
        encoded: dict[int, SupportCache] | None = None, embeddings: bool = False,
    ) -> np.ndarray:
        """Member ``index``'s predictions where each group of queries has its own nearest-rows support
        set (``encoded``: the member's neighbourhoods encoded in fit, by neighbourhood)."""
        member = self.members_[index]
        encoded = encoded or {}
        labelled = [self.task_.support_labels(member, self.y_support_[rows]) for _, rows in contexts]
        supports = [None if n.cluster in encoded else member.view(self.X_support_[n[1]]) for n in contexts]
        caches = [encoded.get(n.cluster) or self._shared_support(runner, index, x, labels)
                  for n, x, (labels, _) in zip(contexts, supports, labelled)]
        sizes = [len(query_rows) for query_rows, _ in contexts]
        if all(cache is not None for cache in caches):
            # Every support set is encoded: one pass takes the groups of rows together.
            outputs = runner.predict_groups(caches, member.view(X_encoded[np.concatenate([q for q, _ in contexts])]),
                                            sizes, progress, embeddings)
            parts = np.split(outputs, np.cumsum(sizes)[:-1])
        else:
            parts = [runner.predict(x, labels, member.view(X_encoded[query_rows]), cache=cache, progress=progress,
                                    embeddings=embeddings)
                     for (query_rows, _), x, (labels, _), cache in zip(contexts, supports, labelled, caches)]
        result = None
        for (query_rows, _), outputs, (_, context) in zip(contexts, parts, labelled):
            part = member_output(member, outputs, context)
            if result is None:
                result = np.empty((len(X_encoded), *part.shape[1:]), dtype=part.dtype)
            result[query_rows] = part
        return result

    def _shared_support(self, runner: InferenceRunner, member_index: int, x_support: np.ndarray, labels: np.ndarray
                        ) -> SupportCache | None:
        """An unpickled copy's support set, encoded once per process (`RuntimeState.shared_support`)."""
        if self.support_cache == "off":
            return None
        key = self._model_key(runner.device, runner.dtype, self._member_checkpoint(member_index))
        return self._runtime.shared_support(runner, key, x_support, labels)

    def _progress(self, n_rows: int) -> Any:
        """A bar over the query rows of the call; every member's pass over a row counts 1 / n_members."""
        n_members = len(self.members_)
        return progress_bar(n_rows * n_members, f"{type(self).__name__} predict ({n_members} members)", "row",
                            enabled=bool(self.verbose), unit_scale=1.0 / n_members)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        # Weight-free and device-portable: the checkpoint is reloaded from its reference.
        state.pop("_runtime", None)
        weights = state.get("fine_tuned_weights_")
        if weights is not None:
            from safetensors.torch import save

            state["fine_tuned_weights_"] = save({k: v.contiguous() for k, v in weights.items()})
        state["_mitra_sklearn_version"] = __version__
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.get("fine_tuned_weights_")
        if isinstance(weights, (bytes, bytearray)):
            from safetensors.torch import load

            state["fine_tuned_weights_"] = load(bytes(weights))
        version = state.pop("_mitra_sklearn_version", None)
        super().__setstate__(state) if hasattr(super(), "__setstate__") else self.__dict__.update(state)
        if version is not None and version != __version__:
            import warnings

            warnings.warn(
                f"This {type(self).__name__} was pickled with mitra-sklearn {version} and is loaded with "
                f"{__version__}; predictions may differ.",
                UserWarning,
                stacklevel=2,
            )
        if "device_" in self.__dict__:
            # A model fitted on a GPU must still load (and predict) on a CPU-only machine.
            self.devices_ = resolve_devices(self.device, fall_back=True)
            self.device_ = self.devices_[0]
        self._reset_runtime_state(shared=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.categorical = True
        # Strings are accepted as categories, but a cell holding another object raises TypeError.
        tags.input_tags.string = False
        # Only GPU kernels are non-deterministic; the CPU gives the same numbers every time.
        if isinstance(self.device, str) and self.device == "auto":
            tags.non_deterministic = torch.cuda.is_available() or torch.backends.mps.is_available()
        else:
            entries = self.device if isinstance(self.device, (list, tuple)) else [self.device]
            tags.non_deterministic = any(str(entry).split(":")[0] != "cpu" for entry in entries)
        return tags


def _check_2d(X: Any) -> None:
    ndim = X.ndim if hasattr(X, "ndim") else np.ndim(X) if isinstance(X, (list, tuple)) else 2
    if ndim == 1:
        raise ValueError(
            "Expected a 2D array, got a 1D array instead. Reshape your data either using array.reshape(-1, 1) "
            "if your data has a single feature or array.reshape(1, -1) if it contains a single sample."
        )


def _check_not_empty(X: Any) -> None:
    n_samples = _num_samples(X)
    shape = getattr(X, "shape", None)
    n_features = shape[1] if shape is not None and len(shape) > 1 else None
    if n_samples == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required.")
    if n_features == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is required.")


def _is_shipped(reference: str) -> bool:
    return reference in shipped_checkpoints()


def _partner_reference(partner: str, declared_by: CheckpointFiles) -> str:
    """Where an ``ensemble_with`` entry points: a shipped name, a folder next to (or under) the
    declaring checkpoint's folder, else the entry as written (a Hub repo id or an absolute folder)."""
    if _is_shipped(partner) or os.path.isabs(partner):
        return partner
    beside = declared_by.config_path.parent / partner
    return os.path.abspath(beside) if beside.is_dir() else partner


def _weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes (the key of fine-tuned weights)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _copy_model(model: MitraModel, state: dict[str, torch.Tensor] | None) -> MitraModel:
    """A private copy of ``model`` (so the shared cached one is never changed), with ``state`` loaded."""
    device = next(model.parameters()).device
    with torch.device("meta"):
        copy = MitraModel(model.config)
    source = state if state is not None else model.state_dict()
    copy.load_state_dict({k: v.to(device, copy=True) for k, v in source.items()}, assign=True)
    return copy
