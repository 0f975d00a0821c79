"""A weighted mixture of priors (Mitra Algorithm 1: pick a generator per dataset by weight)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..config import PriorConfig, check_mixture, parse_mixture
from .base import Prior, SeedLike, Table, Task, as_rng

__all__ = ["Mixture"]


class Mixture(Prior):
    """Pick one prior per table with probability proportional to its weight, then delegate.

    Parameters
    ----------
    priors : mapping of str to float, optional
        Prior name (see ``pretraining.priors.PRIORS``) -> non-negative weight. Weights are
        renormalised; zero-weight priors are dropped. Defaults to ``config.mixture``
        (SCM 0.5, ET/GB/DT/RF/DSRF 0.1 each).
    config : PriorConfig, optional
        Shared by every component prior.

    Examples
    --------
    >>> mix = Mixture.from_string("scm=0.5,et=0.25,dsrf=0.25")
    >>> table = mix.sample(0, n_rows=100, n_features=4, task="classification")
    """

    name = "mixture"

    def __init__(
        self, priors: Mapping[str, float] | None = None, config: PriorConfig | None = None
    ) -> None:
        from . import PRIORS  # local import: the registry imports this module

        super().__init__(config)
        weights = dict(priors) if priors is not None else dict(self.config.mixture)
        check_mixture(weights)
        total = float(sum(weights.values()))
        self.weights = {n: float(w) / total for n, w in weights.items() if w > 0}
        self.priors = {n: PRIORS[n](self.config) for n in self.weights}
        self._names = tuple(self.weights)
        self._cum = np.cumsum(list(self.weights.values()))

    @classmethod
    def from_string(cls, spec: str, config: PriorConfig | None = None) -> Mixture:
        """Parse ``"scm=0.5,et=0.1,..."`` (a bare name means weight 1), e.g. from a CLI flag.

        Raises
        ------
        ValueError
            On an empty spec, a malformed item, an unknown or repeated name, or a bad weight.
        """
        return cls(dict(parse_mixture(spec)), config)

    def to_string(self) -> str:
        """Inverse of `from_string` (normalised weights)."""
        return ",".join(f"{n}={w:g}" for n, w in self.weights.items())

    def __repr__(self) -> str:
        return f"Mixture.from_string({self.to_string()!r})"

    def choose(self, rng_or_seed: SeedLike) -> str:
        """Draw one prior name with probability equal to its (normalised) weight."""
        i = int(np.searchsorted(self._cum, as_rng(rng_or_seed).random() * self._cum[-1], side="right"))
        return self._names[min(i, len(self._names) - 1)]

    def sample(
        self,
        rng_or_seed: SeedLike,
        n_rows: int,
        n_features: int,
        task: Task,
        n_classes: int | None = None,
    ) -> Table:
        """Choose a prior (reproducibly from ``rng_or_seed``) and return its table.

        ``Table.prior`` holds the chosen component's name. See `Prior.sample` for the arguments.
        """
        rng = as_rng(rng_or_seed)
        return self.priors[self.choose(rng)].sample(rng, n_rows, n_features, task, n_classes)

    def _generate(self, rng, n_rows, n_features, task, n_classes):  # pragma: no cover
        raise NotImplementedError("Mixture delegates in `sample`")
