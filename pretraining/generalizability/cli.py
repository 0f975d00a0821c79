"""``python -m pretraining generalizability``: G and P from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._command import command_main
from ..evaluate.metrics import Task
from ..priors import PRIORS
from ..realdata import SUITES
from .matrix import GeneralizabilityResult, generalizability_matrix
from .reports import markdown, save_generalizability


def _range(text: str | None) -> int | tuple[int, int] | None:
    if text is None:
        return None
    parts = [int(p) for p in text.replace("-", " ").replace(",", " ").split()]
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m pretraining.generalizability``."""
    parser = argparse.ArgumentParser(
        prog="python -m pretraining generalizability",
        description="Generalizability matrix G (model trained on prior i, tested on prior j) and real-data P.",
    )
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=FOLDER",
                        help="model trained on one prior, named after it (repeatable)")
    parser.add_argument("--priors", help="comma-separated evaluation priors (default: the checkpoint names "
                                         "that are registry priors, else scm,et,gb,dt,rf,dsrf)")
    parser.add_argument("--task", choices=[t.value for t in Task], type=Task.parse, default="classification",
                        help="task of the checkpoints (default classification)")
    parser.add_argument("--n-tables", type=int, default=100, help="evaluation tables per prior (default 100)")
    parser.add_argument("--n-support", type=int, default=800, help="support rows per table (default 800)")
    parser.add_argument("--n-query", type=int, default=200, help="query rows per table (default 200)")
    parser.add_argument("--n-features", help="fixed count or range 'LOW-HIGH' (default: PriorConfig range)")
    parser.add_argument("--n-classes", help="fixed count or range 'LOW-HIGH' (default: drawn by the prior)")
    parser.add_argument("--n-estimators", type=int, default=1, help="ensemble members per prediction (default 1)")
    parser.add_argument("--real-data", choices=[*SUITES, "none"], default="sklearn",
                        help="suite for P (default sklearn); benchmark-select while choosing priors")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tables and the estimators (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (default auto)")
    parser.add_argument("--out", default="docs/results/generalizability",
                        help="folder for G and P as CSV, JSON and heatmaps (default docs/results/generalizability)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-prior lines")
    return parser


def run(argv: Sequence[str] | None = None) -> GeneralizabilityResult:
    """Run the CLI and return the `generalizability_matrix` result.

    Parameters
    ----------
    argv : sequence of str, optional

    Returns
    -------
    GeneralizabilityResult
    """
    args = build_parser().parse_args(argv)
    checkpoints: dict[str, str] = {}
    for value in args.checkpoint:
        name, sep, folder = value.partition("=")
        if not sep:
            raise SystemExit(f"expected NAME=FOLDER, got {value!r}")
        checkpoints[name.strip()] = folder.strip()
    if args.priors:
        priors = [p.strip() for p in args.priors.split(",") if p.strip()]
    else:
        priors = [n for n in checkpoints if n in PRIORS] or list(PRIORS)
    result = generalizability_matrix(
        checkpoints, priors, n_tables=args.n_tables, n_support=args.n_support, n_query=args.n_query,
        n_features=_range(args.n_features), n_classes=_range(args.n_classes), task=args.task, seed=args.seed,
        n_estimators=args.n_estimators, real_data=None if args.real_data == "none" else args.real_data,
        device=args.device, verbose=not args.quiet,
    )
    written = save_generalizability(result, args.out)
    for metric in result.metrics:
        print(f"\n### G ({metric}; rows: trained on, columns: tested on; P = real data)\n")
        print(markdown(result, metric))
    print("\nwrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return result


main = command_main(run, "python -m pretraining generalizability")
