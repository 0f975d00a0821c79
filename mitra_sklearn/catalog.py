"""The official checkpoints this package knows by name, and the context each one was made for.

Two generations of official weights are on the Hugging Face Hub, in the same file format and
with the same architecture (a 12-layer, dim-512 2D transformer):

* **Mitra v1** (arXiv 2510.21204): ``autogluon/mitra-classifier``, ``autogluon/mitra-regressor``
  (scalar head) and ``autogluon/mitra-classifier-1.1``;
* **Mitra v2** (arXiv 2609.04540): ``autogluon/mitra-classifier-2`` and
  ``autogluon/mitra-regressor-2``, whose regression head predicts a distribution over 1,000
  target bins. Pretrained with a 10x longer context and 3x as many features as v1.

``checkpoint=None`` tries `DEFAULT_CHAIN` in order (newest first), then the checkpoint shipped
inside the package. `checkpoint_defaults` gives what the estimators' ``"auto"`` settings mean
for a checkpoint: the support-set size and feature count (``max_support_rows`` /
``max_features``), the softmax temperature of classification (``softmax_temperature``) and
how many classes one ensemble member predicts at once (more are split into class groups).
For the official checkpoints these are the reference code's own (temperature 1, every class
the head has) and this package's 4 ensemble members; any other checkpoint may declare them in
its ``config.json`` (keys ``"context_limits"``, ``"softmax_temperature"``,
``"max_classes_per_member"`` and ``"n_estimators"``, tuned for it), else the v1 values, 1, the
head's class count and 4 apply. A checkpoint may also name
partner checkpoints (``"ensemble_with"``) whose members it is meant to be averaged with: the
estimators then take members from it and its partners in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Task

__all__ = ["ContextLimits", "CheckpointDefaults", "OfficialCheckpoint", "OFFICIAL", "DEFAULT_CHAIN",
           "checkpoint_defaults", "official_checkpoint"]


@dataclass(frozen=True)
class ContextLimits:
    """How much of a table one forward pass of a checkpoint reads, by default.

    Attributes
    ----------
    support_rows : int
        Support rows per member (larger training sets are subsampled per member).
    features : int
        Features per member (wider tables are split into feature subsets over the members).
    binary_support_rows : int or None
        Support rows on binary classification tasks, where the reference code uses a smaller
        cap; None: ``support_rows``.
    """

    support_rows: int
    features: int
    binary_support_rows: int | None = None

    def support_rows_for(self, n_classes: int | None) -> int:
        """The support-row limit of a task with ``n_classes`` classes (None: regression)."""
        if n_classes == 2 and self.binary_support_rows is not None:
            return self.binary_support_rows
        return self.support_rows

    @classmethod
    def from_dict(cls, data: object) -> ContextLimits:
        """Read the ``"context_limits"`` entry of a ``config.json``.

        Raises
        ------
        ValueError
            When it is not a mapping of positive integers ``support_rows``, ``features`` and
            optionally ``binary_support_rows``.
        """
        keys = {"support_rows", "features", "binary_support_rows"}
        if not isinstance(data, dict) or not {"support_rows", "features"} <= set(data) or set(data) - keys:
            raise ValueError(f"context_limits must hold support_rows, features (and binary_support_rows), got {data!r}")
        values = {key: data[key] for key in keys if data.get(key) is not None}
        if not all(_is_int_at_least(v, 1) for v in values.values()):
            raise ValueError(f"context_limits values must be positive integers, got {data!r}")
        return cls(**values)


#: The reference code's inference settings for v1 (AutoGluon 1.6.3: 8,192 support rows per
#: forward pass, ``max_features`` 500), also the limits of checkpoints that declare none.
V1_LIMITS = ContextLimits(support_rows=8192, features=500)
#: mitra-finetune 0.3.0, the v2 authors' code: prediction support caps of 32,768 rows (16,384 on
#: binary tasks), tables wider than 256 features narrowed to 256.
V2_LIMITS = ContextLimits(support_rows=32_768, features=256, binary_support_rows=16_384)


@dataclass(frozen=True)
class OfficialCheckpoint:
    """One official repo on the Hugging Face Hub.

    Attributes
    ----------
    repo_id : str
        The Hub repo.
    task : Task
        What its head predicts.
    generation : str
        "v1", "v1.1" or "v2".
    n_parameters : int
        Number of weights (float32: 4 bytes each).
    limits : ContextLimits
        What ``max_support_rows="auto"`` / ``max_features="auto"`` mean for it.
    pretrained_context : str
        The table sizes it was pretrained on, as published.
    """

    repo_id: str
    task: Task
    generation: str
    n_parameters: int
    limits: ContextLimits
    pretrained_context: str

    @property
    def size(self) -> str:
        """Its size for messages written before it is downloaded."""
        return f"{self.n_parameters / 1e6:.1f} M parameters, a {self.n_parameters * 4 / 1e6:.0f} MB download"


_V1_CONTEXT = "up to 512 support + 128 query rows, up to 16 features"
_V2_CONTEXT = "about 10x the rows and 3x the features of v1"

#: Every official checkpoint, by repo id.
OFFICIAL: dict[str, OfficialCheckpoint] = {
    c.repo_id: c
    for c in (
        OfficialCheckpoint("autogluon/mitra-classifier-2", Task.CLASSIFICATION, "v2", 75_670_026, V2_LIMITS,
                           _V2_CONTEXT),
        # 1,000 bins: the scalar head's 513 weights become 2 x 1,000 x 512 + 1,000 (label table and head).
        OfficialCheckpoint("autogluon/mitra-regressor-2", Task.REGRESSION, "v2", 76_684_776, V2_LIMITS,
                           _V2_CONTEXT),
        OfficialCheckpoint("autogluon/mitra-classifier", Task.CLASSIFICATION, "v1", 75_670_026, V1_LIMITS,
                           _V1_CONTEXT),
        OfficialCheckpoint("autogluon/mitra-classifier-1.1", Task.CLASSIFICATION, "v1.1", 75_670_026, V1_LIMITS,
                           _V1_CONTEXT),
        OfficialCheckpoint("autogluon/mitra-regressor", Task.REGRESSION, "v1", 75_661_313, V1_LIMITS, _V1_CONTEXT),
    )
}

#: What ``checkpoint=None`` tries, per task, newest generation first (then the shipped checkpoint).
DEFAULT_CHAIN: dict[Task, tuple[str, ...]] = {
    Task.CLASSIFICATION: ("autogluon/mitra-classifier-2", "autogluon/mitra-classifier"),
    Task.REGRESSION: ("autogluon/mitra-regressor-2", "autogluon/mitra-regressor"),
}


def official_checkpoint(repo_id: str) -> OfficialCheckpoint | None:
    """The catalogue entry of an official repo id, or None for any other reference."""
    return OFFICIAL.get(repo_id)


@dataclass(frozen=True)
class CheckpointDefaults:
    """What the estimators' ``"auto"`` settings mean for one checkpoint.

    Attributes
    ----------
    limits : ContextLimits
        ``max_support_rows="auto"`` / ``max_features="auto"``.
    softmax_temperature : float
        ``softmax_temperature="auto"``: class logits are divided by it before the softmax.
    max_classes_per_member : int or None
        Classes one ensemble member predicts at once (None: as many as the head has). With more
        classes, each member predicts balanced groups of classes (an error-correcting output
        code) and the class probabilities are decoded from all members.
    n_estimators : int
        ``n_estimators="auto"``: the ensemble members the checkpoint's recipe runs.
    ensemble_with : tuple of str
        Partner checkpoints (shipped names, Hub repo ids, or folders, relative ones read from
        the declaring checkpoint's folder) of the same shape: with ``checkpoint`` set to this
        one, the ensemble members come from it and its partners in turn. Empty: none.
    """

    limits: ContextLimits = V1_LIMITS
    softmax_temperature: float = 1.0
    max_classes_per_member: int | None = None
    n_estimators: int = 4
    ensemble_with: tuple[str, ...] = ()

    _KEYS = ("context_limits", "softmax_temperature", "max_classes_per_member", "n_estimators", "ensemble_with")

    @classmethod
    def from_config(cls, raw: dict) -> CheckpointDefaults | None:
        """The defaults a ``config.json`` declares (``"context_limits"``, ``"softmax_temperature"``,
        ``"max_classes_per_member"``, ``"n_estimators"``, ``"ensemble_with"``), or None when it
        declares none of them.

        Raises
        ------
        ValueError
            When a declared value is malformed.
        """
        if not any(key in raw for key in cls._KEYS):
            return None
        limits = ContextLimits.from_dict(raw["context_limits"]) if "context_limits" in raw else V1_LIMITS
        temperature = raw.get("softmax_temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"softmax_temperature must be a positive number, got {temperature!r}")
        classes = raw.get("max_classes_per_member")
        if classes is not None and not _is_int_at_least(classes, 2):
            raise ValueError(f"max_classes_per_member must be an integer of at least 2, got {classes!r}")
        members = raw.get("n_estimators", 4)
        if not _is_int_at_least(members, 1):
            raise ValueError(f"n_estimators must be a positive integer, got {members!r}")
        partners = raw.get("ensemble_with", [])
        if not isinstance(partners, list) or not all(isinstance(p, str) and p for p in partners):
            raise ValueError(f"ensemble_with must be a list of checkpoint references, got {partners!r}")
        return cls(limits, float(temperature), classes, members, tuple(partners))


def _is_int_at_least(value: object, minimum: int) -> bool:
    """Whether a declared ``config.json`` value is an integer (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def checkpoint_defaults(reference: str, declared: CheckpointDefaults | None = None) -> CheckpointDefaults:
    """What ``"auto"`` means for the checkpoint ``reference``.

    Parameters
    ----------
    reference : str
        Official repo id, shipped name or folder.
    declared : CheckpointDefaults, optional
        The defaults the checkpoint's ``config.json`` declares, if any.
    """
    official = official_checkpoint(reference)
    if official is not None:
        return CheckpointDefaults(official.limits)
    return declared if declared is not None else CheckpointDefaults()
