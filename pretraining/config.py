"""Configuration of the synthetic-data priors used for pretraining.

`PriorConfig` holds every choice the Mitra paper (arXiv 2510.21204) leaves open. Each field
carries a one-line reason; the longer discussion is in ``docs/priors.md``. Ranges are inclusive
``(low, high)`` pairs. Defaults target Mitra's full-scale set-up (<= 16 features, support <= 512 +
128 query rows, <= 10 classes, 50% SCM + 10% each tree prior).

`TrainConfig` holds the model size, optimisation and run settings of one pretraining run, and
`PRESETS` the named runs (``cpu-small``, ``gpu-8min``, ``mitra-full``, ...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from mitra_sklearn.config import N_LABEL_IDS, OFFICIAL_SHAPE, Task

__all__ = ["PriorConfig", "TrainConfig", "PRESETS", "preset"]

IntRange = tuple[int, int]
FloatRange = tuple[float, float]


@dataclass(frozen=True)
class PriorConfig:
    """Every free choice of the synthetic table generators (frozen, picklable).

    Use ``dataclasses.replace(cfg, field=value)`` to derive variants, ``to_dict``/``from_dict``
    to store a config next to a checkpoint.
    """

    # ---- table sizes (paper: <= 16 features, <= 640 rows = support <= 512 + 128 query) ----
    # Support size in range; lower bound unpublished, 64 keeps some small-data tables.
    n_support: IntRange = (64, 512)
    # How the support size is drawn: "uniform" in the range, or "log_uniform" (as many tables of
    # 32-64 rows as of 512-1024: large tables seen, small ones, which are cheap, kept common).
    support_size_sampling: str = "uniform"
    # Query size; Mitra v1 used a fixed 128 query rows (config field `n_samples_query`).
    n_query: IntRange = (128, 128)
    # Feature count uniform in range; Mitra's max is 16, its min is unpublished (TabICL uses 2).
    n_features: IntRange = (2, 16)

    # ---- classes ----
    # Output head width of the Mitra classifier.
    max_classes: int = N_LABEL_IDS
    # P(binary); otherwise uniform in 2..max_classes, as in TabPFN v1 and TabICL.
    binary_prob: float = 0.5
    # Which head ids a k-class table uses: "random_subset" maps its classes to k random ids of
    # 0..max_classes-1 (TabForestPFN), so every id is trained; "first" permutes 0..k-1 (the v1
    # checkpoints' recipe, which leaves the high ids of a 10-wide head nearly untrained).
    class_ids: str = "random_subset"

    # ---- shared feature generator (paper App. A.2.1) ----
    # p_cat ~ U[low, high]; n_categorical = floor(p_cat * (d + 1)) capped at d (paper).
    categorical_share: FloatRange = (0.0, 1.0)
    # n_categories = 1 + Geometric(p): >= 2, mean ~3.9; paper says "geometric", p unpublished.
    categories_geometric_p: float = 0.35
    # Cap on categories so a 64-row support still sees most of them.
    max_categories: int = 16
    # P(a table gets MCAR missing values); 0 because Mitra's use of NaNs is unpublished and the
    # data stream imputes them anyway (the model never sees NaN).
    missing_prob: float = 0.0
    # Per-table missing rate ~ U[low, high] when a table gets missing values.
    missing_rate: FloatRange = (0.01, 0.2)
    # P(a table gets quantised numeric columns: ties / few distinct values, like integers or
    # ratings in real tables); 0 keeps the v1 stream unchanged. Applies to every prior.
    feature_quantize_prob: float = 0.0
    # Share of a table's numeric columns that are quantised, ~ U[low, high] per table.
    feature_quantize_share: FloatRange = (0.1, 1.0)
    # About how many distinct values a quantised column keeps (grid step 6 / levels on N(0, 1)).
    feature_quantize_levels: IntRange = (2, 12)
    # P(a table's inputs are correlated through a Gaussian copula; real columns are rarely
    # independent); 0 keeps the v1 stream unchanged. Feature-generator priors only (SCM features
    # are correlated by construction).
    feature_copula_prob: float = 0.0
    # Rank of the copula's random factor model (correlation = W W^T + I, normalised).
    feature_copula_factors: IntRange = (1, 4)
    # Loading std of the factor model: ~0.3 gives |corr| ~0.1, 3 gives |corr| up to ~0.9.
    feature_copula_strength: FloatRange = (0.3, 3.0)

    # ---- robustness ----
    # Draws per table before a prior falls back to fewer classes / gives up. Random-label
    # forests collapse to one class in up to ~1/3 of binary draws (ET), so 16 makes a failure
    # ~1e-8 rare while costing nothing on average.
    max_attempts: int = 16

    # ---- SCM prior (TabPFN v1 MLP-SCM; ranges follow TabPFN v1 / TabICL meta-distributions) ----
    # MLP depth; TabPFN v1 meta-gamma has mean <= 3 and lower bound 2; capped at 6 for cost.
    scm_n_layers: IntRange = (2, 6)
    # Hidden width; TabPFN v1 lower bound 4, mean up to 100; capped at 128 for cost.
    scm_hidden: IntRange = (4, 128)
    # Number of root causes in causal mode; TabPFN v1 >= 2, mean up to 7; TabICL 1..12.
    scm_n_causes: IntRange = (2, 12)
    # Additive Gaussian noise std, log-scale range of TabPFN v1 / TabICL.
    scm_noise_std: FloatRange = (1e-4, 0.3)
    # Weight init std, log-scale range of TabPFN v1 / TabICL.
    scm_init_std: FloatRange = (0.01, 10.0)
    # Weight dropout p = max * Beta(a, b); TabPFN v1 meta-beta scale 0.6.
    scm_max_dropout: float = 0.6
    # P(causal mode: x and y read off random MLP nodes) vs non-causal (x = causes); TabPFN choice.
    scm_causal_prob: float = 0.5
    # P(y taken from the last layer) in causal mode; TabPFN boolean choice.
    scm_y_is_effect_prob: float = 0.5
    # P(x and y taken from one contiguous block of nodes); TabPFN boolean choice.
    scm_in_clique_prob: float = 0.5
    # P(feature nodes sorted by index); TabPFN option (no effect after the stream's column shuffle).
    scm_sort_features_prob: float = 0.5
    # P(block-diagonal weight masks instead of iid dropout); TabPFN boolean choice.
    scm_block_dropout_prob: float = 0.5
    # P(causes mixed normal / multinomial / zipf) vs all normal; TabPFN "mixed" sampling.
    scm_mixed_causes_prob: float = 0.5
    # P(per-unit noise std ~ |N(0, noise_std)|) vs one shared std; TabPFN pre-sampled noise.
    scm_per_unit_noise_prob: float = 0.5
    # One activation per table; TabPFN v1 uses tanh/identity/relu, TabICL adds more families.
    scm_activations: tuple[str, ...] = (
        "tanh", "identity", "relu", "leaky_relu", "elu", "sigmoid", "sin", "abs",
    )
    # Label assignment mode weights: rank (TabPFN v1 default), value thresholds, argmax.
    scm_label_modes: tuple[tuple[str, float], ...] = (
        ("rank", 0.6), ("value", 0.2), ("argmax", 0.2),
    )
    # P(classes keep their value order, possibly reversed); TabForestPFN uses 0 (always permute).
    scm_ordered_prob: float = 0.0
    # P(a table gets categorical columns); TabForestPFN's categorical_feature_p = 0.2.
    scm_categorical_prob: float = 0.2

    # ---- tree priors fitted on random labels (paper Alg. 2) ----
    # Base-set size B; paper unpublished, TabForestPFN 1024; 256-512 keeps fitting cheap.
    tree_base_size: IntRange = (256, 512)
    # Base-label class probabilities ~ Dirichlet(alpha); alpha unpublished. 3 keeps ~85% of the
    # requested classes in the predictions (alpha 1: ~70%) while still giving imbalanced classes.
    tree_label_alpha: float = 3.0
    # max_depth for DT/ET/RF; TabForestPFN 1..24 on 1024 rows; 12 already memorises 512 rows.
    tree_max_depth: IntRange = (2, 12)
    # min_samples_leaf; small values keep the random-label function rough (paper unpublished).
    tree_min_samples_leaf: IntRange = (1, 8)
    # max_features choices (uniform); TabForestPFN uses "sqrt".
    tree_max_features: tuple[str | float, ...] = ("sqrt", "log2", 0.5, 1.0)
    # ET/RF n_estimators; <= 16 keeps a table under ~25 ms (measured 35-45 ms at 1..32 trees).
    forest_n_estimators: IntRange = (1, 16)
    # GB boosting stages; <= 16 (measured 213 ms/table at 1..16 stages and base 1024).
    gb_n_estimators: IntRange = (1, 16)
    # GB tree depth; shallow trees as usual for boosting.
    gb_max_depth: IntRange = (1, 4)
    # GB learning rate, log-uniform; large enough that random labels leave a mark.
    gb_learning_rate: FloatRange = (0.05, 1.0)
    # Cap on stages x trees-per-stage (multiclass GB fits one tree per class per stage).
    gb_max_total_trees: int = 64

    # ---- DSRF: directly sampled random forest (paper Alg. 3-5) ----
    # Number of random trees N_e (paper unpublished).
    dsrf_n_trees: IntRange = (1, 32)
    # d_min: every node above this depth splits.
    dsrf_min_depth: IntRange = (1, 3)
    # d_max: no node at or below this depth splits (<= 2^10 leaves per tree).
    dsrf_max_depth: IntRange = (3, 10)
    # p_nc ~ U[low, high]: probability that a node between d_min and d_max has no children.
    dsrf_p_nc: FloatRange = (0.0, 0.5)
    # Root threshold interval for continuous N(0,1) columns (covers 99.7% of the mass).
    dsrf_thres_interval: FloatRange = (-3.0, 3.0)
    # Regression leaf values ~ N(mu, sigma); the stream min-max scales targets anyway.
    dsrf_leaf_mu: float = 0.0
    dsrf_leaf_sigma: float = 1.0

    # ---- rules: a random lookup table / decision list / score over a few discrete features ----
    # Categorical share for this prior: rule-like real tables are mostly categorical.
    rules_categorical_share: FloatRange = (0.3, 1.0)
    # Categories 1 + Geometric(p); 0.5 makes half the columns binary (shared generator: 0.35).
    rules_categories_geometric_p: float = 0.5
    # Share of the numeric columns turned into small-integer (quantised) columns, per table.
    rules_discrete_share: FloatRange = (0.0, 1.0)
    # Distinct values of those small-integer columns (binary flags .. 1-6 ratings).
    rules_discrete_levels: IntRange = (2, 6)
    # Features the target reads (raised for classification until the table has k cells).
    rules_n_vars: IntRange = (1, 4)
    # Levels per rule feature: a categorical column's codes are merged into this many groups, a
    # numeric column is cut at levels - 1 thresholds; <= 4^4 = 256 cells keeps the table small.
    rules_levels: IntRange = (2, 4)
    # Target family weights: random lookup table over the cells, first-match decision list,
    # additive points score (clf: ordered bins of the total).
    rules_modes: tuple[tuple[str, float], ...] = (("table", 0.4), ("list", 0.4), ("score", 0.2))
    # Rules in a decision list (raised to k - 1 for classification so each class has a rule).
    rules_n_rules: IntRange = (1, 6)
    # Most literals ("feature level in S") per decision-list rule.
    rules_max_literals: int = 2
    # P(a rules table gets noise); the rest stay exactly rule-determined.
    rules_noise_prob: float = 0.5
    # Label flip rate ~ U[low, high] when noisy (a flipped row gets a uniform random class).
    rules_flip_rate: FloatRange = (0.0, 0.1)
    # Regression noise std ~ U[low, high] times the target's std when noisy.
    rules_noise_std: FloatRange = (0.0, 0.1)

    # ---- additive: linear + univariate smooth terms + a few pairwise interactions ----
    # Categorical share for this prior: mostly numeric, as in smooth real regression tables.
    additive_categorical_share: FloatRange = (0.0, 0.5)
    # Share of the features with a linear term, ~ U[low, high] per table (the rest are
    # irrelevant unless a smooth term or interaction picks them).
    additive_linear_share: FloatRange = (0.0, 1.0)
    # Univariate smooth terms per score, each of a kind drawn uniformly from additive_smooth_kinds.
    additive_n_smooth: IntRange = (0, 4)
    # Smooth families: polynomial (degree 2-3), sine, soft step, hinge, random linear spline.
    additive_smooth_kinds: tuple[str, ...] = ("poly", "sine", "step", "hinge", "spline")
    # Pairwise product interactions.
    additive_n_interactions: IntRange = (0, 2)
    # Noise std relative to the signal std, log-uniform: very low (1e-3) to moderate (0.5).
    additive_noise: FloatRange = (1e-3, 0.5)
    # P(classes = argmax of k additive scores) vs quantile bins of one score (linear boundaries).
    additive_softmax_prob: float = 0.3

    # ---- mixture (paper Table 6 caption: SCM 50%, tree priors 10% each) ----
    mixture: tuple[tuple[str, float], ...] = (
        ("scm", 0.5), ("et", 0.1), ("gb", 0.1), ("dt", 0.1), ("rf", 0.1), ("dsrf", 0.1),
    )

    # (name, weight) pair fields: stored as {name: weight} dicts by to_dict / from_dict.
    _WEIGHT_PAIR_FIELDS = ("mixture", "scm_label_modes", "rules_modes")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            is_range = (
                isinstance(value, tuple)
                and len(value) == 2
                and all(isinstance(v, (int, float)) for v in value)
                and f.name != "tree_max_features"
            )
            if is_range and value[0] > value[1]:
                raise ValueError(f"PriorConfig.{f.name}: low > high in {value}")
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ValueError(f"PriorConfig.{f.name} must be in [0, 1], got {value}")
        if self.n_support[0] < 2 or self.n_query[0] < 1 or self.n_features[0] < 1:
            raise ValueError("PriorConfig: need n_support >= 2, n_query >= 1, n_features >= 1")
        if self.max_classes < 2:
            raise ValueError("PriorConfig.max_classes must be >= 2")
        if not 0.0 < self.categories_geometric_p <= 1.0 or self.max_categories < 2:
            raise ValueError(
                "PriorConfig: need 0 < categories_geometric_p <= 1 and max_categories >= 2"
            )
        if self.max_attempts < 1:
            raise ValueError("PriorConfig.max_attempts must be >= 1")
        for name in ("feature_quantize_levels", "rules_discrete_levels", "rules_levels"):
            if getattr(self, name)[0] < 2:
                raise ValueError(f"PriorConfig.{name} must start at >= 2, got {getattr(self, name)}")
        for name in ("feature_copula_factors", "rules_n_vars", "rules_n_rules"):
            if getattr(self, name)[0] < 1:
                raise ValueError(f"PriorConfig.{name} must start at >= 1, got {getattr(self, name)}")
        for name in ("feature_quantize_share", "rules_categorical_share", "rules_discrete_share",
                     "additive_categorical_share", "additive_linear_share"):
            if not 0.0 <= getattr(self, name)[0] <= getattr(self, name)[1] <= 1.0:
                raise ValueError(f"PriorConfig.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.rules_max_literals < 1 or not 0.0 < self.rules_categories_geometric_p <= 1.0:
            raise ValueError("PriorConfig: need rules_max_literals >= 1, 0 < rules_categories_geometric_p <= 1")
        if self.additive_noise[0] <= 0.0:
            raise ValueError("PriorConfig.additive_noise is log-uniform: its low end must be > 0")
        if self.support_size_sampling not in ("uniform", "log_uniform"):
            raise ValueError(
                "PriorConfig.support_size_sampling must be 'uniform' or 'log_uniform', "
                f"got {self.support_size_sampling!r}"
            )
        if self.class_ids not in CLASS_ID_MODES:
            raise ValueError(f"PriorConfig.class_ids must be one of {CLASS_ID_MODES}, got {self.class_ids!r}")
        # Checked here, so that a bad --prior fails before a run folder or train_config.json exists.
        check_mixture(dict(self.mixture))

    # ---- serialisation ----
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict (tuples become lists, weight pairs become dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self._WEIGHT_PAIR_FIELDS:
                out[f.name] = {k: float(w) for k, w in value}
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorConfig:
        """Inverse of `to_dict`; missing keys keep their defaults, unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"PriorConfig.from_dict: unknown keys {unknown}")
        return cls(**{name: cls.field_value(name, value) for name, value in data.items()})

    @classmethod
    def field_value(cls, name: str, value: Any) -> Any:
        """A field's value from its JSON / command-line form: lists become tuples, and weight pairs
        (``mixture``, ``scm_label_modes``, ``rules_modes``) come from a dict, a list of pairs or an
        ``"a=0.5,b=0.5"`` string."""
        if name in cls._WEIGHT_PAIR_FIELDS:
            if isinstance(value, str):
                return parse_mixture(value)
            items = value.items() if isinstance(value, dict) else value
            return tuple((str(k), float(w)) for k, w in items)
        return tuple(value) if isinstance(value, list) else value

    def replace(self, **changes: Any) -> PriorConfig:
        """Shorthand for `dataclasses.replace`."""
        return dataclasses.replace(self, **changes)

    @property
    def mixture_spec(self) -> str:
        """The mixture as a ``"scm=0.5,et=0.1,..."`` string (the ``--prior`` syntax)."""
        return ",".join(f"{name}={weight:g}" for name, weight in self.mixture)


CLASS_ID_MODES = ("random_subset", "first")
#: The values of ``TrainConfig.optimizer``.
OPTIMIZERS = ("adamw", "muon")
#: The values of ``TrainConfig.grow_layers``.
GROW_LAYERS = ("repeat", "identity")


#: The registered priors (`pretraining.priors.PRIORS` holds their classes under these names).
PRIOR_NAMES = ("scm", "dt", "et", "gb", "rf", "dsrf", "rules", "additive")


def check_mixture(weights: Mapping[str, float]) -> None:
    """Raise ValueError unless ``weights`` maps known prior names to finite weights >= 0, not all 0."""
    if not weights:
        raise ValueError("a prior mixture needs at least one prior")
    for name, weight in weights.items():
        if name not in PRIOR_NAMES:
            raise ValueError(f"unknown prior {name!r} in the mixture; choose from {sorted(PRIOR_NAMES)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of prior {name!r} must be a finite number >= 0, got {weight!r}")
    if sum(weights.values()) <= 0:
        raise ValueError("the prior mixture's weights must not all be zero")


def parse_mixture(spec: str) -> tuple[tuple[str, float], ...]:
    """Parse ``"scm=0.5,et=0.1,..."`` (a bare name means weight 1) into mixture pairs.

    Raises
    ------
    ValueError
        On an empty spec, a malformed item, a repeated name or a weight that is not a number.
        Unknown prior names are reported by `check_mixture` (called by `PriorConfig`).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty prior mixture spec; expected e.g. 'scm=0.5,et=0.5'")
    weights: dict[str, float] = {}
    for item in spec.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        name = name.lower()
        if not name:
            raise ValueError(f"empty prior name in mixture spec {spec!r}")
        if name in weights:
            raise ValueError(f"prior {name!r} appears twice in mixture spec {spec!r}")
        try:
            weights[name] = float(value) if sep else 1.0
        except ValueError:
            raise ValueError(f"weight {value!r} of prior {name!r} is not a number") from None
    return tuple(weights.items())


@dataclass(frozen=True)
class TrainConfig:
    """One pretraining run: model shape, data, optimiser, schedule and bookkeeping.

    Batch sizes count tables. ``batch_size`` is the global number of tables per optimizer step
    (all ranks and accumulation steps together); ``micro_batch_size`` is how many tables one
    rank puts through one forward pass (None: ``batch_size // world_size``). ``priors`` holds
    every setting of the synthetic tables (sizes, class counts, mixture, generator ranges);
    ``--set priors.binary_prob=0.3`` reaches any of them from the command line.
    """

    task: Task = Task.CLASSIFICATION
    # ---- model (Mitra layout; the released checkpoints are dim 512, 12 layers, 4 heads) ----
    dim: int = 512
    n_layers: int = 12
    n_heads: int = 4
    # Head width: None = by task (``priors.max_classes`` ids for classification, 1 scalar for
    # regression); a regression head wider than 1 is a binned head.
    dim_output: int | None = None
    # ---- data ----
    priors: PriorConfig = PriorConfig()
    # One (support, query, features) shape per micro-batch: no padding, no masks, no waste.
    same_shape_per_batch: bool = True
    num_workers: int = 1
    # ---- optimisation (AdamW or Muon + AdamW, decay-free norms/biases/embeddings, warm-up + cosine to 10%) ----
    batch_size: int = 64
    micro_batch_size: int | None = None
    # Most table cells (rows x (features + 1)) one forward pass holds: a micro-batch of large
    # tables is split into chunks under this, which bounds the activation memory (about 32 KB per
    # cell at dim 96 x 3 layers) whatever the table size. None: no limit.
    max_cells_per_forward: int | None = None
    steps: int = 1000
    lr: float = 1e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    # Cooldown (the "decay" of a warmup-stable-decay schedule): the last ``cooldown_steps`` steps
    # leave the cosine and fall linearly from its value at their start to ``min_lr_ratio``, so a run
    # can be brought to a finished, low-learning-rate state early. ``cosine_steps`` is the cosine's
    # horizon (None: ``steps``); keeping the old horizon when a cooldown shortens a run avoids a
    # jump in the learning rate (``python -m pretraining resume --cooldown``).
    cooldown_steps: int = 0
    cosine_steps: int | None = None
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    # "adamw": AdamW for every parameter. "muon": Muon (torch.optim.Muon, orthogonalised
    # momentum) for the 2-D weight matrices inside the layers (attention q/k/v/o, MLP linears),
    # AdamW with ``lr``, betas and ``weight_decay`` for the rest (embeddings, norms, biases, head).
    optimizer: str = "adamw"
    # Peak rate of the Muon group, on the same schedule as ``lr``. 0.02 is the reference value
    # (Keller Jordan's Muon and modded-nanogpt). Muon's update has a fixed spectral norm (lr,
    # x sqrt(rows / cols) for tall matrices) whatever the gradient's size, so its rate carries
    # over between widths and is not comparable to an AdamW rate.
    muon_lr: float = 0.02
    # Muon's (Nesterov) momentum, the reference value.
    muon_momentum: float = 0.95
    # The output head's AdamW rate is ``lr`` times this (its own groups when not 1). A binned
    # head made from a scalar one (`pretraining.heads`) has weights scaled by 1 / std^2 (44 at
    # std 0.15), so at the trunk's rate its relative steps, and its widths, move 44x slower.
    head_lr_scale: float = 1.0
    # Binned regression heads: the loss is the cross-entropy over the bins plus this times the
    # MSE of the bins' mean on the scaled targets (the mean is what ``predict`` returns and R2
    # scores). Cross-entropy alone lets the mean drift: the binned regressor's held-out prior
    # MSE rose from 0.0155 to 0.0165 over steps 2,400-3,400 while its cross-entropy fell. Per
    # query row the mean's gradient on the logits is about 0.001-0.002 x this weight against
    # about 0.9 for the cross-entropy's (docs/pretraining.md); 0: cross-entropy alone.
    mean_loss_weight: float = 0.0
    # Weight averaging: the decay of an exponential moving average of the weights (float32),
    # updated after every step, warmed up as min(decay, (1 + n) / (10 + n)) over its n updates so
    # far. Checkpoints export the average (and evaluations read it); training goes on with the
    # raw weights. None: no average (switching it on when resuming starts it from the weights then).
    ema_decay: float | None = None
    # 'auto': bf16 autocast on CUDA and on CPUs with AMX (1.18-1.27x faster there, the attention
    # kept in float32), float32 elsewhere (bf16 is several times slower on AVX2-only CPUs).
    precision: str = "auto"
    gradient_checkpointing: bool = False
    compile: bool = False
    seed: int = 0
    # Warm start: a new run's initial weights (a checkpoint folder, a run folder's newest
    # checkpoint, or a shipped checkpoint name). The model shape must match, or be deeper with the
    # same width, heads and head: layers are then repeated (`pretraining.train.layer_mapping`).
    # Ignored on resume.
    init_from: str | None = None
    # How a deeper model grows from ``init_from``'s layers: "repeat" copies each source layer in
    # order (3 -> 4 layers: 0, 0, 1, 2), which changes the function (a repeated layer adds its
    # update twice); "identity" copies them the same way but zeroes every later copy's output
    # projections (both attentions' ``o``, ``linear2``, ``linear4``), so each added layer starts
    # as the identity and the deeper model computes exactly the source's outputs at step 0.
    grow_layers: str = "repeat"
    # ---- bookkeeping ----
    log_every: int = 10
    # Every evaluation reads the weights saved at its step (an evaluation step is a save step).
    eval_every: int = 200
    save_every: int = 100
    # Also save when this much wall time passed since the last save (a kill loses little).
    save_every_seconds: float = 300.0
    keep_checkpoints: int = 2
    # Stop (after saving) once this much training time has passed in this process; None: never.
    time_limit: float | None = None
    # Held-out prior tables evaluated every ``eval_every`` steps (fixed seed).
    n_eval_tables: int = 64
    # Also evaluate on the small real datasets bundled with scikit-learn.
    real_data_eval: bool = True

    def __post_init__(self) -> None:
        try:  # parsed once, here: the rest of pretraining reads a Task
            object.__setattr__(self, "task", Task.parse(self.task))
        except ValueError as err:
            raise ValueError(f"TrainConfig.task: {err}") from None
        for name in ("dim", "n_layers", "n_heads", "batch_size", "steps", "log_every", "eval_every", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.grow_layers not in GROW_LAYERS:
            raise ValueError(f"TrainConfig.grow_layers must be one of {GROW_LAYERS}, got {self.grow_layers!r}")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ValueError("TrainConfig.micro_batch_size must be >= 1")
        if self.max_cells_per_forward is not None and self.max_cells_per_forward < 1:
            raise ValueError("TrainConfig.max_cells_per_forward must be >= 1")
        if self.precision not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"TrainConfig.precision: unknown {self.precision!r}")
        if not 0 <= self.cooldown_steps <= self.steps:
            raise ValueError(
                f"TrainConfig.cooldown_steps must be in [0, steps={self.steps}], got {self.cooldown_steps}"
            )
        if self.cosine_steps is not None and self.cosine_steps < 1:
            raise ValueError(f"TrainConfig.cosine_steps must be >= 1 or None, got {self.cosine_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError("TrainConfig.min_lr_ratio must be in [0, 1]")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.muon_lr <= 0.0 or not 0.0 <= self.muon_momentum < 1.0:
            raise ValueError("TrainConfig: need muon_lr > 0 and 0 <= muon_momentum < 1")
        if not self.head_lr_scale > 0.0:
            raise ValueError(f"TrainConfig.head_lr_scale must be > 0, got {self.head_lr_scale}")
        if not self.mean_loss_weight >= 0.0:
            raise ValueError(f"TrainConfig.mean_loss_weight must be >= 0, got {self.mean_loss_weight}")
        if self.mean_loss_weight and (self.task is not Task.REGRESSION or self.head_size < 2):
            raise ValueError(
                "TrainConfig.mean_loss_weight applies to a binned regression head (task='regression' "
                f"with dim_output > 1); this run has task={self.task.value!r}, head size {self.head_size}"
            )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if not isinstance(self.priors, PriorConfig):
            raise TypeError(f"TrainConfig.priors must be a PriorConfig, got {type(self.priors).__name__}")
        if self.task is Task.CLASSIFICATION and self.priors.max_classes > self.head_size:
            raise ValueError(
                f"TrainConfig: priors.max_classes ({self.priors.max_classes}) exceeds the head width "
                f"({self.head_size})"
            )

    @property
    def cosine_horizon(self) -> int:
        """Step at which the cosine reaches ``min_lr_ratio`` (``cosine_steps``, default ``steps``)."""
        return self.cosine_steps or self.steps

    @property
    def cooldown_start(self) -> int:
        """First step of the linear cooldown (``steps`` when there is none)."""
        return self.steps - self.cooldown_steps

    @property
    def head_size(self) -> int:
        """Output size of the model head."""
        if self.dim_output is not None:
            return self.dim_output
        return self.priors.max_classes if self.task is Task.CLASSIFICATION else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict; ``priors`` is nested (`PriorConfig.to_dict`)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, PriorConfig):
                out[f.name] = value.to_dict()
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`. Also reads the flat layout of runs saved before ``priors``
        existed (``prior`` mixture string and ``n_support`` / ``n_query`` / ``n_features``)."""
        data = dict(data)
        priors = data.pop("priors", None)
        priors = PriorConfig.from_dict(priors) if isinstance(priors, dict) else PriorConfig()
        legacy = {k: data.pop(k) for k in ("n_support", "n_query", "n_features") if k in data}
        if legacy:
            priors = priors.replace(**{k: tuple(v) for k, v in legacy.items()}, class_ids="first")
        if "prior" in data:
            priors = priors.replace(mixture=parse_mixture(data.pop("prior")))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown keys {unknown}")
        return cls(priors=priors, **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def replace(self, **changes: Any) -> TrainConfig:
        """`dataclasses.replace`; ``"priors.<field>"`` keys (passed as ``**{...}``) change a prior setting."""
        prior_changes = {k.removeprefix("priors."): v for k, v in changes.items() if k.startswith("priors.")}
        changes = {k: v for k, v in changes.items() if not k.startswith("priors.")}
        if prior_changes:
            changes["priors"] = changes.get("priors", self.priors).replace(**prior_changes)
        return dataclasses.replace(self, **changes)


#: The mitra-small v2 campaign's mixture: the paper's SCM + five tree priors, plus the rule-based
#: and additive priors for the real-data failures of v1 (docs/priors.md).
V2_MIXTURE_SPEC = "scm=0.4,rules=0.15,additive=0.15,et=0.06,gb=0.06,dt=0.06,rf=0.06,dsrf=0.06"
#: PriorConfig settings of the v2 campaign: ``PriorConfig().replace(**V2_PRIOR_SETTINGS)``.
V2_PRIOR_SETTINGS: dict[str, Any] = {
    "mixture": parse_mixture(V2_MIXTURE_SPEC),
    "feature_quantize_prob": 0.3,
    "feature_copula_prob": 0.3,
}


def _sizes(n_support: IntRange, n_query: IntRange, n_features: IntRange, **more: Any) -> PriorConfig:
    return PriorConfig(n_support=n_support, n_query=n_query, n_features=n_features, **more)


#: Named runs. Sizes for the CPU preset were picked from measured step times on a 2-core CPU
#: (docs/pretraining.md); the GPU presets from the H100 measurements of the official code.
PRESETS: dict[str, TrainConfig] = {
    # A useful small model in about 90 minutes on 2 CPU cores.
    "cpu-small": TrainConfig(
        dim=96, n_layers=3, n_heads=4, priors=_sizes((32, 256), (64, 64), (2, 12), class_ids="first"),
        batch_size=32, steps=3000, lr=1e-3, warmup_steps=100, weight_decay=0.01, num_workers=1,
        log_every=10, eval_every=250, save_every=50, n_eval_tables=64,
    ),
    # mitra-small v2 (a CPU campaign over many sessions, warm-started from v1, one run per task):
    # the v2 mixture (rule-like and additive priors, quantised and correlated inputs), tables of
    # 32-512 support rows (log-uniform) and 2-20 features, 30 % binary tables, every head id.
    # A later stage (--init-from this run) moves to 1,024-2,048 rows and 32-64 features.
    "cpu-v2": TrainConfig(
        dim=96, n_layers=3, n_heads=4,
        priors=_sizes((32, 512), (64, 128), (2, 20), support_size_sampling="log_uniform", binary_prob=0.3,
                      class_ids="random_subset", **V2_PRIOR_SETTINGS),
        batch_size=32, max_cells_per_forward=65_536, steps=8000, lr=5e-4, warmup_steps=200, weight_decay=0.01,
        num_workers=0,
        log_every=10, eval_every=250, save_every=50, save_every_seconds=300, n_eval_tables=64,
    ),
    # mitra-small v2, stage 2 (--init-from the cpu-v2 run): the larger tables real data brings,
    # 64-1,024 support rows (log-uniform) and 2-32 features, at a lower learning rate. About 3x
    # the cost per table of cpu-v2 on a CPU; the GPU sessions can go further (2,048 x 64).
    "cpu-v2-large": TrainConfig(
        dim=96, n_layers=3, n_heads=4,
        priors=_sizes((64, 1024), (64, 128), (2, 32), support_size_sampling="log_uniform", binary_prob=0.3,
                      class_ids="random_subset", **V2_PRIOR_SETTINGS),
        batch_size=32, max_cells_per_forward=65_536, steps=4000, lr=2e-4, warmup_steps=100, weight_decay=0.01,
        num_workers=0, log_every=10, eval_every=250, save_every=50, save_every_seconds=300, n_eval_tables=64,
    ),
    # One H100 for about 8 minutes (bf16, no activation checkpointing at this size).
    "gpu-8min": TrainConfig(
        dim=256, n_layers=6, n_heads=4, priors=_sizes((64, 512), (128, 128), (2, 16)),
        batch_size=128, steps=3000, lr=5e-4, warmup_steps=200, num_workers=14, log_every=25,
        eval_every=500, save_every=250, save_every_seconds=120, time_limit=480, n_eval_tables=256,
    ),
    # The paper's model: 12 x 512, 2,048 tables per step, ~22k steps (45M tables).
    "mitra-full": TrainConfig(
        **OFFICIAL_SHAPE, priors=_sizes((64, 512), (128, 128), (2, 16)),
        batch_size=2048, micro_batch_size=64, steps=22000, lr=2e-4, warmup_steps=1000,
        gradient_checkpointing=True, num_workers=16, log_every=10, eval_every=500, save_every=250,
        n_eval_tables=512,
    ),
    # A seconds-long run for tests and smoke checks.
    "tiny": TrainConfig(
        dim=32, n_layers=2, n_heads=4, priors=_sizes((16, 48), (16, 16), (2, 6)),
        batch_size=8, steps=30, lr=3e-3, warmup_steps=3, num_workers=0, log_every=5, eval_every=15,
        save_every=10, n_eval_tables=16, real_data_eval=False,
    ),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """A named preset with some fields replaced."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose from {sorted(PRESETS)}.")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
