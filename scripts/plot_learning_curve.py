"""Learning curves of pretraining runs from their ``log.jsonl`` (for the model card).

    python scripts/plot_learning_curve.py campaign/mitra-small-v2-classifier/log.jsonl --out curve.png

Plots, against tables seen (or with ``--x hours`` the run's training hours, its logged
``train_seconds``: a compute axis): the training loss (smoothed over a window of log records),
the held-out prior loss, and the mean real-data score of the quick validation (ROC-AUC for
classification, R2 for regression) that the trainer logs at every evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def read_log(path: Path) -> tuple[list[dict], list[dict]]:
    """(training records, evaluation records) of one log."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if "loss" in r], [r for r in records if "eval_prior_loss" in r]


def x_of_step(train: list[dict], axis: str):
    """A function from steps to the x axis: tables seen (the run's mean tables per step), or
    training hours interpolated between the training records' ``train_seconds`` (0 at step 0)."""
    if not train:
        return lambda steps: np.asarray(steps, dtype=float) * 0.0
    if axis == "tables":
        per_step = np.asarray([r["tables_seen"] / r["step"] for r in train]).mean()
        return lambda steps: np.asarray(steps, dtype=float) * per_step
    steps = np.asarray([0] + [r["step"] for r in train], dtype=float)
    hours = np.asarray([0.0] + [r["train_seconds"] / 3600 for r in train])
    return lambda at: np.interp(np.asarray(at, dtype=float), steps, hours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", type=Path, help="log.jsonl files (one curve each)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--window", type=int, default=10, help="log records in the training-loss average")
    parser.add_argument("--dpi", type=int, default=110)
    parser.add_argument("--x", choices=("tables", "hours"), default="tables",
                        help="x axis: tables seen, or training hours (train_seconds, on the run's own machine)")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(len(args.logs), 3, figsize=(15, 3.6 * len(args.logs)), squeeze=False)
    for path, axes in zip(args.logs, grid):  # one row per run: the tasks' losses differ in scale
        train, evals = read_log(path)
        label = path.parent.name
        position = x_of_step(train, args.x)
        xlabel = "tables seen" if args.x == "tables" else "training hours"
        if train:
            loss = np.asarray([r["loss"] for r in train])
            kernel = np.ones(min(args.window, len(loss))) / min(args.window, len(loss))
            x = position(np.asarray([r["step"] for r in train]))
            axes[0].plot(x[len(kernel) - 1 :], np.convolve(loss, kernel, mode="valid"), label=label)
        steps = np.asarray([r["step"] for r in evals])
        axes[1].plot(position(steps), [r["eval_prior_loss"] for r in evals], marker="o", label=label)
        real = [(s, r.get("eval_real_roc_auc", r.get("eval_real_r2"))) for s, r in zip(steps, evals)]
        real = [(s, v) for s, v in real if v is not None]
        if real:
            axes[2].plot(position(np.asarray([s for s, _ in real])), [v for _, v in real], marker="o", label=label)
        axes[0].set(title=f"{label}: training loss (mean of {args.window} records)", xlabel=xlabel, ylabel="loss")
        axes[1].set(title="held-out prior tables", xlabel=xlabel, ylabel="loss")
        axes[2].set(title="quick real-data validation (scikit-learn datasets)", xlabel=xlabel,
                    ylabel="mean ROC-AUC" if any("eval_real_roc_auc" in r for r in evals) else "mean R2")
        for ax in axes:
            ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
