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
    n, L = Y.shape
    # Stable sort of -S: descending scores, ties in ascending column order.
    order = np.argsort(-S, axis=1, kind="stable")
    S_sorted = np.take_along_axis(S, order, axis=1)
    Y_sorted = np.take_along_axis(Y, order, axis=1)

    result = {f"P@{k}": float(Y_sorted[:, :k].sum(axis=1).mean() / k) for k in TOP_K}

    # For each sorted position, the last position of its tie group: the number of
    # labels scoring >= this label's score is group_end + 1 (ties rank pessimistically).
    positions = np.arange(L)
    is_group_end = np.ones((n, L), dtype=bool)
    is_group_end[:, :-1] = S_sorted[:, :-1] != S_sorted[:, 1:]
    group_end = np.where(is_group_end, positions, L - 1)
    group_end = np.minimum.accumulate(group_end[:, ::-1], axis=1)[:, ::-1]

    true_at_or_above = np.cumsum(Y_sorted, axis=1)  # true labels in positions <= p
    true_ge = np.take_along_axis(true_at_or_above, group_end, axis=1)  # true labels scoring >= s
    all_ge = group_end + 1  # labels scoring >= s
    n_true = Y.sum(axis=1)
    degenerate = (n_true == 0) | (n_true == L)
    safe_n_true = np.maximum(n_true, 1)

    precision_sum = np.where(Y_sorted, true_ge / all_ge, 0.0).sum(axis=1)
    lrap_i = np.where(degenerate, 1.0, precision_sum / safe_n_true)

    false_ge = all_ge - true_ge  # false labels scoring >= a true label: its error pairs
    bad_pairs = np.where(Y_sorted, false_ge, 0).sum(axis=1)
    pairs = np.maximum(n_true * (L - n_true), 1)
    rl_i = np.where(degenerate, 0.0, bad_pairs / pairs)

    result["RL"] = float(rl_i.mean())
    result["LRAP"] = float(lrap_i.mean())
    return result
