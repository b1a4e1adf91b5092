"""Multi-label metrics with the conventions of the C-GMVAE / MPVAE reference code.

``compute(y_true, scores, threshold)`` returns ten numbers for one run. Scores ``P``
are real numbers (normally probabilities in [0, 1]), truth ``Y`` is 0/1, ``n``
samples, ``L`` labels, and the prediction is ``Ŷ = P >= threshold``.

Thresholded metrics (``THRESHOLDED_METRICS``; :mod:`benchmark.thresholds` sweeps them
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

Where this differs from scikit-learn (see tests/test_metrics.py, which checks each):

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

RL and LRAP are vectorised over samples: one row-wise sort, tie groups found by
comparing neighbours, no Python loop per sample.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from benchmark.errors import BenchmarkError

THRESHOLDED_METRICS: tuple[str, ...] = ("ebF1", "miF1", "maF1", "HA", "ACC")
RANKING_METRICS: tuple[str, ...] = ("P@1", "P@3", "P@5", "RL", "LRAP")
METRICS: tuple[str, ...] = ("ebF1", "miF1", "maF1", "P@1", "P@3", "P@5", "HA", "ACC", "RL", "LRAP")
LOWER_IS_BETTER: frozenset[str] = frozenset({"RL"})
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
    if not ((Y == 0) | (Y == 1)).all():
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


def ranking_metrics(Y: np.ndarray, S: np.ndarray) -> dict[str, float]:
    """P@1/3/5, RL and LRAP from one row-wise sort of the scores (see module docstring)."""
    order = np.argsort(-S, axis=1)  # descending; ties resolved below, not by the sort
    S_sorted = np.take_along_axis(S, order, axis=1)
    Y_sorted = np.take_along_axis(Y, order, axis=1)
    result = {f"P@{k}": _precision_at_k(Y, S, S_sorted, Y_sorted, k) for k in TOP_K}
    result.update(_ranking_loss_and_lrap(Y_sorted, S_sorted))
    return result


def _precision_at_k(Y, S, S_sorted, Y_sorted, k: int) -> float:
    """Mean of |top-k ∩ y| / k, ties at the k-th score going to smaller column indices.

    The sorted prefix is the top-k set unless the k-th and (k+1)-th sorted scores tie;
    only those rows are recounted, taking tied labels in column order.
    """
    n, L = Y.shape
    if k >= L:
        return float(Y.sum(axis=1).mean() / k)
    hits = Y_sorted[:, :k].sum(axis=1)
    tied_rows = np.flatnonzero(S_sorted[:, k - 1] == S_sorted[:, k])
    if tied_rows.size:
        kth = S_sorted[tied_rows, k - 1][:, None]
        S_tied, Y_tied = S[tied_rows], Y[tied_rows]
        above = S_tied > kth
        at = S_tied == kth
        free_slots = k - above.sum(axis=1)
        taken = at & (np.cumsum(at, axis=1) <= free_slots[:, None])
        hits[tied_rows] = (Y_tied & (above | taken)).sum(axis=1)
    return float(hits.mean() / k)


def _ranking_loss_and_lrap(Y_sorted: np.ndarray, S_sorted: np.ndarray) -> dict[str, float]:
    """scikit-learn's label ranking loss and LRAP, vectorised over samples.

    For a true label with score s: ``all_ge`` labels and ``true_ge`` true labels score
    ``>= s`` (ties counted against the ranking, as scikit-learn does). Its precision
    term for LRAP is ``true_ge / all_ge`` and it forms ``all_ge - true_ge`` error pairs
    for RL. Only the (few) true cells are visited after the sort.
    """
    n, L = Y_sorted.shape
    n_true = Y_sorted.sum(axis=1)
    rows, positions = np.nonzero(Y_sorted)  # row-major: true cells of a row, best first
    row_start = np.concatenate(([0], np.cumsum(n_true)[:-1]))
    if (S_sorted[:, :-1] != S_sorted[:, 1:]).all():  # no ties: ranks are positions
        all_ge = positions + 1
        true_ge = np.arange(rows.size) - row_start[rows] + 1
    else:
        # last sorted position of each tie group, spread backwards over the group
        is_group_end = np.ones((n, L), dtype=bool)
        is_group_end[:, :-1] = S_sorted[:, :-1] != S_sorted[:, 1:]
        group_end = np.where(is_group_end, np.arange(L), L - 1)
        group_end = np.minimum.accumulate(group_end[:, ::-1], axis=1)[:, ::-1]
        ends = group_end[rows, positions]
        all_ge = ends + 1
        true_ge = np.cumsum(Y_sorted, axis=1)[rows, ends]

    degenerate = (n_true == 0) | (n_true == L)
    precision_sum = np.bincount(rows, weights=true_ge / all_ge, minlength=n)
    lrap_i = np.where(degenerate, 1.0, precision_sum / np.maximum(n_true, 1))
    bad_pairs = np.bincount(rows, weights=all_ge - true_ge, minlength=n)
    pairs = np.maximum(n_true * (L - n_true), 1)
    rl_i = np.where(degenerate, 0.0, bad_pairs / pairs)
    return {"RL": float(rl_i.mean()), "LRAP": float(lrap_i.mean())}
