"""The shape of a Mitra model (`MitraConfig`) and the two tasks a head can be trained for (`Task`).

Both are plain values with no PyTorch code: the checkpoint module reads them from
``config.json``, the model builds itself from them, and the estimators and ``pretraining`` parse
user input into them once, at the boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

__all__ = ["Task", "MitraConfig", "N_LABEL_IDS", "OFFICIAL_SHAPE"]

#: Width of the released classifier's head: the label ids a support set can use (the official
#: checkpoint has 10; more classes are handled by class groups in the estimators).
N_LABEL_IDS = 10


class Task(str, Enum):
    """What a checkpoint predicts. A ``str`` enum: ``Task.CLASSIFICATION == "classification"``."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"

    @classmethod
    def parse(cls, value: Any) -> Task:
        """Read any spelling in use: a `Task`, "classification", "CLASSIFICATION" (the official
        ``config.json``) or "Task.CLASSIFICATION" (``str`` of the official code's enum).

        Raises
        ------
        ValueError
            For anything else, naming the accepted values.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            name = value.strip().rsplit(".", 1)[-1].lower()
            for task in cls:
                if task.value == name:
                    return task
        raise ValueError(f"task must be 'classification' or 'regression', got {value!r}.")

    @property
    def official_name(self) -> str:
        """The spelling of the official ``config.json`` ("CLASSIFICATION" / "REGRESSION")."""
        return self.name

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class MitraConfig:
    """Shape of a Mitra model: the five keys of the official ``config.json``.

    Parameters
    ----------
    dim : int, default=512
        Width of every token.
    dim_output : int, default=10
        Output size: the number of classes the head supports (classification), 1 for a scalar
        regression head, or the number of bins of a binned regression head.
    n_layers : int, default=12
        Number of 2D attention layers.
    n_heads : int, default=4
        Attention heads; ``dim`` must be divisible by it.
    task : Task or str, default=Task.CLASSIFICATION
        Task the head was trained for. Any spelling `Task.parse` accepts ("classification",
        the official files' "CLASSIFICATION", ...); stored as a `Task`.
    """

    dim: int = 512
    dim_output: int = N_LABEL_IDS
    n_layers: int = 12
    n_heads: int = 4
    task: Task = Task.CLASSIFICATION

    def __post_init__(self) -> None:
        for name in ("dim", "dim_output", "n_layers", "n_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MitraConfig.{name} must be a positive integer, got {value!r}.")
        if self.dim % self.n_heads != 0:
            raise ValueError(
                f"MitraConfig.dim ({self.dim}) must be divisible by n_heads ({self.n_heads})."
            )
        object.__setattr__(self, "task", Task.parse(self.task))

    @property
    def is_classification(self) -> bool:
        """Whether the head outputs class logits."""
        return self.task is Task.CLASSIFICATION

    @property
    def uses_class_label_embedding(self) -> bool:
        """Whether support labels are looked up in an embedding table (classes or bins)."""
        return self.is_classification or self.dim_output > 1

    def to_dict(self) -> dict[str, Any]:
        """The official ``config.json`` content (the task spelled as the official files do)."""
        return {**asdict(self), "task": self.task.official_name}

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> MitraConfig:
        """Build from a ``config.json`` dictionary; unknown keys are ignored."""
        missing = [key for key in ("dim", "dim_output", "n_layers", "n_heads", "task") if key not in config]
        if missing:
            raise ValueError(f"Mitra config is missing the key(s) {missing}; got {sorted(config)}.")
        return cls(
            dim=int(config["dim"]),
            dim_output=int(config["dim_output"]),
            n_layers=int(config["n_layers"]),
            n_heads=int(config["n_heads"]),
            task=str(config["task"]),
        )


#: The trunk of every released checkpoint (v1, v1.1 and v2): `MitraConfig`'s defaults.
OFFICIAL_SHAPE: dict[str, int] = {
    "dim": MitraConfig.dim, "n_layers": MitraConfig.n_layers, "n_heads": MitraConfig.n_heads,
}
