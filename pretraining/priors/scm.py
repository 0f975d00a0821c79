"""Structural-causal-model prior: a random noisy MLP in the style of TabPFN v1 (Mitra's SCM prior).

Per table:

1. Hyper-parameters are drawn from compound ("meta") distributions: first a location (e.g. the
   mean depth), then the value around it. This gives heavier-tailed marginals than a single
   uniform draw, which is what TabPFN v1's meta-gamma / meta-log-normal samplers achieve.
2. Root causes are sampled (normal, or a mix of normal / multinomial / zipf columns).
3. The causes go through a random MLP: ``h1 = W1 c + e1``, then ``h_l = W_l act(h_{l-1}) + e_l``,
   with Gaussian noise ``e``, dropout- or block-masked normal weights.
4. Causal mode: features and target are read off random hidden nodes (target from the last layer
   when ``y_is_effect``; one contiguous block when ``in_clique``). Non-causal mode: features are
   the causes and the target is the last layer.
5. Classification: labels by rank thresholds (target values of random rows), value thresholds
   (N(0,1) on the standardised target) or argmax over several output nodes; classes are then
   permuted (or kept ordered / reversed). Regression: the node value.
6. With some probability a random subset of features is rank-bucketed into categories.
7. Optionally (``feature_quantize_prob``, 0 by default) some numeric features are quantised to a
   few values, as in the shared feature generator.

Only the description in TabPFN v1's paper/appendix and its public config ranges were used; the
code is written from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mitra_sklearn.config import Task

from .base import Prior
from .features import sample_n_categories, sample_quantisation
from .helpers import choose_weighted, rank_bucket, standardise

__all__ = ["SCMPrior", "SCMHyperparameters", "ACTIVATIONS"]


def _identity(h: np.ndarray) -> np.ndarray:
    return h


def _relu(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, 0.0)


def _leaky_relu(h: np.ndarray) -> np.ndarray:
    return np.where(h > 0.0, h, 0.01 * h)


def _elu(h: np.ndarray) -> np.ndarray:
    return np.where(h > 0.0, h, np.expm1(np.minimum(h, 0.0)))


def _sigmoid(h: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * h))  # overflow-free logistic


ACTIVATIONS = {
    "tanh": np.tanh,
    "identity": _identity,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "sigmoid": _sigmoid,
    "sin": np.sin,
    "abs": np.abs,
}


@dataclass(frozen=True)
class SCMHyperparameters:
    """The per-table draw of every SCM hyper-parameter (kept for inspection and tests)."""

    n_layers: int
    hidden: int
    n_causes: int
    noise_std: float
    init_std: float
    dropout: float
    activation: str
    causal: bool
    y_is_effect: bool
    in_clique: bool
    sort_features: bool
    block_dropout: bool
    mixed_causes: bool
    per_unit_noise: bool
    label_mode: str


def _meta_int(rng: np.random.Generator, low: int, high: int) -> int:
    """Compound integer draw: mean log-uniform in [low, high], value ~ Gamma around it, clipped."""
    mean = np.exp(rng.uniform(np.log(low), np.log(high)))
    shape = rng.uniform(1.0, 5.0)
    return int(np.clip(np.rint(rng.gamma(shape, mean / shape)), low, high))


def _meta_log(rng: np.random.Generator, low: float, high: float) -> float:
    """Compound positive draw: log-mean uniform in [log low, log high], log-normal around it."""
    log_mean = rng.uniform(np.log(low), np.log(high))
    return float(np.clip(np.exp(rng.normal(log_mean, rng.uniform(0.0, 0.5))), low, high))


class SCMPrior(Prior):
    """TabPFN-v1-style random MLP / structural causal model prior (Mitra weight 0.5).

    Parameters
    ----------
    config : PriorConfig, optional
        Uses the ``scm_*`` fields and the shared class / categorical settings.
    """

    name = "scm"

    # ---- hyper-parameters ----
    def sample_hyperparameters(self, rng: np.random.Generator) -> SCMHyperparameters:
        """Draw one table's hyper-parameters from the meta-distributions in the config."""
        c = self.config
        return SCMHyperparameters(
            n_layers=_meta_int(rng, *c.scm_n_layers),
            hidden=_meta_int(rng, *c.scm_hidden),
            n_causes=_meta_int(rng, *c.scm_n_causes),
            noise_std=_meta_log(rng, *c.scm_noise_std),
            init_std=_meta_log(rng, *c.scm_init_std),
            # meta-beta: p = max * Beta(a, b), a and b uniform in [0.1, 5] (TabPFN v1 ranges)
            dropout=float(c.scm_max_dropout * rng.beta(*rng.uniform(0.1, 5.0, size=2))),
            activation=str(rng.choice(c.scm_activations)),
            causal=bool(rng.random() < c.scm_causal_prob),
            y_is_effect=bool(rng.random() < c.scm_y_is_effect_prob),
            in_clique=bool(rng.random() < c.scm_in_clique_prob),
            sort_features=bool(rng.random() < c.scm_sort_features_prob),
            block_dropout=bool(rng.random() < c.scm_block_dropout_prob),
            mixed_causes=bool(rng.random() < c.scm_mixed_causes_prob),
            per_unit_noise=bool(rng.random() < c.scm_per_unit_noise_prob),
            label_mode=choose_weighted(rng, c.scm_label_modes),
        )

    # ---- building blocks ----
    @staticmethod
    def _causes(rng: np.random.Generator, n: int, c: int, mixed: bool) -> np.ndarray:
        """Root causes [n, c]: normal with per-cause mean/std, or mixed column types."""
        mean = rng.standard_normal(c)
        std = np.maximum(np.abs(rng.standard_normal(c) * mean), 0.1)
        causes = mean + std * rng.standard_normal((n, c))
        if not mixed:
            return causes
        kind = rng.choice(3, size=c, p=rng.dirichlet(np.ones(3)))  # 0 normal, 1 multinomial, 2 zipf
        for j in np.flatnonzero(kind == 1):
            k = int(rng.integers(2, 11))
            causes[:, j] = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k)))
        for j in np.flatnonzero(kind == 2):
            causes[:, j] = np.minimum(rng.zipf(rng.uniform(2.0, 4.0), size=n), 10)
        # Standardise the discrete columns so their scale matches the normal ones.
        discrete = kind > 0
        causes[:, discrete] = standardise(causes[:, discrete])
        return causes

    @staticmethod
    def _weights(
        rng: np.random.Generator, n_in: int, n_out: int, hp: SCMHyperparameters
    ) -> np.ndarray:
        """Normal weights with dropout or block-diagonal masking, rescaled for the kept share."""
        if hp.block_dropout:
            n_blocks = int(rng.integers(1, int(np.ceil(np.sqrt(min(n_in, n_out)))) + 1))
            mask = (
                (np.arange(n_in) * n_blocks // n_in)[:, None]
                == (np.arange(n_out) * n_blocks // n_out)[None, :]
            )
        else:
            mask = rng.random((n_in, n_out)) >= hp.dropout
        keep = max(mask.mean(), 1.0 / mask.size)
        return rng.normal(0.0, hp.init_std / np.sqrt(keep), size=(n_in, n_out)) * mask

    @staticmethod
    def _noise(rng: np.random.Generator, n: int, width: int, hp: SCMHyperparameters) -> np.ndarray:
        std = hp.noise_std * (np.abs(rng.standard_normal(width)) if hp.per_unit_noise else 1.0)
        return rng.standard_normal((n, width)) * std

    # ---- generation ----
    def _generate(self, rng, n_rows, n_features, task, n_classes):
        hp = self.sample_hyperparameters(rng)
        n_out = n_classes if (task is Task.CLASSIFICATION and hp.label_mode == "argmax") else 1
        act = ACTIVATIONS[hp.activation]

        n_causes = hp.n_causes if hp.causal else n_features
        hidden = hp.hidden
        if hp.causal:  # enough hidden nodes (layers 2..L) to read every feature and output from
            hidden = max(hidden, int(np.ceil((n_features + n_out) / (hp.n_layers - 1))))
        else:
            hidden = max(hidden, n_out)

        causes = self._causes(rng, n_rows, n_causes, hp.mixed_causes)
        h = causes @ self._weights(rng, n_causes, hidden, hp) + self._noise(rng, n_rows, hidden, hp)
        layers = [h]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> rejected by base
            for _ in range(hp.n_layers - 1):
                h = act(h) @ self._weights(rng, hidden, hidden, hp)
                h = h + self._noise(rng, n_rows, hidden, hp)
                layers.append(h)

        if hp.causal:
            x, y = self._read_nodes(rng, np.concatenate(layers[1:], axis=1), n_features, n_out, hp)
        else:
            x, y = causes, layers[-1][:, :n_out]
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            # Overflow: hand back a non-finite x so that `Prior.sample` re-draws.
            nan_x = np.full((n_rows, n_features), np.nan)
            return nan_x, np.zeros(n_rows), np.zeros(n_features, dtype=bool)
        x, y = standardise(x), standardise(y)

        y = self._labels(rng, y, n_classes, hp.label_mode) if task is Task.CLASSIFICATION else y[:, 0]
        x, categorical = self._categorise(rng, x)
        # Optional tied numeric columns (off by default: then no random number is drawn).
        quantisation = sample_quantisation(rng, ~categorical, self.config)
        if quantisation is not None:
            quantisation.apply(x)
        return x, y, categorical

    @staticmethod
    def _read_nodes(rng, nodes: np.ndarray, d: int, n_out: int, hp: SCMHyperparameters):
        """Pick feature and target columns among the hidden nodes (causal mode)."""
        n_nodes = nodes.shape[1]
        if hp.in_clique:  # one contiguous block of d + n_out nodes
            start = int(rng.integers(0, n_nodes - (d + n_out) + 1))
            pool = np.arange(start, start + d + n_out)
        else:
            pool = np.arange(n_nodes)
        if hp.y_is_effect:  # target = deepest nodes of the pool
            y_idx = pool[-n_out:]
            x_idx = rng.choice(pool[:-n_out], size=d, replace=False)
        else:
            perm = rng.permutation(pool)
            y_idx, x_idx = perm[:n_out], perm[n_out : n_out + d]
        if hp.sort_features:
            x_idx = np.sort(x_idx)
        return nodes[:, x_idx], nodes[:, y_idx]

    def _labels(self, rng, y: np.ndarray, k: int, mode: str) -> np.ndarray:
        """Turn standardised target(s) into ``k`` class ids."""
        if mode == "argmax":
            labels = y.argmax(axis=1)
        elif mode == "rank":
            labels = rank_bucket(rng, y[:, 0], k)
        else:  # "value": thresholds from N(0, 1) on the standardised target
            edges = rng.standard_normal(k - 1)
            labels = (y[:, 0:1] > edges[None, :]).sum(axis=1)
        if rng.random() < self.config.scm_ordered_prob:
            return labels if rng.random() < 0.5 else (k - 1) - labels
        return rng.permutation(k)[labels]

    def _categorise(self, rng, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """With prob ``scm_categorical_prob``, rank-bucket a random subset of columns into codes."""
        d = x.shape[1]
        categorical = np.zeros(d, dtype=bool)
        if rng.random() >= self.config.scm_categorical_prob:
            return x, categorical
        categorical = rng.random(d) < rng.random()  # per-table conversion probability
        for j in np.flatnonzero(categorical):
            k = int(min(sample_n_categories(rng, self.config), x.shape[0]))
            # Permute codes so the category id carries no order (nominal feature).
            x[:, j] = rng.permutation(k)[rank_bucket(rng, x[:, j], k)]
        return x, categorical
