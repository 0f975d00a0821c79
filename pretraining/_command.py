"""One pattern for the command-line tools of `pretraining`: ``build_parser()``, ``run(argv)``, ``main``.

Each tool module defines ``build_parser()`` (its `argparse` parser), ``run(argv)`` (parse, do the
work, return what a Python caller wants: a status, a results table, a `GeneralizabilityResult`)
and ``main = command_main(run, ...)``, the entry point that returns an exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def command_main(run: Callable[[Sequence[str] | None], Any], command: str) -> Callable[[Sequence[str] | None], int]:
    """The ``main`` of a tool: ``run(argv)``, then the exit status (``run``'s own when it returns an int, else 0).

    Parameters
    ----------
    run : callable
        The tool's ``run(argv)``.
    command : str
        How the tool is invoked (for the docstring), e.g. ``"python -m pretraining evaluate"``.

    Returns
    -------
    callable
        ``main(argv=None) -> int``.
    """

    def main(argv: Sequence[str] | None = None) -> int:
        result = run(argv)
        return result if isinstance(result, int) and not isinstance(result, bool) else 0

    main.__doc__ = (f"Command-line entry point (``{command}``); ``argv`` defaults to ``sys.argv[1:]``. "
                    "Returns the exit status.")
    main.__name__ = main.__qualname__ = "main"
    return main
