"""Progress bars for long work (prediction, fine-tuning, pretraining): one helper, tqdm's auto bar."""

from __future__ import annotations

from typing import Any

__all__ = ["progress_bar"]


def progress_bar(total: int, description: str, unit: str, *, enabled: bool = True, initial: int = 0) -> Any:
    """A tqdm bar (``tqdm.auto``: a widget in notebooks, text elsewhere), or None when disabled.

    Callers update it with ``bar.update(n)`` and ``bar.close()`` after checking for None, so
    that quiet runs import nothing and pay nothing.
    """
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, unit=unit)
