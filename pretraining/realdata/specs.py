"""How a dataset is described (`DatasetSpec`) and the two fixed halves of the benchmark suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from mitra_sklearn.config import Task

Half = Literal["select", "report"]

#: The two fixed halves of the benchmark suite: ``select`` chooses between model variants during
#: a campaign, ``report`` is touched only to report the final checkpoint (suites
#: ``benchmark-select`` and ``benchmark-report``).
HALVES: tuple[Half, ...] = ("select", "report")

@dataclass(frozen=True)
class DatasetSpec:
    """How to build one `Dataset` from a raw table.

    Attributes
    ----------
    name, task, source, origin, description
        As in `Dataset`.
    load : callable
        Returns the raw DataFrame (target column included).
    target : str
        Target column of the raw table.
    drop : tuple of str
        Columns removed (IDs, row names, leaks of the target).
    categorical : tuple of str
        Numeric-coded columns that are really categorical (string columns always are).
    log_target : bool
        Regression on ``log(target)`` (prices, wages: right-skewed and positive), so that a few
        huge values do not dominate the RMSE.
    half : {"select", "report"} or None
        Fixed half of the benchmark suite (`HALVES`); None outside it.
    """

    name: str
    task: Task
    source: str
    origin: str
    load: Callable[[], pd.DataFrame]
    target: str
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    description: str = ""
    log_target: bool = False
    half: Half | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task.parse(self.task))


