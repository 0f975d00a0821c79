"""Predicted target distributions of a binned regression head (Mitra v2's 1,000 bins).

A binned head gives, for each query row and ensemble member, probabilities over bins of the
member's *scaled* target. Each member scales the targets with its own support set's range (and
may mirror them), so its bins map to its own intervals in the units of ``y``. The ensemble's
distribution is the **mixture** of the members' distributions: the average of their cumulative
distribution functions, each piecewise linear (probability spread uniformly within a bin). On
the union of all the members' bin edges that mixture is again a histogram, which is what
`RegressionDistribution` holds. Quantiles, the median and the mean follow from it exactly.

`mix_members` builds it from each member's ``(low, high, mirror, probabilities)`` rows
(``RegressionTask.member_histogram``). Each member keeps its own bins (a mirrored member's are
the mirror images of the head's edges), as mitra-finetune's ``RegressionDistribution`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["RegressionDistribution", "mix_members", "concatenate"]


@dataclass(frozen=True)
class RegressionDistribution:
    """Per-row predicted distribution of the target: a histogram with uniform density in each bin.

    Attributes
    ----------
    bin_edges : ndarray of shape (n_rows, n_bins + 1) or (1, n_bins + 1)
        Increasing bin edges in the units of ``y``; one row shared by all rows when every row's
        members scaled the targets alike (the usual case). Bins may have zero width (then
        zero probability): rows whose members' edges differ are padded to a common count.
    probabilities : ndarray of shape (n_rows, n_bins)
        Probability of each bin; each row sums to 1.
    """

    bin_edges: np.ndarray
    probabilities: np.ndarray

    def __len__(self) -> int:
        return self.probabilities.shape[0]

    def _edges(self) -> np.ndarray:
        return np.broadcast_to(self.bin_edges, (len(self), self.bin_edges.shape[1]))

    def _cumulative(self) -> np.ndarray:
        """CDF at each edge, (n_rows, n_bins + 1), from 0 to 1."""
        cdf = np.zeros((len(self), self.probabilities.shape[1] + 1))
        np.cumsum(self.probabilities, axis=1, out=cdf[:, 1:])
        cdf /= cdf[:, -1:]
        return cdf

    def mean(self) -> np.ndarray:
        """Mean of each row's distribution, shape (n_rows,)."""
        edges = self.bin_edges
        centres = edges[:, :-1] + (edges[:, 1:] - edges[:, :-1]) / 2  # overflow-free midpoints
        return np.sum(self.probabilities * centres, axis=1)

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles of each row's distribution.

        Parameters
        ----------
        q : float or array-like of floats in [0, 1]
            The levels.

        Returns
        -------
        ndarray of shape (n_rows, n_levels), or (n_rows,) for a scalar ``q``
            Non-decreasing along the levels (the inverse of a continuous CDF).
        """
        levels = np.asarray(q, dtype=np.float64)
        if levels.ndim > 1 or np.any(~np.isfinite(levels)) or np.any((levels < 0) | (levels > 1)):
            raise ValueError(f"quantile levels must be numbers in [0, 1], got {q!r}.")
        cdf, edges = self._cumulative(), self._edges()
        rows = np.arange(len(self))[:, None]
        flat = np.atleast_1d(levels)
        # The bin holding level q: the first whose upper CDF reaches q.
        bins = np.minimum((cdf[:, None, 1:] < flat[None, :, None]).sum(axis=2), self.probabilities.shape[1] - 1)
        low_cdf, high_cdf = cdf[rows, bins], cdf[rows, bins + 1]
        mass = high_cdf - low_cdf
        share = np.divide(flat[None, :] - low_cdf, mass, out=np.zeros_like(mass), where=mass > 0)
        low, high = edges[rows, bins], edges[rows, bins + 1]
        values = low + np.clip(share, 0.0, 1.0) * (high - low)
        return values[:, 0] if levels.ndim == 0 else values

    def median(self) -> np.ndarray:
        """Median of each row's distribution, shape (n_rows,)."""
        return self.quantile(0.5)

    def mode(self) -> np.ndarray:
        """Centre of each row's densest bin, shape (n_rows,)."""
        edges = self._edges()
        widths = edges[:, 1:] - edges[:, :-1]
        density = np.divide(self.probabilities, widths, out=np.zeros_like(self.probabilities), where=widths > 0)
        densest = np.argmax(density, axis=1)[:, None]
        low = np.take_along_axis(edges, densest, axis=1)[:, 0]
        high = np.take_along_axis(edges, densest + 1, axis=1)[:, 0]
        return low + (high - low) / 2

    def cdf(self, y: np.ndarray) -> np.ndarray:
        """P(target <= y[i]) for row i, shape (n_rows,)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.shape[0] != len(self):
            raise ValueError(f"cdf needs one value per row ({len(self)}), got {y.shape[0]}.")
        return _interpolate_rows(self._edges(), self._cumulative(), y[:, None])[:, 0]


def mix_members(member_rows: list[np.ndarray], member_edges: Callable[..., np.ndarray],
                n_keys: int) -> RegressionDistribution:
    """The ensemble's distribution: the mixture of every member's binned distribution.

    Parameters
    ----------
    member_rows : list of ndarray of shape (n_rows, n_keys + n_bins)
        Per member and row: what fixes the member's bins in y units (``n_keys`` numbers, e.g.
        the scaling's ``low``, ``high`` and the mirror flag), then the bin probabilities in the
        order of increasing target.
    member_edges : callable
        ``member_edges(*keys) -> increasing edges in y units`` (n_bins + 1 of them).
    n_keys : int
        How many leading numbers of a row are keys.
    """
    keys = np.concatenate([rows[:, :n_keys] for rows in member_rows], axis=1)  # (n_rows, n_keys x members)
    unique_keys, group_of_row = np.unique(keys, axis=0, return_inverse=True)
    group_of_row = group_of_row.reshape(-1)
    groups = []
    for group, key in enumerate(unique_keys):
        rows = np.flatnonzero(group_of_row == group)
        edges_of_members = [member_edges(*member_key) for member_key in key.reshape(-1, n_keys)]
        union = np.unique(np.concatenate(edges_of_members))
        cdf = np.zeros((len(rows), len(union)))
        for edges, values in zip(edges_of_members, member_rows):
            member_cdf = np.zeros((len(rows), len(edges)))
            np.cumsum(values[rows, n_keys:], axis=1, out=member_cdf[:, 1:])
            member_cdf /= member_cdf[:, -1:]
            cdf += _interpolate_rows(edges[None, :], member_cdf, union[None, :])
        groups.append((rows, RegressionDistribution(union[None, :], np.diff(cdf / len(member_rows), axis=1))))
    if len(groups) == 1:
        return groups[0][1]
    whole = concatenate([part for _, part in groups])
    order = np.argsort(np.concatenate([rows for rows, _ in groups]))  # back to the rows' own order
    return RegressionDistribution(whole.bin_edges[order], whole.probabilities[order])


def concatenate(parts: list[RegressionDistribution]) -> RegressionDistribution:
    """The distributions of ``parts``' rows, one after the other. Edges shared by every part stay
    shared; otherwise each row gets its own, padded at the top with zero-width, zero-probability
    bins to a common count."""
    if len(parts) == 1:
        return parts[0]
    if all(part.bin_edges.shape[0] == 1 and np.array_equal(part.bin_edges, parts[0].bin_edges) for part in parts):
        return RegressionDistribution(parts[0].bin_edges, np.concatenate([part.probabilities for part in parts]))
    width = max(part.bin_edges.shape[1] for part in parts)
    edges, probabilities = [], []
    for part in parts:
        part_edges = part._edges()
        pad = width - part_edges.shape[1]
        edges.append(np.concatenate([part_edges, np.repeat(part_edges[:, -1:], pad, axis=1)], axis=1))
        probabilities.append(np.pad(part.probabilities, ((0, 0), (0, pad))))
    return RegressionDistribution(np.concatenate(edges), np.concatenate(probabilities))


def _interpolate_rows(xp: np.ndarray, fp: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Piecewise-linear ``fp`` (rows, k) over increasing ``xp`` ((1 or rows), k) evaluated at ``x``
    ((1 or rows), m), constant beyond the ends: `np.interp` row by row, vectorised."""
    n_rows, k = fp.shape
    # Index of the segment holding each x: the edges at or below it, minus one.
    if xp.shape[0] == 1:  # shared edges: one search for every row
        below = np.searchsorted(xp[0], x, side="right") - 1
    else:
        below = np.stack([np.searchsorted(row_xp, row_x, side="right")
                          for row_xp, row_x in zip(xp, np.broadcast_to(x, (n_rows, x.shape[1])))]) - 1
    segment = np.broadcast_to(np.clip(below, 0, k - 2), (n_rows, x.shape[1]))
    xp = np.broadcast_to(xp, fp.shape)
    rows = np.arange(n_rows)[:, None]
    x0, x1 = xp[rows, segment], xp[rows, segment + 1]
    f0, f1 = fp[rows, segment], fp[rows, segment + 1]
    span = x1 - x0
    share = np.divide(x - x0, span, out=np.zeros(span.shape), where=span > 0)
    return f0 + np.clip(share, 0.0, 1.0) * (f1 - f0)
