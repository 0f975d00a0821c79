"""The bagging plan: how ensemble members differ, and how their outputs are combined.

Every member sees the same encoded training table through its own view:

* a feature order (a permutation of the columns),
* a sign per feature (a flip reverses the column's rank order inside the model),
* a class permutation (which label-embedding id each class gets; classification),
* a target mirror ``y -> 1 - y`` of the scaled target (regression),
* a support subsample when the training set has more rows than ``max_support_rows``.

Mitra has no positional information, so the feature order changes nothing by itself; it is kept
so that feature subsets and any future positional model behave as expected. The class
permutation, sign flips, target mirror and subsample do change the model's input, and averaging
over them is what reduces the variance of the prediction.

All randomness comes from one ``numpy.random.RandomState`` (from ``random_state``), turned into
per-member seeds up front as in scikit-learn's bagging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EnsembleMember", "plan_members", "average_probabilities", "softmax"]

_MAX_SEED = np.iinfo(np.int32).max


@dataclass(frozen=True)
class EnsembleMember:
    """How one ensemble member sees the training table.

    Attributes
    ----------
    seed : int
        Seed of everything random this member does later (e.g. fine-tuning tasks).
    feature_order : ndarray of int
        Column permutation applied to the encoded table.
    feature_signs : ndarray of float32
        +1 or -1 per column (after reordering).
    class_ids : ndarray of int or None
        ``class_ids[k]`` is the label id the model sees for class ``k`` (classification).
    mirror_target : bool
        Whether the scaled regression target is mirrored (``1 - y``).
    support_rows : ndarray of int or None
        Training rows used as support set; None means all rows.
    """

    seed: int
    feature_order: np.ndarray
    feature_signs: np.ndarray
    class_ids: np.ndarray | None
    mirror_target: bool
    support_rows: np.ndarray | None

    def view(self, X: np.ndarray) -> np.ndarray:
        """This member's view of an encoded table: reordered, sign-flipped float32 columns."""
        return np.ascontiguousarray(X[:, self.feature_order] * self.feature_signs, dtype=np.float32)

    def support(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The member's support rows (its subsample, or everything)."""
        if self.support_rows is None:
            return X, y
        return X[self.support_rows], y[self.support_rows]

    def class_labels(self, y_codes: np.ndarray) -> np.ndarray:
        """Label ids the model sees for class indices ``y_codes``."""
        return self.class_ids[y_codes]

    def scale_targets(self, y: np.ndarray, low: float, high: float) -> np.ndarray:
        """Min-max scale regression targets to [0, 1] (then mirror), as the model expects."""
        scaled = (np.asarray(y, dtype=np.float64) - low) / (high - low)
        return 1.0 - scaled if self.mirror_target else scaled

    def unscale_targets(self, scaled: np.ndarray, low: float, high: float) -> np.ndarray:
        """Inverse of :meth:`scale_targets`."""
        scaled = np.asarray(scaled, dtype=np.float64)
        if self.mirror_target:
            scaled = 1.0 - scaled
        return scaled * (high - low) + low


def plan_members(
    n_estimators: int,
    n_rows: int,
    n_features: int,
    random_state: np.random.RandomState,
    *,
    y_codes: np.ndarray | None = None,
    n_classes: int = 0,
    max_support_rows: int | None = None,
) -> list[EnsembleMember]:
    """Draw the view of every ensemble member.

    Parameters
    ----------
    n_estimators : int
        Number of members.
    n_rows, n_features : int
        Size of the encoded training table.
    random_state : numpy.random.RandomState
        The single source of randomness.
    y_codes : ndarray of int, optional
        Class index of every training row (classification); used to keep every class in a
        support subsample.
    n_classes : int, default=0
        Number of classes (0 for regression).
    max_support_rows : int, optional
        Subsample the support set of each member to this many rows when there are more.
    """
    seeds = random_state.randint(_MAX_SEED, size=n_estimators)
    members = []
    for index, seed in enumerate(seeds):
        rng = np.random.RandomState(seed)
        order = rng.permutation(n_features)
        # The first member keeps the original signs; the others flip each column with prob. 1/2.
        signs = np.ones(n_features, dtype=np.float32)
        if index > 0:
            signs[rng.rand(n_features) < 0.5] = -1.0
        class_ids = rng.permutation(n_classes) if n_classes else None
        subsample = None
        if max_support_rows is not None and n_rows > max_support_rows:
            subsample = _subsample_rows(rng, n_rows, max_support_rows, y_codes)
        members.append(
            EnsembleMember(
                seed=int(seed),
                feature_order=order,
                feature_signs=signs,
                class_ids=class_ids,
                # Alternate mirrored and plain targets so that any two members balance out.
                mirror_target=bool(index % 2),
                support_rows=subsample,
            )
        )
    return members


def _subsample_rows(
    rng: np.random.RandomState, n_rows: int, size: int, y_codes: np.ndarray | None
) -> np.ndarray:
    """Rows drawn without replacement; with labels, every class keeps at least one row."""
    rows = rng.choice(n_rows, size=size, replace=False)
    if y_codes is not None:
        present = np.zeros(int(y_codes.max()) + 1, dtype=bool)
        present[y_codes[rows]] = True
        for missing_class in np.flatnonzero(~present):
            candidates = np.flatnonzero(y_codes == missing_class)
            if candidates.size == 0:
                continue
            # Replace a row of the most frequent class in the subsample.
            counts = np.bincount(y_codes[rows], minlength=present.size)
            victim = np.flatnonzero(y_codes[rows] == counts.argmax())[0]
            rows[victim] = rng.choice(candidates)
    return np.sort(rows)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def average_probabilities(member_logits: list[np.ndarray], members: list[EnsembleMember]) -> np.ndarray:
    """Average the members' class probabilities.

    ``member_logits[m]`` has one column per model output; the columns of the member's class
    ids are taken (in class order) and the softmax runs over those only, so the outputs of
    classes the data does not have never take probability mass.
    """
    total = None
    for logits, member in zip(member_logits, members):
        probabilities = softmax(logits[:, member.class_ids].astype(np.float64))
        total = probabilities if total is None else total + probabilities
    return total / len(member_logits)
