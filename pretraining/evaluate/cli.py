"""Command line of the real-data evaluation (``python -m pretraining.evaluate``).

::

    python -m pretraining.evaluate --classifier runs/mix/final --regressor runs/mix-reg/final \\
        --suite benchmark-select --ablation scm=runs/scm/final --n-estimators 1 8 --out docs/results

writes ``results.csv`` (one row per dataset, split and method), ``results.md`` (the tables to
paste into the docs) and ``results.png`` (needs matplotlib), and prints the markdown.
``--from-csv`` rebuilds the report from earlier ``results.csv`` files without fitting anything.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .._command import command_main
from ..realdata import SUITES, dataset_names, load_suite
from .baselines import BASELINE_PACKAGES
from .metrics import Task
from .reports import average_over_seeds, markdown_report, merge_results, plot_results
from .runner import checkpoint_label, checkpoint_task, evaluate_baselines, evaluate_checkpoint

__all__ = ["build_parser", "main", "run"]


def _parse_named(values: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        if "=" not in value:
            raise SystemExit(f"expected NAME=VALUE, got {value!r}")
        name, _, checkpoint = value.partition("=")
        out.append((name.strip(), checkpoint.strip()))
    return out


def _n_estimators(text: str) -> int | str:
    """``--n-estimators`` values: positive integers or 'auto'."""
    if text == "auto":
        return text
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"ensemble sizes must be positive, got {value}")
    return value


def _variant_label(name: str, n_estimators: int | str, fine_tune: bool, several_n: bool) -> str:
    label = name
    if several_n:
        label += f" n={n_estimators}"
    if fine_tune:
        label += " +ft"
    return label


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m pretraining.evaluate``."""
    parser = argparse.ArgumentParser(
        prog="python -m pretraining evaluate",
        description="Evaluate Mitra checkpoints and baselines on real datasets (same splits for all).",
    )
    parser.add_argument("--classifier", help="classification checkpoint (method name 'Mitra')")
    parser.add_argument("--regressor", help="regression checkpoint (method name 'Mitra')")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="extra named checkpoint (task read from its config.json); repeatable")
    parser.add_argument("--mix", action="append", default=[], metavar="NAME=CKPT_A+CKPT_B",
                        help="a named ensemble of members from several checkpoints of one task (one "
                             "estimator, its members taking the checkpoints in turn); repeatable")
    parser.add_argument("--suite", default="benchmark", choices=list(SUITES),
                        help="datasets: 'benchmark-select' to choose between variants, 'benchmark-report' only "
                             "for the final checkpoint, 'benchmark' = both halves, 'sklearn' = quick")
    parser.add_argument("--datasets", help="comma-separated subset of the suite's datasets")
    parser.add_argument("--n-estimators", type=_n_estimators, nargs="+", default=["auto"],
                        help="Mitra ensemble sizes to compare, e.g. 1 8 (default 'auto': each checkpoint's "
                             "own, 4 unless its config.json declares another)")
    parser.add_argument("--fine-tune", choices=["off", "on", "both"], default="off",
                        help="Mitra with fine_tune=False, True, or both side by side (default off)")
    parser.add_argument("--fine-tune-steps", type=int, default=50, help="fine_tune_steps when fine-tuning (default 50)")
    parser.add_argument("--baselines", default="all",
                        help="comma-separated baselines (LogReg,Ridge,RF,HGB,"
                             f"{','.join(BASELINE_PACKAGES)}; Prior, the class-frequency / mean floor, "
                             "only when named), 'all' or 'none' (default all)")
    parser.add_argument("--n-repeats", type=int, default=3, help="random train/test splits per dataset (default 3)")
    parser.add_argument("--test-size", type=float, default=0.2, help="test share of each split (default 0.2)")
    parser.add_argument("--max-train-rows", type=int, default=2000,
                        help="training rows per split at most (default 2000)")
    parser.add_argument("--max-test-rows", type=int, default=2000, help="test rows per split at most (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits and the estimators (default 0)")
    parser.add_argument("--device", default="auto", help="device of the Mitra estimators (default auto)")
    parser.add_argument("--batch-size", type=int, default=1024, help="Mitra query rows per forward pass (default 1024)")
    parser.add_argument("--n-jobs", type=int, default=-1, help="threads of the tree baselines")
    parser.add_argument("--out", default="docs/results", help="folder for results.csv/.md/.png (default docs/results)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no per-split lines")
    parser.add_argument("--from-csv", nargs="+", metavar="CSV",
                        help="evaluate nothing: merge earlier results.csv files (later files win on the "
                             "same method, dataset and split) and write the report to --out")
    parser.add_argument("--rename", action="append", nargs=2, default=[], metavar=("OLD", "NEW"),
                        help="with --from-csv: rename a method (repeatable)")
    parser.add_argument("--compare", action="append", nargs=2, default=[], metavar=("A", "B"),
                        help="add paired differences A - B over the datasets, with bootstrap intervals, to the "
                             "report (repeatable; method names as in the report)")
    parser.add_argument("--ship-check", action="append", nargs=2, default=[], metavar=("CANDIDATE", "INCUMBENT"),
                        help="add issue 25's shipping rule to the report: on ROC-AUC and log-loss (R2 for "
                             "regression) CANDIDATE beats INCUMBENT with a paired interval excluding 0 and beats RF "
                             "on the mean (repeatable)")
    parser.add_argument("--average-seeds", action="store_true",
                        help="with --from-csv: pool methods named '<name> seed <N>' into '<name> (<K> seeds)', "
                             "averaging each dataset over seeds and splits (applied after --rename)")
    parser.add_argument("--max-repeats", type=int, default=None,
                        help="with --from-csv: keep only the first N repeats (to compare runs made with fewer)")
    return parser


def run(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Run the CLI and return the raw results (one row per dataset, split and method).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    pandas.DataFrame
    """
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if args.from_csv:
        results = merge_results([pd.read_csv(path, keep_default_na=False, na_values=[""])
                                 for path in args.from_csv])
        results["error"] = ["" if pd.isna(e) else str(e) for e in results["error"]]  # all-NaN reads as float
        results["method"] = results["method"].replace(dict(args.rename))
        if args.average_seeds:
            results = average_over_seeds(results)
        if args.max_repeats is not None:
            results = results[results["repeat"] < args.max_repeats].reset_index(drop=True)
        return _write_report(results, out, args.suite, args.compare, args.ship_check)
    checkpoints: list[tuple[str, str | tuple[str, ...], Task]] = []
    if args.classifier:
        checkpoints.append(("Mitra", args.classifier, Task.CLASSIFICATION))
    if args.regressor:
        checkpoints.append(("Mitra", args.regressor, Task.REGRESSION))
    for name, checkpoint in _parse_named(args.ablation):
        checkpoints.append((name, checkpoint, checkpoint_task(checkpoint)))
    for name, joined in _parse_named(args.mix):
        parts = [part for part in joined.split("+") if part]
        mix_tasks = {checkpoint_task(part) for part in parts}
        if len(parts) < 2 or len(mix_tasks) != 1:
            raise SystemExit(f"--mix {name}={joined}: give two or more checkpoints of one task, joined by '+'")
        checkpoints.append((name, tuple(parts), mix_tasks.pop()))
    if not checkpoints and args.baselines == "none":
        raise SystemExit("nothing to evaluate: give --classifier/--regressor/--ablation/--mix or baselines")
    tasks = sorted({t for _, _, t in checkpoints}) or list(Task)
    names = [n.strip() for n in args.datasets.split(",")] if args.datasets else None
    if names is not None:
        # A name outside the suite (e.g. a report-half dataset under --suite benchmark-select) is
        # not evaluated; say so rather than drop it silently.
        outside = [n for n in names if n not in dataset_names(args.suite)]
        if outside:
            warnings.warn(f"not in suite {args.suite!r}, skipped: {', '.join(outside)}", UserWarning, stacklevel=2)
    fine_tunes = {"off": [False], "on": [True], "both": [False, True]}[args.fine_tune]
    split = dict(max_train_rows=args.max_train_rows, max_test_rows=args.max_test_rows,
                 n_repeats=args.n_repeats, test_size=args.test_size, seed=args.seed)
    verbose = not args.quiet

    frames = []
    for task in tasks:
        wanted = None if names is None else [n for n in names if n in dataset_names(args.suite, task)]
        datasets = load_suite(args.suite, task=task, names=wanted)
        if not datasets:
            warnings.warn(f"no {task} dataset to evaluate", UserWarning, stacklevel=2)
            continue
        for name, checkpoint, checkpoint_task_ in checkpoints:
            if checkpoint_task_ != task:
                continue
            for n_estimators in args.n_estimators:
                for fine_tune in fine_tunes:
                    label = _variant_label(name, n_estimators, fine_tune, len(args.n_estimators) > 1)
                    print(f"[{task}] {label}: {checkpoint_label(checkpoint)}", file=sys.stderr, flush=True)
                    frames.append(evaluate_checkpoint(
                        checkpoint, task, datasets, n_estimators=n_estimators, fine_tune=fine_tune,
                        fine_tune_steps=args.fine_tune_steps, method=label, device=args.device,
                        batch_size=args.batch_size, verbose=verbose, **split,
                    ))
                    _write_partial(frames, out)
        if args.baselines != "none":
            chosen = None if args.baselines == "all" else [b.strip() for b in args.baselines.split(",")]
            if chosen is not None:  # LogReg/Ridge are one baseline under two task names
                swap = {"LogReg": "Ridge"} if task is Task.REGRESSION else {"Ridge": "LogReg"}
                chosen = list(dict.fromkeys(swap.get(b, b) for b in chosen))
            print(f"[{task}] baselines", file=sys.stderr, flush=True)
            frames.append(evaluate_baselines(task, datasets, baselines=chosen, n_jobs=args.n_jobs,
                                             verbose=verbose, **split))
            _write_partial(frames, out)
    if not frames:
        raise SystemExit("nothing was evaluated")
    results = pd.concat(frames, ignore_index=True)
    results = _write_report(results, out, args.suite, args.compare, args.ship_check)
    (out / "results.partial.csv").unlink(missing_ok=True)
    return results


def _write_partial(frames: list[pd.DataFrame], out: Path) -> None:
    # Long runs: what has finished survives a kill (results.csv is only written at the end).
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_csv(out / "results.partial.csv", index=False)


def _write_report(
    results: pd.DataFrame, out: Path, suite: str, comparisons: Sequence[tuple[str, str]] = (),
    ship_checks: Sequence[tuple[str, str]] = (),
) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    present = set(results["method"])
    known = {"--compare": [], "--ship-check": []}
    for option, pairs in (("--compare", comparisons), ("--ship-check", ship_checks)):
        for a, b in pairs:
            unknown = [m for m in (a, b) if m not in present]
            if unknown:  # warn, and still write every result: a typo must not lose a long run
                warnings.warn(f"{option} {a!r} {b!r} skipped: no results for {', '.join(map(repr, unknown))} "
                              f"(methods: {', '.join(sorted(present))})", UserWarning, stacklevel=2)
            else:
                known[option].append((a, b))
    results.to_csv(out / "results.csv", index=False)
    report = markdown_report(results, title=f"Real-data evaluation ({suite} suite)", comparisons=known["--compare"],
                             ship_checks=known["--ship-check"])
    (out / "results.md").write_text(report + "\n", encoding="utf-8")
    png = plot_results(results, out / "results.png")
    print(report)
    print(f"\nwrote {out / 'results.csv'}, {out / 'results.md'}" + (f", {png}" if png else ""), file=sys.stderr)
    return results


main = command_main(run, "python -m pretraining evaluate")
