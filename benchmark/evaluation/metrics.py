"""Multi-label metrics with the conventions of the C-GMVAE / MPVAE reference code.

``compute(y_true, scores, threshold)`` returns ten numbers for one run. Scores ``P``
are real numbers (normally probabilities in [0, 1]), truth ``Y`` is 0/1, ``n``
samples, ``L`` labels, and the prediction is ``Ŷ = P >= threshold``.

Thresholded metrics (``THRESHOLDED_METRICS``; :mod:`benchmark.evaluation.thresholds` sweeps them
over grids of thresholds):

- ``ebF1`` example-based F1: mean over samples of ``2|y∩ŷ| / (|y|+|ŷ|)``, **dropping**
  samples with ``|y|+|ŷ| = 0`` from the mean (reference code). When every sample is
  dropped (no true and no predicted label anywhere) ebF1 is 0.0.
- ``miF1`` micro F1: ``2Σtp / (2Σtp + Σfp + Σfn)``; 0.0 when the denominator is 0.
- ``maF1`` macro F1: mean over **all** ``L`` labels of ``2tp / (2tp+fp+fn)``, a label
  with ``tp+fp+fn = 0`` (never true, never predicted) scoring 0 (reference code).
- ``HA`` Hamming accuracy: fraction of the ``n·L`` cells predicted correctly.
- ``ACC`` subset accuracy: fraction of samples whose whole label set is exact.

Threshold-free metrics (``RANKING_METRICS``):

- ``P@1``, ``P@3``, ``P@5``: mean over samples of ``|top-k(P) ∩ y| / k``. Ties in
  scores are broken deterministically: among equal scores the label with the smaller
  column index ranks first. When ``k > L`` the top-k is all ``L`` labels and the
  division is still by ``k`` (the definition as written), so the maximum is ``L/k``.
- ``RL`` ranking loss (lower is better) and ``LRAP`` label-ranking average precision,
  exactly as scikit-learn defines them: tied scores count against the ranking (a tie
  between a true and a false label is an error pair for RL, and ties share the worst
  rank for LRAP); a sample with no true label or with every label true has RL 0 and
  LRAP 1, and still counts in the mean over samples.

Where this differs from scikit-learn (see tests/evaluation/test_metrics.py, which checks each):

- ``f1_score(average="samples", zero_division=z)`` keeps samples with ``|y|+|ŷ| = 0``
  in the mean with value ``z``; ebF1 drops them. They agree when no such sample
  exists, and in the all-dropped case ebF1 equals ``zero_division=0``.
- ``f1_score(average="micro", zero_division=0)`` equals miF1 always.
- ``f1_score(average="macro", zero_division=z)`` gives an empty label the value ``z``;
  maF1 gives it 0, i.e. equals ``zero_division=0``. With ``zero_division=1`` they
  differ exactly by ``(#empty labels)/L``.
- ``hamming_loss`` is ``1 - HA``; ``accuracy_score`` on the 0/1 matrices equals ACC;
  ``label_ranking_loss`` equals RL; ``label_ranking_average_precision_score`` equals
  LRAP (both also on rows with no or all true labels).
- A single label column (L = 1) is binary data to scikit-learn: its micro F1 then
  averages over the classes {0, 1} (= accuracy), and ``average="samples"`` and
  ``label_ranking_loss`` refuse it. Here it stays one label of a multi-label problem.

Ranking metrics are vectorised over samples: one value sort per row, then binary
searches for the (few) true cells only, no Python loop per sample.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmark.errors import BenchmarkError

THRESHOLDED_METRICS: tuple[str, ...] = ("ebF1", "miF1", "maF1", "HA", "ACC")
RANKING_METRICS: tuple[str, ...] = ("P@1", "P@3", "P@5", "RL", "LRAP")
METRICS: tuple[str, ...] = ("ebF1", "miF1", "maF1", "P@1", "P@3", "P@5", "HA", "ACC", "RL", "LRAP")
LOWER_IS_BETTER: frozenset[str] = frozenset({"RL", "HL", "one_error", "coverage"})  # of any metric a store may hold
TOP_K: tuple[int, ...] = (1, 3, 5)


class MetricInputError(BenchmarkError, ValueError):
    """Truth or scores of the wrong shape, type or value."""


def as_label_matrix(y_true, what: str = "y_true") -> np.ndarray:
    """``y_true`` (dense or scipy sparse, bool/int/float 0/1) as a dense bool (n, L) array."""
    if sp.issparse(y_true):
        y_true = y_true.toarray()
    Y = np.asarray(y_true)
    if Y.ndim != 2:
        raise MetricInputError(f"{what} must be a 2-D (samples, labels) matrix, got shape {Y.shape}")
    if Y.shape[0] == 0 or Y.shape[1] == 0:
        raise MetricInputError(f"{what} is empty (shape {Y.shape})")
    if Y.dtype == bool:
        return Y
    if not np.issubdtype(Y.dtype, np.number):
        raise MetricInputError(f"{what} must be numeric 0/1, got dtype {Y.dtype}")
    if np.issubdtype(Y.dtype, np.integer):  # one min/max pass instead of two comparisons
        binary = Y.max() <= 1 and Y.min() >= 0
    else:
        binary = ((Y == 0) | (Y == 1)).all()
    if not binary:
        raise MetricInputError(f"{what} must contain only 0 and 1")
    return Y.astype(bool)


def as_score_matrix(scores, shape: tuple[int, int], what: str = "scores") -> np.ndarray:
    """``scores`` as a finite float64 array of the truth's shape."""
    if sp.issparse(scores):
        scores = scores.toarray()
    S = np.asarray(scores)
    if S.shape != tuple(shape):
        raise MetricInputError(f"{what} has shape {S.shape}, the truth has shape {tuple(shape)}")
    if not np.issubdtype(S.dtype, np.number) and S.dtype != bool:
        raise MetricInputError(f"{what} must be numeric, got dtype {S.dtype}")
    S = S.astype(np.float64, copy=False)
    if not np.isfinite(S).all():
        raise MetricInputError(f"{what} contain NaN or infinite values")
    return S


def check_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validated (bool truth, float64 scores) pair, used by every public function."""
    Y = as_label_matrix(y_true)
    return Y, as_score_matrix(scores, Y.shape)


def compute(y_true, scores, threshold: float = 0.5) -> dict[str, float]:
    """All ten metrics of one run; the thresholded ones predict ``scores >= threshold``."""
    Y, S = check_inputs(y_true, scores)
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise MetricInputError(f"threshold must be finite, got {threshold}")
    result = thresholded_metrics(Y, S >= threshold)
    result.update(ranking_metrics(Y, S))
    return {name: result[name] for name in METRICS}


def thresholded_metrics(Y: np.ndarray, Y_pred: np.ndarray) -> dict[str, float]:
    """ebF1, miF1, maF1, HA, ACC of a 0/1 prediction (bool arrays of equal shape)."""
    tp_cells = Y & Y_pred
    fp_cells = ~Y & Y_pred
    fn_cells = Y & ~Y_pred
    # per sample
    tp_i = tp_cells.sum(axis=1)
    denom_i = Y.sum(axis=1) + Y_pred.sum(axis=1)
    kept = denom_i > 0
    ebf1 = float(np.mean(2.0 * tp_i[kept] / denom_i[kept])) if kept.any() else 0.0
    # per label
    tp_j, fp_j, fn_j = tp_cells.sum(axis=0), fp_cells.sum(axis=0), fn_cells.sum(axis=0)
    denom_j = 2 * tp_j + fp_j + fn_j
    f1_j = np.divide(2.0 * tp_j, denom_j, out=np.zeros(len(denom_j)), where=denom_j > 0)
    tp, errors = tp_j.sum(), fp_j.sum() + fn_j.sum()
    mif1 = float(2.0 * tp / (2 * tp + errors)) if 2 * tp + errors > 0 else 0.0
    wrong_i = (fp_cells | fn_cells).any(axis=1)
    return {
        "ebF1": ebf1,
        "miF1": mif1,
        "maF1": float(f1_j.mean()),
        "HA": float(1.0 - errors / Y.size),
        "ACC": float(1.0 - wrong_i.mean()),
    }


def ranking_metrics(Y: np.ndarray, S: np.ndarray, sorted_rows: np.ndarray | None = None) -> dict[str, float]:
    """P@1/3/5, RL and LRAP (see module docstring).

    One value sort per row (``sorted_rows``, ascending, may be passed in when the caller
    has it) plus work on the true cells only: for a true cell with score ``s`` the number
    of labels scoring ``>= s`` is a binary search in its sorted row, vectorised over all
    true cells at once. Nothing loops over samples in Python.
    """
    R = np.sort(S, axis=1) if sorted_rows is None else sorted_rows
    rows, cols = np.nonzero(Y)
    true_scores = S[rows, cols]
    result = {f"P@{k}": _precision_at_k(Y, S, R, rows, true_scores, k) for k in TOP_K}
    result.update(_ranking_loss_and_lrap(Y.shape, R, rows, true_scores))
    return result


def lower_bound(flat: np.ndarray, lo: np.ndarray, hi: np.ndarray, query: np.ndarray) -> np.ndarray:
    """First index in ``flat[lo:hi]`` (ascending) whose value is ``>= query``, per query.

    A binary search vectorised over queries: about log2(hi - lo) numpy steps in all.
    """
    lo, hi = lo.astype(np.intp, copy=True), hi.astype(np.intp, copy=True)
    last = len(flat) - 1
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        below = flat[np.minimum(mid, last)] < query
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


def count_at_least_in_rows(sorted_rows: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many entries of row ``rows[q]`` of an ascending row-sorted matrix are ``>= values[q]``."""
    L = sorted_rows.shape[1]
    start = rows.astype(np.intp) * L
    return start + L - lower_bound(sorted_rows.ravel(), start, start + L, values)


def _precision_at_k(Y, S, R, rows, true_scores, k: int) -> float:
    """Mean of |top-k ∩ y| / k, ties at the k-th score going to smaller column indices.

    With ``v`` the k-th largest score of a row, the top-k set is every label scoring
    ``>= v`` unless the (k+1)-th largest score equals ``v`` too; only those rows are
    recounted, taking the tied labels in column order.
    """
    n, L = Y.shape
    if k >= L:
        return float(Y.sum(axis=1).mean() / k)
    kth = R[:, L - k]
    hits = np.bincount(rows, weights=true_scores >= kth[rows], minlength=n)
    tied_rows = np.flatnonzero(R[:, L - k - 1] == kth)
    if tied_rows.size:
        kth_tied = kth[tied_rows][:, None]
        S_tied, Y_tied = S[tied_rows], Y[tied_rows]
        above = S_tied > kth_tied
        at = S_tied == kth_tied
        free_slots = k - above.sum(axis=1)
        taken = at & (np.cumsum(at, axis=1) <= free_slots[:, None])
        hits[tied_rows] = (Y_tied & (above | taken)).sum(axis=1)
    return float(hits.mean() / k)


def _ranking_loss_and_lrap(shape, R: np.ndarray, rows: np.ndarray, true_scores: np.ndarray) -> dict[str, float]:
    """scikit-learn's label ranking loss and LRAP, vectorised over the true cells.

    For a true label with score s: ``all_ge`` labels and ``true_ge`` true labels score
    ``>= s`` (ties counted against the ranking, as scikit-learn does). Its precision
    term for LRAP is ``true_ge / all_ge``; it forms ``all_ge - true_ge`` error pairs
    for RL.
    """
    n, L = shape
    n_true = np.bincount(rows, minlength=n)
    all_ge = count_at_least_in_rows(R, rows, true_scores)
    # the same count among the row's true labels: sort true scores within each row
    order = np.lexsort((true_scores, rows))
    true_sorted = true_scores[order]
    row_end = np.cumsum(n_true)
    row_start = row_end - n_true
    true_ge = row_end[rows] - lower_bound(true_sorted, row_start[rows], row_end[rows], true_scores)

    degenerate = (n_true == 0) | (n_true == L)
    precision_sum = np.bincount(rows, weights=true_ge / all_ge, minlength=n)
    lrap_i = np.where(degenerate, 1.0, precision_sum / np.maximum(n_true, 1))
    bad_pairs = np.bincount(rows, weights=all_ge - true_ge, minlength=n)
    pairs = np.maximum(n_true * (L - n_true), 1)
    rl_i = np.where(degenerate, 0.0, bad_pairs / pairs)
    return {"RL": float(rl_i.mean()), "LRAP": float(lrap_i.mean())}
