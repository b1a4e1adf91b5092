"""Splits and nested training fractions: sizes, disjointness, nesting, seeds, stratification."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.splits import (
    Split,
    labels_without_positives,
    make_split,
    nested_fractions,
    stratified_order,
)
from benchmark.errors import BenchmarkError, DatasetError


@pytest.fixture(scope="module")
def yeast():
    datasource = pytest.importorskip("benchmark.data.loading")
    return datasource.load_dataset("yeast")


def dataset_from(Y, split=None, name="synthetic"):
    Y = np.asarray(Y, dtype=np.uint8)
    X = np.zeros((len(Y), 2), dtype=np.float32)
    return MultiLabelDataset(name, X, Y, ["a", "b"], [f"l{j}" for j in range(Y.shape[1])], split or {})


def synthetic_labels(n=600, L=12, seed=0):
    """Skewed label frequencies, a never-present label and ~5% rows with no label."""
    rng = np.random.default_rng(seed)
    Y = rng.random((n, L)) < np.geomspace(0.5, 0.01, L)
    Y[:, 3] = False  # a label with no positive example
    Y[rng.random(n) < 0.05] = False  # zero-label rows
    return Y.astype(np.uint8)


def mean_frequency_deviation(Y, rows):
    """Mean over labels of |frequency in the subset - frequency in the whole|."""
    return float(np.abs(Y[rows].mean(axis=0) - Y.mean(axis=0)).mean())


def assert_partition(split, n_rows=None):
    parts = [split.train, split.val, split.test]
    for part in parts:
        assert part.dtype.kind == "i" and np.all(np.diff(part) > 0)  # sorted, no repeats
        assert len(part) > 0
    union = np.concatenate(parts)
    assert len(np.unique(union)) == len(union)  # disjoint
    if n_rows is not None:
        assert np.array_equal(np.sort(union), np.arange(n_rows))


# ---------------------------------------------------------------- make_split


def test_published_split_is_kept_and_validation_drawn_from_train_file(yeast):
    split = make_split(yeast, seed=0)
    assert split.source == "published"
    assert np.array_equal(split.test, np.sort(yeast.split["test"]))
    assert np.array_equal(np.union1d(split.train, split.val), np.sort(yeast.split["train"]))
    assert_partition(split)
    assert len(split.val) == 225  # 15% of the 1500 training rows, exactly
    assert len(make_split(yeast, seed=0, val_size=0.3).val) == 450


def test_split_is_reproducible_from_the_seed_and_varies_with_it(yeast):
    a, b, c = make_split(yeast, seed=0), make_split(yeast, seed=0), make_split(yeast, seed=1)
    assert np.array_equal(a.val, b.val) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.val, c.val)
    assert np.array_equal(a.test, c.test)  # the published test part never moves
    overlap = len(np.intersect1d(a.val, c.val)) / len(a.val)
    assert overlap < 0.4  # about 15% expected by chance: really a different draw


def test_validation_is_stratified_on_yeast(yeast):
    """The validation share follows the training file's label frequencies closely."""
    Y_file = yeast.Y[np.sort(yeast.split["train"])]
    stratified, random = [], []
    for seed in range(3):
        split = make_split(yeast, seed=seed)
        in_file = np.searchsorted(np.sort(yeast.split["train"]), split.val)
        stratified.append(mean_frequency_deviation(Y_file, in_file))
        rows = np.random.default_rng(seed).choice(len(Y_file), len(in_file), replace=False)
        random.append(mean_frequency_deviation(Y_file, rows))
    assert np.mean(stratified) < 0.5 * np.mean(random)


def test_published_validation_part_is_used_as_is():
    Y = synthetic_labels(100)
    published = {"train": np.arange(0, 60), "val": np.arange(60, 80), "test": np.arange(80, 100)}
    split = make_split(dataset_from(Y, published), seed=5)
    assert split.source == "published+val"
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(split, part), published[part])


def test_unsplit_dataset_gets_stratified_80_10_10_split():
    Y = synthetic_labels(1000)
    split = make_split(dataset_from(Y), seed=0)
    assert split.source == "stratified"
    assert_partition(split, n_rows=1000)
    assert (len(split.train), len(split.val), len(split.test)) == (800, 100, 100)
    zero_rows = np.flatnonzero(Y.sum(axis=1) == 0)
    for part in (split.val, split.test):  # zero-label rows are spread, not lumped
        assert 0 < len(np.intersect1d(part, zero_rows)) < len(zero_rows) / 2
        assert mean_frequency_deviation(Y, part) < 0.02
    other = make_split(dataset_from(Y), seed=0, val_size=0.15, test_size=0.2)
    assert (len(other.train), len(other.val), len(other.test)) == (680, 120, 200)  # val: 15% of 800


def test_single_label_and_all_zero_labels_split_without_error():
    rng = np.random.default_rng(0)
    for Y in (rng.random((200, 1)) < 0.3, np.zeros((200, 4))):
        split = make_split(dataset_from(Y), seed=0)
        assert_partition(split, n_rows=200)


@pytest.mark.parametrize(
    "split, message",
    [
        ({"train": np.arange(50)}, "'train' and 'test'"),
        ({"train": np.arange(60), "test": np.arange(50, 100)}, "share rows"),
        ({"train": np.arange(60), "test": np.arange(60, 101)}, "outside"),
        ({"train": np.array([0, 0, 1]), "test": np.arange(60, 100)}, "repeat"),
    ],
)
def test_malformed_published_split_is_a_clear_error(split, message):
    with pytest.raises(DatasetError, match=message):
        make_split(dataset_from(synthetic_labels(100), split), seed=0)


def test_bad_shares_and_tiny_datasets_are_clear_errors():
    with pytest.raises(BenchmarkError, match="val_size"):
        make_split(dataset_from(synthetic_labels(100)), val_size=1.5)
    with pytest.raises(BenchmarkError, match="empty"):
        make_split(dataset_from(synthetic_labels(3)), seed=0)
    with pytest.raises(BenchmarkError, match="seed"):
        make_split(dataset_from(synthetic_labels(100)), seed=-1)


# ---------------------------------------------------------------- nested fractions

FRACTIONS = [0.05, 0.1, 0.2, 0.5, 1.0]


def test_fractions_have_exact_sizes_and_are_nested_and_sorted():
    Y = synthetic_labels(700)
    subsets = nested_fractions(Y, FRACTIONS, seed=0)
    assert list(subsets) == FRACTIONS
    for f, rows in subsets.items():
        assert len(rows) == round(f * 700)
        assert np.all(np.diff(rows) > 0) and rows.min() >= 0 and rows.max() < 700
    assert np.array_equal(subsets[1.0], np.arange(700))
    ordered = sorted(subsets)
    for small, large in zip(ordered, ordered[1:]):
        assert np.isin(subsets[small], subsets[large]).all()


def test_fractions_are_reproducible_and_independent_of_the_other_fractions():
    Y = synthetic_labels(500)
    a = nested_fractions(Y, FRACTIONS, seed=3)
    b = nested_fractions(Y, [0.2], seed=3)  # asked alone, e.g. by another suite
    c = nested_fractions(sp.csr_matrix(Y), [0.5, 0.1], seed=3)
    assert np.array_equal(a[0.2], b[0.2])
    assert np.array_equal(a[0.1], c[0.1]) and np.array_equal(a[0.5], c[0.5])
    d = nested_fractions(Y, [0.2], seed=4)
    assert not np.array_equal(a[0.2], d[0.2])


def test_stratified_order_is_a_permutation():
    Y = synthetic_labels(333)
    order = stratified_order(Y, seed=0)
    assert np.array_equal(np.sort(order), np.arange(333))
    assert not np.array_equal(order, np.arange(333))


def test_stratified_ten_percent_beats_random_on_yeast(yeast):
    """Label-frequency deviation of a stratified 10% subset vs a random 10% subset."""
    pool = yeast.Y[make_split(yeast, seed=0).train]
    stratified, random = [], []
    for seed in range(4):
        rows = nested_fractions(pool, [0.1], seed=seed)[0.1]
        stratified.append(mean_frequency_deviation(pool, rows))
        random_rows = np.random.default_rng(seed).choice(len(pool), len(rows), replace=False)
        random.append(mean_frequency_deviation(pool, random_rows))
    # measured: about 0.007 vs 0.021 (yeast, 14 labels, 128 of 1275 rows)
    assert np.mean(stratified) < 0.6 * np.mean(random)


def test_small_subsets_may_miss_labels_and_are_reported():
    Y = synthetic_labels(400)
    subsets = nested_fractions(Y, [0.05, 1.0], seed=0)
    missing_small = labels_without_positives(Y[subsets[0.05]])
    missing_all = labels_without_positives(Y)
    assert list(missing_all) == [3]
    assert set(missing_all) <= set(missing_small)
    assert len(missing_small) > 1  # the rarest labels (about 4 positives in 400) vanish at 5%
    assert np.array_equal(labels_without_positives(sp.csr_matrix(Y)), missing_all)


@pytest.mark.parametrize(
    "fractions, message",
    [([0.0], r"\(0, 1\]"), ([1.2], r"\(0, 1\]"), ([0.001], "no row"), ([], "no training")],
)
def test_bad_fractions_are_clear_errors(fractions, message):
    with pytest.raises(BenchmarkError, match=message):
        nested_fractions(synthetic_labels(100), fractions, seed=0)


def test_split_is_a_plain_record():
    split = Split(np.arange(3), np.arange(3, 4), np.arange(4, 6))
    assert split.source == "stratified" and len(split.train) == 3
