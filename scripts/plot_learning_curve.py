"""Learning curves of pretraining runs from their ``log.jsonl`` (for the model card).

    python scripts/plot_learning_curve.py campaign/mitra-small-v2-classifier/log.jsonl --out curve.png

Plots, against tables seen: the training loss (smoothed over a window of log records), the
held-out prior loss, and the mean real-data score of the quick validation (ROC-AUC for
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", type=Path, help="log.jsonl files (one curve each)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--window", type=int, default=10, help="log records in the training-loss average")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(len(args.logs), 3, figsize=(15, 3.6 * len(args.logs)), squeeze=False)
    for path, axes in zip(args.logs, grid):  # one row per run: the tasks' losses differ in scale
        train, evals = read_log(path)
        label = path.parent.name
        if train:
            per_step = np.asarray([r["tables_seen"] / r["step"] for r in train]).mean()
            tables = np.asarray([r["tables_seen"] for r in train])
            loss = np.asarray([r["loss"] for r in train])
            kernel = np.ones(min(args.window, len(loss))) / min(args.window, len(loss))
            axes[0].plot(tables[len(kernel) - 1 :], np.convolve(loss, kernel, mode="valid"), label=label)
        else:
            per_step = 0.0
        steps = np.asarray([r["step"] for r in evals])
        axes[1].plot(steps * per_step, [r["eval_prior_loss"] for r in evals], marker="o", label=label)
        real = [(s, r.get("eval_real_roc_auc", r.get("eval_real_r2"))) for s, r in zip(steps, evals)]
        real = [(s, v) for s, v in real if v is not None]
        if real:
            axes[2].plot([s * per_step for s, _ in real], [v for _, v in real], marker="o", label=label)
        axes[0].set(title=f"{label}: training loss (mean of {args.window} records)", xlabel="tables seen",
                    ylabel="loss")
        axes[1].set(title="held-out prior tables", xlabel="tables seen", ylabel="loss")
        axes[2].set(title="quick real-data validation (scikit-learn datasets)", xlabel="tables seen",
                    ylabel="mean ROC-AUC" if "classifier" in label else "mean R2")
        for ax in axes:
            ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
