"""Train/validation/test splits and nested, label-stratified training fractions.

All randomness comes from the *split seed*, which is separate from the model seed:
every model and every model seed sees the same rows, so spread over model seeds
measures model variance only.

Stratification is iterative stratification (Sechidis et al., 2011) from the
``iterative-stratification`` package: ``iterstrat.ml_stratifiers.IterativeStratification``,
the routine behind its ``MultilabelStratifiedShuffleSplit``. We call the routine
directly, after a seeded shuffle of the rows (which is what the shuffle-split wrapper
does too), because that gives a three-way train/val/test split in one pass and also
works for a single label column (the wrapper rejects one column as "binary"). Rows
with no label are spread evenly over the parts; labels with no positive example are
ignored by the algorithm.

- :func:`make_split`: the dataset's published train/test split when it has one (a
  published ``val`` part is used as is); otherwise a stratified train/val/test split.
- :func:`nested_fractions`: for each training fraction, a label-stratified subset of
  the training pool, each smaller subset inside each larger one. The pool is put in a
  *stratified order* once (recursive stratified halving, so that every prefix is a
  union of stratified blocks) and each fraction takes a prefix. A subset therefore
  depends only on the pool, the fraction and the seed, not on which other fractions
  are requested.
- :func:`labels_without_positives`: labels a (small) subset has no positive example of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from benchmark.errors import BenchmarkError, DatasetError
from benchmark.lazy import lazy

ml_stratifiers = lazy("iterstrat.ml_stratifiers")

# Streams derived from one split seed, so that the split and the fractions never share
# random numbers (changing the validation share does not reshuffle the fractions).
_SPLIT_STREAM, _FRACTION_STREAM = 0, 1


class SplitError(BenchmarkError, ValueError):
    """Split sizes or fractions that cannot be honoured."""


@dataclass(frozen=True)
class Split:
    """Sorted row indices into the dataset for each part.

    ``source`` says where the split came from: ``"published"`` (train/test published,
    validation drawn from the training file), ``"published+val"`` (all three published)
    or ``"stratified"`` (drawn here, the dataset had no published split).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    source: str = "stratified"


def _random_state(seed: int, stream: int) -> np.random.RandomState:
    """A legacy RandomState (what iterstrat needs) for one stream of one seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SplitError(f"the split seed must be a non-negative integer, got {seed!r}")
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence([int(seed), stream])))


def _dense_labels(Y) -> np.ndarray:
    if sp.issparse(Y):
        Y = Y.toarray()
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise SplitError(f"labels must be a 2-D (samples, labels) matrix, got shape {Y.shape}")
    return Y.astype(bool)


def stratified_assignment(Y: np.ndarray, ratios, rng: np.random.RandomState) -> np.ndarray:
    """Part number (0..len(ratios)-1) of every row, by iterative stratification.

    Rows are shuffled first (the algorithm only randomises ties), so the result varies
    with ``rng``. Iterative stratification matches label counts closely but lets part
    sizes drift (a row brings all its labels along), which shifts every label
    *frequency*; :func:`_fix_sizes` then moves the fewest, best-suited rows so that part
    sizes are exact (largest-remainder rounding of ``ratios * n``).
    """
    n = len(Y)
    ratios = np.asarray(ratios, dtype=float)
    order = rng.permutation(n)
    present = Y[:, Y.any(axis=0)]  # absent labels never steer the algorithm, only cost time
    parts_in_order = ml_stratifiers.IterativeStratification(labels=present[order], r=ratios, random_state=rng)
    parts = np.empty(n, dtype=np.intp)
    parts[order] = parts_in_order
    return _fix_sizes(Y, parts, ratios, rng)


def target_sizes(n: int, ratios: np.ndarray) -> np.ndarray:
    """Integer part sizes summing to ``n``, closest to ``ratios * n`` (largest remainder)."""
    exact = np.asarray(ratios, dtype=float) / np.sum(ratios) * n
    sizes = np.floor(exact).astype(np.intp)
    leftover = n - sizes.sum()
    sizes[np.argsort(-(exact - sizes), kind="stable")[:leftover]] += 1
    return sizes


def _fix_sizes(Y: np.ndarray, parts: np.ndarray, ratios: np.ndarray, rng) -> np.ndarray:
    """Move rows from oversized to undersized parts until sizes are exact.

    Each move takes, from the most oversized part, the row whose move lowers the total
    absolute deviation of label counts from their targets the most (a row with no label
    costs nothing; ties broken at random), so moves repair label counts rather than
    disturb them.
    """
    k = len(ratios)
    targets = target_sizes(len(Y), ratios)
    sizes = np.bincount(parts, minlength=k)
    if np.array_equal(sizes, targets):
        return parts
    Y_rows = sp.csr_matrix(Y, dtype=np.float64)  # gains in O(nnz), fine for wide label sets
    desired = np.outer(targets / len(Y), np.asarray(Y_rows.sum(axis=0)).ravel())
    counts = np.stack([np.asarray(Y_rows[parts == p].sum(axis=0)).ravel() for p in range(k)])
    jitter = rng.random_sample(len(Y)) * 1e-9
    while True:
        excess = sizes - targets
        giver, taker = int(np.argmax(excess)), int(np.argmin(excess))
        if excess[giver] <= 0:
            return parts
        # per label, how much moving one positive lowers the total |count - desired|
        give, take = counts[giver] - desired[giver], counts[taker] - desired[taker]
        weight = (np.abs(give) - np.abs(give - 1)) + (np.abs(take) - np.abs(take + 1))
        gain = np.where(parts == giver, Y_rows @ weight + jitter, -np.inf)
        row = int(np.argmax(gain))
        parts[row] = taker
        labels = Y_rows[row].toarray().ravel()
        counts[giver] -= labels
        counts[taker] += labels
        sizes[giver] -= 1
        sizes[taker] += 1


def make_split(dataset, seed: int = 0, val_size: float | None = None, test_size: float = 0.1) -> Split:
    """The train/val/test split of ``dataset`` for one split seed.

    - Published train and test parts (``dataset.split``) are used as they are; a
      published ``val`` too. Otherwise the validation set is a stratified ``val_size``
      share of the training file (default 0.15).
    - Without a published split: a stratified split with ``test_size`` of all rows for
      test and ``val_size`` of the remaining rows for validation: train/val/test shares
      ``(1 - test_size)(1 - val_size)`` / ``(1 - test_size) val_size`` / ``test_size``.
      With ``val_size=None`` (1/9) that is 80/10/10; with the suites' ``val_size = 0.15``
      (what runs use, README) it is 76.5/13.5/10.

    Rows listed in no published part are left out. Drawn parts have exact sizes
    (largest-remainder rounding of the shares).
    """
    Y = _dense_labels(dataset.Y)
    published = {part: np.asarray(idx, dtype=np.intp) for part, idx in (dataset.split or {}).items()}
    rng = _random_state(seed, _SPLIT_STREAM)
    if published:
        return _published_split(dataset.name, Y, published, 0.15 if val_size is None else val_size, rng)
    val_size = 1 / 9 if val_size is None else val_size
    _check_share("val_size", val_size)
    _check_share("test_size", test_size)
    val_share = (1 - test_size) * val_size
    parts = stratified_assignment(Y, [1 - test_size - val_share, val_share, test_size], rng)
    split = Split(*(np.flatnonzero(parts == p) for p in range(3)), source="stratified")
    _check_non_empty(dataset.name, split)
    return split


def _published_split(name: str, Y: np.ndarray, parts: dict, val_size: float, rng) -> Split:
    if "train" not in parts or "test" not in parts:
        raise DatasetError(f"{name}: a published split needs 'train' and 'test' parts, got {sorted(parts)}")
    n = len(Y)
    for part, idx in parts.items():
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise DatasetError(f"{name}: published '{part}' indices fall outside the {n} rows")
        if len(np.unique(idx)) != len(idx):
            raise DatasetError(f"{name}: published '{part}' indices repeat rows")
    names = [p for p in ("train", "val", "test") if p in parts]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if np.intersect1d(parts[a], parts[b]).size:
                raise DatasetError(f"{name}: published '{a}' and '{b}' parts share rows")
    if "val" in parts:
        split = Split(*(np.sort(parts[p]) for p in ("train", "val", "test")), source="published+val")
    else:
        _check_share("val_size", val_size)
        train_file = np.sort(parts["train"])
        in_val = stratified_assignment(Y[train_file], [1 - val_size, val_size], rng) == 1
        split = Split(train_file[~in_val], train_file[in_val], np.sort(parts["test"]), source="published")
    _check_non_empty(name, split)
    return split


def _check_share(what: str, share: float) -> None:
    if not 0 < share < 1:
        raise SplitError(f"{what} must lie strictly between 0 and 1, got {share}")


def _check_non_empty(name: str, split: Split) -> None:
    for part in ("train", "val", "test"):
        if len(getattr(split, part)) == 0:
            raise SplitError(f"{name}: the {part} part of the split is empty (too few rows for these shares)")


def stratified_order(Y, seed: int, min_block: int | None = None) -> np.ndarray:
    """A permutation of the rows whose every prefix is close to label-stratified.

    Recursive stratified halving: the rows are split into two stratified halves, the
    first half is ordered before the second, and each half is ordered the same way
    until blocks are small (``min_block`` rows, default ``max(16, n/64)``), which are
    shuffled. A prefix is then a union of stratified blocks plus part of one small
    block.
    """
    Y = _dense_labels(Y)
    n = len(Y)
    rng = _random_state(seed, _FRACTION_STREAM)
    if min_block is None:
        min_block = max(16, int(np.ceil(n / 64)))
    pieces: list[np.ndarray] = []
    pending = [np.arange(n)]  # a stack, first block on top, so pieces come out in order
    while pending:
        block = pending.pop()
        if len(block) <= min_block:
            pieces.append(rng.permutation(block))
            continue
        halves = stratified_assignment(Y[block], [0.5, 0.5], rng)
        first, second = block[halves == 0], block[halves == 1]
        if len(first) == 0 or len(second) == 0:  # cannot happen for len > 1, but stay safe
            pieces.append(rng.permutation(block))
            continue
        pending.append(second)
        pending.append(first)
    return np.concatenate(pieces) if pieces else np.arange(0)


def nested_fractions(Y_pool, fractions, seed: int) -> dict[float, np.ndarray]:
    """``{fraction: sorted indices into the pool}``, nested and label-stratified.

    The subset for a fraction ``f`` has ``round(f * n)`` rows (1.0 = the whole pool)
    and is the ``f``-prefix of :func:`stratified_order`, so smaller subsets lie inside
    larger ones and a subset depends only on the pool, ``f`` and the seed: identical
    for every model and reproducible from the seed alone.
    """
    Y = _dense_labels(Y_pool)
    n = len(Y)
    values = [float(f) for f in fractions]
    if not values:
        raise SplitError("no training fractions given")
    for f in values:
        if not 0 < f <= 1:
            raise SplitError(f"training fraction {f} must lie in (0, 1]")
        if round(f * n) == 0:
            raise SplitError(f"training fraction {f} of {n} training rows leaves no row")
    order = stratified_order(Y, seed) if any(f < 1 for f in values) else np.arange(n)
    return {f: np.sort(order[: int(round(f * n))]) for f in values}


def labels_without_positives(Y) -> np.ndarray:
    """Column indices of labels with no positive example in ``Y`` (dense or sparse)."""
    if sp.issparse(Y):
        counts = np.asarray(Y.sum(axis=0)).ravel()
    else:
        counts = np.asarray(Y).sum(axis=0)
    return np.flatnonzero(counts == 0)
