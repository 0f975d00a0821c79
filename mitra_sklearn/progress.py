"""Progress output for long work (prediction, fine-tuning, pretraining): tqdm's auto bar, and
one-line reports of the steps of ``fit``."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar", "report"]


def progress_bar(total: int, description: str, unit: str, *, enabled: bool = True, initial: int = 0,
                 unit_scale: float = 1.0) -> Any:
    """A tqdm bar (``tqdm.auto``: a widget in notebooks, text elsewhere), or None when disabled.

    Callers update it with ``bar.update(n)`` and ``bar.close()`` after checking for None, so
    that quiet runs import nothing and pay nothing. ``unit_scale`` converts the counted steps
    into the displayed ``unit`` (e.g. ``1 / n_members`` when each of ``n_members`` passes over
    a row counts once, so that the bar shows rows).
    """
    if not enabled:
        return None
    from tqdm.auto import tqdm

    if unit_scale == 1.0:
        return tqdm(total=total, initial=initial, desc=description, unit=unit)
    # Whole units on the display: scaled counts are fractions (a third of a row per member pass).
    bar_format = "{l_bar}{bar}| {n:.0f}/{total:.0f} {unit}s [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
    return tqdm(total=total, initial=initial, desc=description, unit=unit, unit_scale=unit_scale,
                bar_format=bar_format)


def report(message: str, *, enabled: bool = True) -> None:
    """Print one line about a step of the work to stderr (where the bars go), when enabled."""
    if enabled:
        print(message, file=sys.stderr, flush=True)
