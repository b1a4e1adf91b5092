"""benchmark.evaluation.metrics against brute force written from the definitions, and scikit-learn.

The brute-force functions below loop over samples, labels and pairs exactly as
DESIGN.md words each metric; they share no code with the module under test.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from benchmark.errors import BenchmarkError
from benchmark.evaluation.metrics import (
    METRICS,
    RANKING_METRICS,
    THRESHOLDED_METRICS,
    compute,
)

# ---------------------------------------------------------------- brute force


def brute_force(Y, S, t):
    """Every metric by plain loops over lists (obviously correct, slow)."""
    Y = [[int(v) for v in row] for row in np.asarray(Y)]
    S = [[float(v) for v in row] for row in np.asarray(S)]
    n, L = len(Y), len(Y[0])
    P = [[1 if S[i][j] >= t else 0 for j in range(L)] for i in range(n)]
    out = {}

    f1s = []
    for i in range(n):
        inter = sum(Y[i][j] and P[i][j] for j in range(L))
        size = sum(Y[i]) + sum(P[i])
        if size > 0:  # the reference code drops samples with |y|+|ŷ| = 0
            f1s.append(2 * inter / size)
    out["ebF1"] = sum(f1s) / len(f1s) if f1s else 0.0

    tp = [sum(Y[i][j] and P[i][j] for i in range(n)) for j in range(L)]
    fp = [sum((not Y[i][j]) and P[i][j] for i in range(n)) for j in range(L)]
    fn = [sum(Y[i][j] and not P[i][j] for i in range(n)) for j in range(L)]
    denom = 2 * sum(tp) + sum(fp) + sum(fn)
    out["miF1"] = 2 * sum(tp) / denom if denom else 0.0
    out["maF1"] = sum(2 * tp[j] / (2 * tp[j] + fp[j] + fn[j]) if tp[j] + fp[j] + fn[j] else 0.0 for j in range(L)) / L

    for k in (1, 3, 5):
        total = 0.0
        for i in range(n):
            ranked = sorted(range(L), key=lambda j: (-S[i][j], j))  # ties: smaller column first
            total += sum(Y[i][j] for j in ranked[:k]) / k
        out[f"P@{k}"] = total / n

    out["HA"] = sum(Y[i][j] == P[i][j] for i in range(n) for j in range(L)) / (n * L)
    out["ACC"] = sum(Y[i] == P[i] for i in range(n)) / n

    losses, precisions = [], []
    for i in range(n):
        true = [j for j in range(L) if Y[i][j]]
        false = [j for j in range(L) if not Y[i][j]]
        if not true or not false:  # scikit-learn: ranking is perfect by convention
            losses.append(0.0)
            precisions.append(1.0)
            continue
        bad = sum(1 for a in true for b in false if S[i][a] <= S[i][b])
        losses.append(bad / (len(true) * len(false)))
        ap = 0.0
        for a in true:
            at_or_above = [j for j in range(L) if S[i][j] >= S[i][a]]
            ap += sum(Y[i][j] for j in at_or_above) / len(at_or_above)
        precisions.append(ap / len(true))
    out["RL"] = sum(losses) / n
    out["LRAP"] = sum(precisions) / n
    return out


def assert_metrics_equal(got, want):
    assert list(got) == list(METRICS)
    for name in METRICS:
        assert isinstance(got[name], float), name
        assert math.isclose(got[name], want[name], rel_tol=1e-12, abs_tol=1e-12), (name, got[name], want[name])


# ---------------------------------------------------------------- strategies

SCORE_LEVELS = [0.0, 0.05, 0.1, 0.3, 0.5, 0.5000001, 0.7, 0.95, 1.0]  # few levels -> many ties


@st.composite
def cases(draw, max_n=10, max_L=8):
    n = draw(st.integers(1, max_n))
    L = draw(st.integers(1, max_L))
    density = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < density).astype(np.uint8)
    if draw(st.booleans()):
        S = rng.choice(SCORE_LEVELS, size=(n, L))
    else:
        S = rng.random((n, L))
    t = draw(st.sampled_from([0.05, 0.1, 0.5, 0.7, 0.95, 1.0]))
    return Y, S, t


@settings(max_examples=300, deadline=None)
@given(cases())
def test_compute_matches_brute_force(case):
    Y, S, t = case
    assert_metrics_equal(compute(Y, S, t), brute_force(Y, S, t))


EDGE_CASES = {
    "all zero truth": (np.zeros((4, 3)), np.full((4, 3), 0.2)),
    "all one truth": (np.ones((4, 3)), np.full((4, 3), 0.7)),
    "all zero truth and predictions": (np.zeros((3, 5)), np.zeros((3, 5))),
    "all one truth and scores": (np.ones((3, 5)), np.ones((3, 5))),
    "single sample": (np.array([[1, 0, 1, 0]]), np.array([[0.9, 0.9, 0.2, 0.1]])),
    "single label": (np.array([[1], [0], [1]]), np.array([[0.6], [0.6], [0.4]])),
    "single cell": (np.array([[1]]), np.array([[0.3]])),
    "all scores tied": (np.array([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1]]), np.full((2, 6), 0.5)),
    "row without truth, row without prediction": (
        np.array([[0, 0, 0], [1, 1, 0], [0, 1, 0]]),
        np.array([[0.9, 0.1, 0.2], [0.1, 0.2, 0.3], [0.6, 0.7, 0.1]]),
    ),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_cases_match_brute_force(name):
    Y, S = EDGE_CASES[name]
    for t in (0.0, 0.5, 1.0):
        assert_metrics_equal(compute(Y, S, t), brute_force(Y, S, t))


def test_hand_computed_example():
    """Numbers worked out on paper, so the brute force itself is checked once."""
    Y = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    S = np.array([[0.9, 0.6, 0.2], [0.1, 0.2, 0.3], [0.4, 0.8, 0.8]])
    m = compute(Y, S, 0.5)
    # predictions: [1,1,0], [0,0,0], [0,1,1]; sample F1s 2/4 and 2/3, sample 2 dropped
    assert m["ebF1"] == pytest.approx((0.5 + 2 / 3) / 2)
    # tp=2, fp=2, fn=1
    assert m["miF1"] == pytest.approx(4 / 7)
    # label F1s: 2/2=1, 2/(2+1)=2/3, 0/(0+1+1)=0
    assert m["maF1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["HA"] == pytest.approx(6 / 9)
    assert m["ACC"] == pytest.approx(1 / 3)  # only the empty row is exact
    # P@1: row0 label0 true; row1 label2 false; row2 tie 0.8 -> label1 (smaller index), true
    assert m["P@1"] == pytest.approx(2 / 3)
    # row0: label2 (0.2) below false label1 (0.6): 1 bad pair of 2; row2: tie = 1 bad pair of 2
    assert m["RL"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    # row0: label0 rank1 -> 1, label2 rank3 -> 2/3; row2: label1 shares rank 2 -> 1/2
    assert m["LRAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1 + 0.5) / 3)


def test_sparse_and_boolean_truth_give_the_same_result():
    rng = np.random.default_rng(3)
    Y = (rng.random((30, 7)) < 0.3).astype(np.uint8)
    S = rng.random((30, 7)).astype(np.float32)
    dense = compute(Y, S)
    assert compute(sp.csr_matrix(Y), S) == dense
    assert compute(Y.astype(bool), S) == dense
    assert compute(Y.astype(float), S.astype(np.float64)) == dense


def test_precision_at_k_larger_than_label_count_divides_by_k():
    Y = np.array([[1, 1], [1, 0]])
    S = np.array([[0.9, 0.1], [0.2, 0.3]])
    m = compute(Y, S)
    assert m["P@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)  # at most L/k = 2/3 per row
    assert m["P@5"] == pytest.approx((2 / 5 + 1 / 5) / 2)


def test_precision_at_k_breaks_ties_by_column_index():
    S = np.full((1, 6), 0.5)
    assert compute(np.array([[1, 0, 0, 0, 0, 0]]), S)["P@1"] == 1.0
    assert compute(np.array([[0, 1, 0, 0, 0, 0]]), S)["P@1"] == 0.0
    assert compute(np.array([[0, 0, 1, 0, 0, 1]]), S)["P@3"] == pytest.approx(1 / 3)


def test_ranking_metrics_do_not_depend_on_threshold():
    rng = np.random.default_rng(4)
    Y = (rng.random((20, 9)) < 0.3).astype(int)
    S = rng.random((20, 9))
    a, b = compute(Y, S, 0.1), compute(Y, S, 0.9)
    assert {m: a[m] for m in RANKING_METRICS} == {m: b[m] for m in RANKING_METRICS}
    assert a["HA"] != b["HA"]


def test_ebf1_with_every_sample_dropped_is_zero():
    m = compute(np.zeros((3, 4)), np.zeros((3, 4)), 0.5)
    assert m["ebF1"] == 0.0 and m["miF1"] == 0.0 and m["maF1"] == 0.0
    assert m["HA"] == 1.0 and m["ACC"] == 1.0 and m["RL"] == 0.0 and m["LRAP"] == 1.0


@pytest.mark.parametrize(
    "y, s, message",
    [
        (np.zeros(3), np.zeros(3), "2-D"),
        (np.zeros((2, 3)), np.zeros((3, 2)), "shape"),
        (np.full((2, 2), 2), np.zeros((2, 2)), "only 0 and 1"),
        (np.array([[0, -1], [1, 0]]), np.zeros((2, 2)), "only 0 and 1"),
        (np.array([[0, 0.5], [1, 0]]), np.zeros((2, 2)), "only 0 and 1"),
        (np.zeros((2, 2)), np.array([[0.1, np.nan], [0.2, 0.3]]), "NaN"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "empty"),
        (np.array([["a", "b"]]), np.zeros((1, 2)), "numeric"),
    ],
)
def test_bad_input_is_a_clear_error(y, s, message):
    with pytest.raises(BenchmarkError, match=message):
        compute(y, s)
    with pytest.raises(ValueError):  # also catchable as ValueError
        compute(y, s)


# ---------------------------------------------------------------- scikit-learn


def sk_f1(Y, P, average, zero_division):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skm.f1_score(Y, P, average=average, zero_division=zero_division)


@settings(max_examples=60, deadline=None)
@given(cases(max_n=12, max_L=8))
def test_agreement_with_scikit_learn_where_definitions_coincide(case):
    Y, S, t = case
    if Y.shape[1] == 1:  # scikit-learn reads one column as binary, not multi-label (see below)
        Y, S = np.hstack([Y, 1 - Y]), np.hstack([S, 1 - S])
    P = (S >= t).astype(int)
    m = compute(Y, S, t)
    assert m["miF1"] == pytest.approx(sk_f1(Y, P, "micro", 0), abs=1e-12)
    assert m["maF1"] == pytest.approx(sk_f1(Y, P, "macro", 0), abs=1e-12)
    assert m["HA"] == pytest.approx(1 - skm.hamming_loss(Y, P), abs=1e-12)
    assert m["ACC"] == pytest.approx(skm.accuracy_score(Y, P), abs=1e-12)
    assert m["LRAP"] == pytest.approx(skm.label_ranking_average_precision_score(Y, S), abs=1e-12)
    assert m["RL"] == pytest.approx(skm.label_ranking_loss(Y, S), abs=1e-12)
    if ((Y.sum(axis=1) + P.sum(axis=1)) > 0).all():  # no sample dropped: ebF1 coincides
        assert m["ebF1"] == pytest.approx(sk_f1(Y, P, "samples", 0), abs=1e-12)
        assert m["ebF1"] == pytest.approx(sk_f1(Y, P, "samples", 1), abs=1e-12)


def test_difference_a_single_label_column_is_binary_for_scikit_learn():
    """With L = 1 scikit-learn switches to binary classification; we stay multi-label."""
    Y = np.array([[0], [0], [1]])
    S = np.array([[0.1], [0.2], [0.3]])  # nothing predicted at 0.5
    P = (S >= 0.5).astype(int)
    m = compute(Y, S)
    assert m["miF1"] == 0.0 and m["maF1"] == 0.0  # one label: tp=0, fn=1
    assert sk_f1(Y, P, "micro", 0) == pytest.approx(2 / 3)  # micro over classes {0,1} = accuracy
    with pytest.raises(ValueError):
        skm.f1_score(Y, P, average="samples")
    with pytest.raises(ValueError):
        skm.label_ranking_loss(Y, S)
    assert m["RL"] == 0.0  # each row has no or all true labels


def test_difference_ebf1_drops_empty_samples_sklearn_counts_them():
    Y = np.array([[1, 0], [0, 0], [0, 0], [0, 1]])
    S = np.array([[0.9, 0.1], [0.1, 0.1], [0.2, 0.1], [0.8, 0.1]])
    P = (S >= 0.5).astype(int)  # rows 1, 2: nothing true, nothing predicted
    ours = compute(Y, S)["ebF1"]
    assert ours == pytest.approx(0.5)  # mean of 1 and 0 over the two kept rows
    assert sk_f1(Y, P, "samples", 1) == pytest.approx((1 + 1 + 1 + 0) / 4)
    assert sk_f1(Y, P, "samples", 0) == pytest.approx((1 + 0 + 0 + 0) / 4)
    # all samples dropped: ebF1 is 0.0, i.e. scikit-learn's zero_division=0
    Z = np.zeros((3, 2))
    assert compute(Z, Z)["ebF1"] == sk_f1(Z, Z.astype(int), "samples", 0) == 0.0


def test_difference_maf1_scores_empty_labels_zero_like_zero_division_0():
    Y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]])  # label 2 never true
    S = np.array([[0.9, 0.1, 0.1], [0.2, 0.1, 0.1], [0.1, 0.9, 0.2]])  # ...and never predicted
    P = (S >= 0.5).astype(int)
    ours = compute(Y, S)["maF1"]
    assert ours == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert ours == pytest.approx(sk_f1(Y, P, "macro", 0))
    assert sk_f1(Y, P, "macro", 1) == pytest.approx(ours + 1 / 3)  # one empty label of three


def test_rows_with_no_or_all_true_labels_follow_scikit_learn_ranking_conventions():
    Y = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]])
    S = np.array([[0.9, 0.5, 0.1], [0.1, 0.2, 0.3], [0.1, 0.5, 0.9]])
    m = compute(Y, S)
    assert m["RL"] == pytest.approx(skm.label_ranking_loss(Y, S)) == pytest.approx((0 + 0 + 1) / 3)
    assert m["LRAP"] == pytest.approx(skm.label_ranking_average_precision_score(Y, S))
    assert m["LRAP"] == pytest.approx((1 + 1 + 1 / 3) / 3)


def test_on_real_labels_yeast_agrees_with_scikit_learn():
    datasource = pytest.importorskip("benchmark.data.loading")
    Y = datasource.load_dataset("yeast").Y
    rng = np.random.default_rng(0)
    S = np.clip(0.6 * Y + rng.normal(0.2, 0.25, Y.shape), 0, 1)  # informative, noisy scores
    P = (S >= 0.5).astype(int)
    m = compute(Y, S)
    assert 0.3 < m["maF1"] < 0.95 and 0.3 < m["ebF1"] < 0.95
    assert m["miF1"] == pytest.approx(sk_f1(Y, P, "micro", 0))
    assert m["maF1"] == pytest.approx(sk_f1(Y, P, "macro", 0))
    assert m["ebF1"] == pytest.approx(sk_f1(Y, P, "samples", 0))  # yeast: no empty row here
    assert m["RL"] == pytest.approx(skm.label_ranking_loss(Y, S))
    assert m["LRAP"] == pytest.approx(skm.label_ranking_average_precision_score(Y, S))


def test_thresholded_and_ranking_metrics_partition_all_metrics():
    assert set(THRESHOLDED_METRICS) | set(RANKING_METRICS) == set(METRICS)
    assert not set(THRESHOLDED_METRICS) & set(RANKING_METRICS)
