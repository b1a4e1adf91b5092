"""Threshold grids, the vectorised threshold sweep and the three threshold protocols.

Every run is evaluated under three protocols (DESIGN.md, Protocol):

- ``fixed``: predict ``scores >= 0.5``.
- ``val``: for each thresholded metric, the threshold of ``VAL_GRID`` that is best on
  the *validation* set, applied to the test set. The honest default for reports.
- ``oracle``: for each thresholded metric, the best threshold of ``ORACLE_GRID`` on the
  *test set itself*. This is what the C-GMVAE and MPVAE reference code report; it is
  optimistic (the test labels choose the threshold) and exists only to compare with
  published numbers.

Threshold-free metrics (P@k, RL, LRAP) are identical under the three protocols and have
no entry in the protocols' ``thresholds`` dicts.

Ties: when several thresholds reach the best value, the smallest threshold wins.

The sweep is one pass over the data for the whole grid: ``k = searchsorted(grid, s,
side="right")`` counts, per cell, the thresholds it passes (``s >= t``); one
``bincount`` per axis histograms (label or sample, k, truth); reverse cumulative sums
over k turn the histograms into tp/fp counts at every threshold.
"""

from __future__ import annotations

import numpy as np

from benchmark.metrics import (
    METRICS,
    THRESHOLDED_METRICS,
    MetricInputError,
    as_label_matrix,
    as_score_matrix,
    check_inputs,
    ranking_metrics,
)

VAL_GRID: np.ndarray = np.round(np.arange(1, 20) * 0.05, 2)  # 0.05, 0.10, ..., 0.95
ORACLE_GRID: np.ndarray = np.round(np.arange(2, 19) * 0.05, 2)  # 0.10, 0.15, ..., 0.90
FIXED_THRESHOLD: float = 0.5
PROTOCOLS: tuple[str, ...] = ("fixed", "val", "oracle")


def as_grid(grid) -> np.ndarray:
    """A finite, non-empty, 1-D float64 grid of thresholds."""
    g = np.asarray(grid, dtype=np.float64).ravel() if np.ndim(grid) <= 1 else None
    if g is None or g.size == 0:
        raise MetricInputError("a threshold grid must be a non-empty 1-D sequence of numbers")
    if not np.isfinite(g).all():
        raise MetricInputError("a threshold grid must contain only finite numbers")
    return g


def _true_false_counts(Y: np.ndarray, passed: np.ndarray, axis: int, G: int):
    """Counts of true and false cells predicted positive, per threshold, along ``axis``.

    ``passed[i, j]`` is the number of (sorted) thresholds cell (i, j) passes. Returns
    ``(tp, fp)`` arrays of shape (groups, G) where groups are labels (axis=0) or
    samples (axis=1) and column g holds the counts at the g-th sorted threshold.
    """
    n, L = Y.shape
    group = np.arange(L) if axis == 0 else np.arange(n)[:, None]
    n_groups = L if axis == 0 else n
    # code = ((group * (G + 1)) + passed) * 2 + truth, histogrammed in one bincount
    code = (group * (G + 1) + passed) * 2 + Y
    hist = np.bincount(code.ravel(), minlength=n_groups * (G + 1) * 2).reshape(n_groups, G + 1, 2)
    # cells passing threshold g are those with passed > g: reverse cumulative sum over k
    above = np.cumsum(hist[:, ::-1, :], axis=1)[:, ::-1, :]  # above[:, k] = count(passed >= k)
    return above[:, 1:, 1], above[:, 1:, 0]


def count_passed(S: np.ndarray, sorted_grid: np.ndarray) -> np.ndarray:
    """Per cell, how many thresholds of the ascending grid it passes (``s >= t``).

    Equal to ``np.searchsorted(sorted_grid, S, side="right")``. For an evenly spaced
    grid (VAL_GRID, ORACLE_GRID) an arithmetic estimate, exact up to one step of
    rounding, is corrected with two exact comparisons, which is about twice as fast
    as the binary search.
    """
    G = len(sorted_grid)
    steps = np.diff(sorted_grid)
    if G < 3 or steps.min() <= 0 or not np.allclose(steps, steps.mean(), rtol=1e-9, atol=0):
        return np.searchsorted(sorted_grid, S, side="right")
    lo, step = sorted_grid[0], steps.mean()
    estimate = np.clip((S - lo) / step, -1.0, G)  # avoids int overflow for huge scores
    passed = np.floor(estimate).astype(np.intp) + 1
    np.clip(passed, 0, G, out=passed)
    edges = np.concatenate(([-np.inf], sorted_grid, [np.inf]))  # passed = k iff edges[k] <= s < edges[k+1]
    passed -= S < edges[passed]
    passed += S >= edges[passed + 1]
    return passed


def sweep(y_true, scores, grid) -> dict[str, np.ndarray]:
    """Every thresholded metric at every threshold of ``grid``, in one vectorised pass.

    Returns ``{metric: array(len(grid))}`` for ``THRESHOLDED_METRICS``, aligned with
    ``grid`` as given (any order). Equal to calling :func:`benchmark.metrics.compute`
    once per threshold, with the same prediction rule ``scores >= t``.
    """
    Y, S = check_inputs(y_true, scores)
    return _sweep_checked(Y, S, as_grid(grid))


def _sweep_checked(Y: np.ndarray, S: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    n, L = Y.shape
    order = np.argsort(grid, kind="stable")
    sorted_grid = grid[order]
    G = len(grid)
    passed = count_passed(S, sorted_grid)
    Yi = Y.astype(np.intp)

    tp_j, fp_j = _true_false_counts(Yi, passed, axis=0, G=G)  # (L, G)
    tp_i, fp_i = _true_false_counts(Yi, passed, axis=1, G=G)  # (n, G)
    fn_j = Y.sum(axis=0)[:, None] - tp_j
    fn_i = Y.sum(axis=1)[:, None] - tp_i

    denom_i = 2 * tp_i + fp_i + fn_i  # |y| + |ŷ|
    kept = denom_i > 0
    n_kept = kept.sum(axis=0)
    f1_i = np.divide(2.0 * tp_i, denom_i, out=np.zeros(denom_i.shape), where=kept)
    ebf1 = np.divide(f1_i.sum(axis=0), n_kept, out=np.zeros(G), where=n_kept > 0)

    denom_j = 2 * tp_j + fp_j + fn_j
    maf1 = np.divide(2.0 * tp_j, denom_j, out=np.zeros(denom_j.shape), where=denom_j > 0).mean(axis=0)

    tp, errors = tp_j.sum(axis=0), fp_j.sum(axis=0) + fn_j.sum(axis=0)
    mif1 = np.divide(2.0 * tp, 2 * tp + errors, out=np.zeros(G), where=2 * tp + errors > 0)
    ha = 1.0 - errors / (n * L)
    acc = ((fp_i == 0) & (fn_i == 0)).mean(axis=0)

    sorted_result = {"ebF1": ebf1, "miF1": mif1, "maF1": maf1, "HA": ha, "ACC": acc}
    result = {}
    for name in THRESHOLDED_METRICS:
        values = np.empty(G)
        values[order] = sorted_result[name]
        result[name] = values
    return result


def _best_index(values: np.ndarray, grid: np.ndarray) -> int:
    """Index of the best value; among ties, the one with the smallest threshold."""
    best = values.max()
    candidates = np.flatnonzero(values == best)
    return int(candidates[np.argmin(grid[candidates])])


def best_over_grid(y_true, scores, metric: str = "maF1", grid=ORACLE_GRID) -> tuple[float, float]:
    """``(best value, its threshold)`` of a thresholded metric over ``grid``.

    Used by epoch-trained models to score validation data each epoch (macro-F1 over
    ``ORACLE_GRID``). Ties go to the smallest threshold. For a threshold-free metric
    (P@k, RL, LRAP) the value does not depend on the grid: returns ``(value, nan)``.
    """
    if metric not in METRICS:
        raise MetricInputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    Y, S = check_inputs(y_true, scores)
    if metric not in THRESHOLDED_METRICS:
        return ranking_metrics(Y, S)[metric], float("nan")
    g = as_grid(grid)
    values = _sweep_checked(Y, S, g)[metric]
    i = _best_index(values, g)
    return float(values[i]), float(g[i])


def evaluate_protocols(
    y_val, s_val, y_test, s_test, val_grid=VAL_GRID, oracle_grid=ORACLE_GRID
) -> dict[str, dict[str, dict[str, float]]]:
    """All ten metrics on the test set under the fixed, val and oracle protocols.

    Returns ``{"fixed"|"val"|"oracle": {"metrics": {metric: value}, "thresholds":
    {metric: threshold}}}``. ``thresholds`` lists the five thresholded metrics only
    (threshold-free metrics have none). ``val`` thresholds are chosen on
    ``(y_val, s_val)`` alone; ``oracle`` thresholds are chosen on the test set itself,
    which is optimistic (it is what the C-GMVAE/MPVAE reference code reports).
    """
    Yv = as_label_matrix(y_val, "y_val")
    Sv = as_score_matrix(s_val, Yv.shape, "s_val")
    Yt = as_label_matrix(y_test, "y_test")
    St = as_score_matrix(s_test, Yt.shape, "s_test")
    if Yv.shape[1] != Yt.shape[1]:
        raise MetricInputError(f"validation has {Yv.shape[1]} labels, test has {Yt.shape[1]}")
    vgrid, ogrid = as_grid(val_grid), as_grid(oracle_grid)

    val_sweep = _sweep_checked(Yv, Sv, vgrid)
    # One test sweep covers every threshold any protocol may need.
    test_grid = np.union1d(np.union1d(vgrid, ogrid), [FIXED_THRESHOLD])
    test_sweep = _sweep_checked(Yt, St, test_grid)
    ranking = ranking_metrics(Yt, St)

    def test_value(metric: str, threshold: float) -> float:
        return float(test_sweep[metric][np.searchsorted(test_grid, threshold)])

    oracle_at = np.searchsorted(test_grid, ogrid)
    chosen = {"fixed": {}, "val": {}, "oracle": {}}
    for metric in THRESHOLDED_METRICS:
        chosen["fixed"][metric] = FIXED_THRESHOLD
        chosen["val"][metric] = float(vgrid[_best_index(val_sweep[metric], vgrid)])
        oracle_values = test_sweep[metric][oracle_at]
        chosen["oracle"][metric] = float(ogrid[_best_index(oracle_values, ogrid)])

    result = {}
    for protocol in PROTOCOLS:
        values = {m: test_value(m, t) for m, t in chosen[protocol].items()}
        values.update(ranking)
        result[protocol] = {
            "metrics": {name: values[name] for name in METRICS},
            "thresholds": dict(chosen[protocol]),
        }
    return result
