"""The bagging plan: how ensemble members differ, and how their outputs are combined.

Every member sees the same encoded training table through its own view:

* a feature order (a permutation of the columns),
* a sign per feature (a flip reverses the column's rank order inside the model),
* a class permutation (which label-embedding id each class gets; classification),
* a target mirror ``y -> 1 - y`` of the scaled target (regression),
* a random order of the codes of every unordered categorical column (its categories have no
  order, so none is preferred; ordered categoricals keep theirs),
* a support subsample when the training set has more rows than ``max_support_rows``, or, with
  sample weights, a weighted draw of support rows (`_weighted_rows`).

Mitra has no positional information, so the feature order changes nothing by itself; it is kept
so that feature subsets and any future positional model behave as expected. The class
permutation, sign flips, target mirror, category orders and subsample do change the model's
input, and averaging over them is what reduces the variance of the prediction (and, for the
category orders, the dependence on an order that means nothing).

All randomness comes from one ``numpy.random.RandomState`` (from ``random_state``), turned into
per-member seeds up front as in scikit-learn's bagging.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = ["EnsembleMember", "plan_members", "decode_class_probabilities", "softmax"]

#: Exclusive bound of every seed drawn for members and priors: scikit-learn's ``random_state``
#: must fit in int32.
MAX_SEED = np.iinfo(np.int32).max


@dataclass(frozen=True)
class EnsembleMember:
    """How one ensemble member sees the training table.

    Attributes
    ----------
    seed : int
        Seed of everything random this member does later (e.g. fine-tuning tasks).
    feature_order : ndarray of int
        Columns of the encoded table this member reads, in order: a permutation of all of them,
        or of a subset when the table has more than ``max_features`` columns.
    feature_signs : ndarray of float32
        +1 or -1 per column (after reordering).
    class_ids : ndarray of int or None
        ``class_ids[k]`` is the label id the model sees for class ``k`` (classification): a
        permutation of the classes, or, with more classes than the head has outputs, a
        balanced many-to-one grouping of them.
    mirror_target : bool
        Whether the scaled regression target is mirrored (``1 - y``).
    support_rows : ndarray of int or None
        Training rows used as support set (sorted; repeated rows with sample weights); None
        means all rows.
    category_codes : dict of int to ndarray, default=None
        For each unordered categorical column (index in the encoded table), the code this
        member reads for each category code ``0..K-1``; the missing/unseen code -1 is kept.
    """

    seed: int
    feature_order: np.ndarray
    feature_signs: np.ndarray
    class_ids: np.ndarray | None
    mirror_target: bool
    support_rows: np.ndarray | None
    category_codes: dict[int, np.ndarray] | None = None

    def view(self, X: np.ndarray) -> np.ndarray:
        """This member's view of an encoded table: reordered, recoded, sign-flipped float32 columns."""
        columns = X[:, self.feature_order]
        if self.category_codes:
            columns = np.array(columns, dtype=np.float32)  # a copy of our own: recoded below
            for column, codes in self.category_codes.items():
                for position in np.flatnonzero(self.feature_order == column):
                    values = columns[:, position]
                    known = values >= 0
                    values[known] = codes[values[known].astype(np.int64)]
        return np.ascontiguousarray(columns * self.feature_signs, dtype=np.float32)

    def support(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The member's support rows (its subsample, or everything)."""
        if self.support_rows is None:
            return X, y
        return X[self.support_rows], y[self.support_rows]

    def class_labels(self, y_codes: np.ndarray) -> np.ndarray:
        """Label ids the model sees for class indices ``y_codes``."""
        return self.class_ids[y_codes]

    def mirror(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled regression targets as this member sees them (``1 - y`` when mirrored); its own
        inverse. The scaling itself is `mitra_sklearn.tasks.TargetScaling`'s."""
        return 1.0 - scaled if self.mirror_target else scaled


def plan_members(
    n_estimators: int,
    n_rows: int,
    n_features: int,
    random_state: np.random.RandomState,
    *,
    y_codes: np.ndarray | None = None,
    n_classes: int = 0,
    max_support_rows: int | None = None,
    max_features: int | None = None,
    n_label_ids: int | None = None,
    category_ranks: dict[int, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
) -> list[EnsembleMember]:
    """Draw the view of every ensemble member.

    Parameters
    ----------
    n_estimators : int
        Number of members (more are added when feature subsets or class groups need them).
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
    max_features : int, optional
        With more features than this, each member reads a subset of at most ``max_features``
        columns; the subsets of consecutive members partition the columns, so every feature is
        read by at least one member (members are added until that holds).
    n_label_ids : int, optional
        Label ids the model's head has. With more classes than that, each member maps the
        classes onto ``n_label_ids`` balanced groups (an error-correcting output code); members
        are added until every pair of classes is told apart by at least two members.
    category_ranks : dict of int to ndarray, optional
        Unordered categorical columns: for each (encoded column index), the rank of each
        category code in an order that does not depend on how the categories were declared
        (e.g. sorted values). Each member reads the codes in its own random order of those
        ranks, so re-declaring the categories in another order changes nothing.
    sample_weight : ndarray of shape (n_rows,), optional
        Positive weights of the rows. Every member then draws its support rows in proportion
        to them (`_weighted_rows`) instead of reading every row or a uniform subsample.

    Notes
    -----
    Within the limits (all features, at most ``n_label_ids`` classes, no categorical codes to
    reorder, no weights) the draws are exactly those of a plan without limits, so the limits
    never change results on tables that fit.
    """
    n_chunks = 1 if max_features is None or n_features <= max_features else -(-n_features // max_features)
    grouped = n_label_ids is not None and n_classes > n_label_ids
    n_members = max(n_estimators, n_chunks)
    if grouped:
        # Enough codewords that decoding is well-determined, as in ECOC practice.
        n_members = max(n_members, 2 * int(np.ceil(np.log(n_classes) / np.log(n_label_ids))) + 2)
    seeds = random_state.randint(MAX_SEED, size=n_members)
    partitions = _feature_partitions(random_state, n_features, n_chunks, n_members) if n_chunks > 1 else None
    draw = partial(_draw_member, n_rows=n_rows, n_features=n_features, y_codes=y_codes, n_classes=n_classes,
                   max_support_rows=max_support_rows, partitions=partitions,
                   n_groups=n_label_ids if grouped else None, category_ranks=category_ranks,
                   sample_weight=sample_weight)
    members = [draw(index, int(seed)) for index, seed in enumerate(seeds)]
    if grouped:
        index = len(members)
        while not _classes_separated(members, n_classes, times=2) and index < 8 * n_members:
            members.append(draw(index, int(random_state.randint(MAX_SEED))))
            index += 1
    return members


def _draw_member(
    index: int,
    seed: int,
    *,
    n_rows: int,
    n_features: int,
    y_codes: np.ndarray | None,
    n_classes: int,
    max_support_rows: int | None,
    partitions: list[list[np.ndarray]] | None,
    n_groups: int | None,
    category_ranks: dict[int, np.ndarray] | None,
    sample_weight: np.ndarray | None,
) -> EnsembleMember:
    rng = np.random.RandomState(seed)
    order = rng.permutation(n_features)
    # The first member keeps the original signs; the others flip each column with prob. 1/2.
    signs = np.ones(n_features, dtype=np.float32)
    if index > 0:
        signs[rng.rand(n_features) < 0.5] = -1.0
    class_ids = rng.permutation(n_classes) if n_classes else None
    subsample = None
    if max_support_rows is not None and n_rows > max_support_rows and sample_weight is None:
        subsample = _subsample_rows(rng, n_rows, max_support_rows, y_codes)
    # Beyond the limits only: draws made after the usual ones, so plans within limits are unchanged.
    if partitions is not None:
        chunks = partitions[index // len(partitions[0]) % len(partitions)]
        subset = chunks[index % len(chunks)]
        order, signs = subset[rng.permutation(len(subset))], signs[: len(subset)]
    if n_groups is not None:
        # Balanced groups: class k goes to group (rank of k in a random order) mod n_groups.
        class_ids = np.empty(n_classes, dtype=np.int64)
        class_ids[rng.permutation(n_classes)] = np.arange(n_classes) % n_groups
    category_codes = None
    if category_ranks:
        # Code c reads as the rank-of-c-th entry of a random order: depends on the categories,
        # not on the order they were declared in.
        category_codes = {
            column: rng.permutation(len(ranks)).astype(np.float32)[ranks]
            for column, ranks in sorted(category_ranks.items())
        }
    if sample_weight is not None:
        subsample = _weighted_rows(rng, sample_weight, max_support_rows, y_codes)
    return EnsembleMember(
        seed=seed,
        feature_order=order,
        feature_signs=signs,
        class_ids=class_ids,
        # Alternate mirrored and plain targets so that any two members balance out.
        mirror_target=bool(index % 2),
        support_rows=subsample,
        category_codes=category_codes,
    )


def _feature_partitions(
    random_state: np.random.RandomState, n_features: int, n_chunks: int, n_members: int
) -> list[list[np.ndarray]]:
    """One random partition of the columns into ``n_chunks`` near-equal parts per cycle of members."""
    n_cycles = -(-n_members // n_chunks)
    return [np.array_split(random_state.permutation(n_features), n_chunks) for _ in range(n_cycles)]


def _classes_separated(members: list[EnsembleMember], n_classes: int, times: int) -> bool:
    """Whether every pair of classes falls into different groups in at least ``times`` members."""
    separated = np.zeros((n_classes, n_classes), dtype=np.int64)
    for member in members:
        ids = member.class_ids
        separated += ids[:, None] != ids[None, :]
    np.fill_diagonal(separated, times)
    return bool((separated >= times).all())


def _subsample_rows(
    rng: np.random.RandomState, n_rows: int, size: int, y_codes: np.ndarray | None
) -> np.ndarray:
    """Rows drawn without replacement; with labels, every class keeps at least one row."""
    rows = rng.choice(n_rows, size=size, replace=False)
    return np.sort(_keep_every_class(rng, rows, y_codes))


def _weighted_rows(
    rng: np.random.RandomState, weights: np.ndarray, max_rows: int | None, y_codes: np.ndarray | None
) -> np.ndarray:
    """Support rows drawn in proportion to positive ``weights`` (sorted, with repeats).

    A weight counts as that many copies of its row (scikit-learn's meaning of sample
    weights): the draw has ``round(sum(weights))`` rows, at least one per weighted row and at
    most ``max_rows``. It is systematic resampling (one uniform offset, evenly spaced
    positions along the cumulative weights), so row ``i`` appears ``floor`` or ``ceil`` of its
    expected count, and exactly ``weights[i]`` times when the weights are integers within
    ``max_rows``: integer weights then give the support set of the repeated rows. With labels,
    every class keeps at least one row.
    """
    n_rows = len(weights)
    size = max(n_rows, int(round(float(np.sum(weights)))))
    if max_rows is not None:
        size = min(size, max_rows)
    # Cumulative weights in units of one draw; positions offset + 0, 1, ..., size - 1.
    cumulative = np.cumsum(weights, dtype=np.float64) * (size / float(np.sum(weights)))
    positions = rng.uniform() + np.arange(size)
    rows = np.minimum(np.searchsorted(cumulative, positions, side="right"), n_rows - 1)
    return np.sort(_keep_every_class(rng, rows, y_codes, weights))


def _keep_every_class(
    rng: np.random.RandomState, rows: np.ndarray, y_codes: np.ndarray | None, weights: np.ndarray | None = None
) -> np.ndarray:
    """``rows`` with one row of each class they lack (of the training rows) in place of a row of
    their most frequent class; drawn in proportion to ``weights`` when given."""
    if y_codes is None:
        return rows
    present = np.zeros(int(y_codes.max()) + 1, dtype=bool)
    present[y_codes[rows]] = True
    for missing_class in np.flatnonzero(~present):
        candidates = np.flatnonzero(y_codes == missing_class)
        if candidates.size == 0:
            continue
        # Replace a row of the most frequent class in the subsample.
        counts = np.bincount(y_codes[rows], minlength=present.size)
        victim = np.flatnonzero(y_codes[rows] == counts.argmax())[0]
        p = None if weights is None else weights[candidates] / weights[candidates].sum()
        rows[victim] = rng.choice(candidates, p=p)
    return rows


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def decode_class_probabilities(
    group_probabilities: list[np.ndarray], members: list[EnsembleMember], n_classes: int,
    iterations: int = 200, tolerance: float = 1e-10,
) -> np.ndarray:
    """Class probabilities from members that each predict probabilities of groups of classes.

    Member ``m`` reports ``p_m(g)`` for the groups ``g`` of its class assignment. The class
    distribution ``q`` maximising ``sum_m sum_g p_m(g) log(sum_{c in g} q_c)`` (the likelihood
    of the members' group probabilities) is found by the EM fixed point
    ``q_c <- q_c * mean_m p_m(g_m(c)) / Q_m(g_m(c))`` with ``Q_m(g) = sum_{c in g} q_c``.
    If the members' group probabilities come from one class distribution, that distribution
    is recovered exactly; the result always sums to one.
    """
    n_rows = group_probabilities[0].shape[0]
    q = np.full((n_rows, n_classes), 1.0 / n_classes)
    floor = 1e-12
    for _ in range(iterations):
        ratio = np.zeros_like(q)
        for probabilities, member in zip(group_probabilities, members):
            groups = member.class_ids
            group_mass = np.zeros((n_rows, probabilities.shape[1]))
            np.add.at(group_mass.T, groups, q.T)
            ratio += (np.maximum(probabilities, floor) / np.maximum(group_mass, floor))[:, groups]
        updated = q * ratio / len(members)
        updated /= updated.sum(axis=1, keepdims=True)
        change = np.abs(updated - q).max()
        q = updated
        if change < tolerance:
            break
    return q
