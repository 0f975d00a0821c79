"""Real-data evaluation of Mitra checkpoints next to classic baselines (library and CLI).

Protocol (``docs/evaluation.md`` explains the choices):

* every dataset gets ``n_repeats`` random splits, stratified for classification, with
  ``test_size`` of the rows held out; the training part is then subsampled (stratified) to at
  most ``max_train_rows`` rows and the test part to ``max_test_rows``. The splits depend only on
  (dataset name, row count, class labels, seed, repeat, split arguments), so Mitra, its
  ablations and every baseline see exactly the same rows; each result row carries a
  ``split_id`` hash to check it;
* metrics: ROC-AUC (binary, or one-vs-rest macro over the classes present in the test part),
  accuracy and log-loss for classification; RMSE of targets standardised with the training
  part's mean and standard deviation, and R2, for regression; fit and predict seconds;
* summaries: the mean of each metric over datasets (each dataset first averaged over its
  repeats), the average rank of each method across datasets (rank 1 = best AUC / lowest
  RMSE), its win rate against RandomForest, and the same per dataset group (binary,
  multiclass, wide, categorical; small and large regression tables).

Modules, one job each:

========================================  ==================================================
`pretraining.evaluate.splits`             the repeated train/test splits (`make_splits`)
`pretraining.evaluate.metrics`            metric definitions and computation (also used by
                                          `pretraining.generalizability`)
`pretraining.evaluate.baselines`          the baseline estimators (`baseline_factories`)
`pretraining.evaluate.runner`             fitting and scoring (`evaluate_checkpoint`,
                                          `evaluate_baselines`, `quick_validation`)
`pretraining.evaluate.reports`            summaries, markdown and figure (`summarize`,
                                          `win_rates`, `group_summary`,
                                          `paired_differences`, `ship_check`,
                                          `markdown_report`)
`pretraining.evaluate.cli`                ``python -m pretraining.evaluate``
========================================  ==================================================
"""

from .baselines import CatBoostBaseline, baseline_factories
from .cli import build_parser, main, run
from .metrics import (
    HIGHER_IS_BETTER,
    PRIMARY_METRIC,
    TASK_METRICS,
    classification_metrics,
    regression_metrics,
    roc_auc,
    score_predictions,
)
from .reports import (
    REFERENCE_METHOD,
    average_over_seeds,
    group_summary,
    markdown_report,
    merge_results,
    paired_differences,
    per_dataset_table,
    plot_results,
    ship_check,
    summarize,
    win_rates,
)
from .runner import RESULT_COLUMNS, checkpoint_task, evaluate_baselines, evaluate_checkpoint, quick_validation
from .splits import Split, make_splits

__all__ = [
    "Split",
    "make_splits",
    "roc_auc",
    "classification_metrics",
    "regression_metrics",
    "score_predictions",
    "HIGHER_IS_BETTER",
    "PRIMARY_METRIC",
    "TASK_METRICS",
    "baseline_factories",
    "CatBoostBaseline",
    "RESULT_COLUMNS",
    "evaluate_checkpoint",
    "evaluate_baselines",
    "quick_validation",
    "REFERENCE_METHOD",
    "summarize",
    "win_rates",
    "group_summary",
    "per_dataset_table",
    "paired_differences",
    "ship_check",
    "average_over_seeds",
    "plot_results",
    "checkpoint_task",
    "markdown_report",
    "merge_results",
    "build_parser",
    "main",
    "run",
]
