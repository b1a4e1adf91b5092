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

Ties: when several thresholds reach the best value (within 1e-12, so that float noise
in equal values never decides), the smallest threshold wins.

The sweep is one pass over the data for the whole grid: ``k = searchsorted(grid, s,
side="right")`` counts, per cell, the thresholds it passes (``s >= t``); ``bincount``
histograms of (label, k) and (sample, k) codes, over all cells for predicted counts
and over the true cells for true positives, become counts at every threshold by
reverse cumulative sums over k. No Python loop runs per threshold or per label.
"""

from __future__ import annotations

import numpy as np

from benchmark.evaluation.metrics import (
    METRICS,
    THRESHOLDED_METRICS,
    MetricInputError,
    as_label_matrix,
    as_score_matrix,
    check_inputs,
    ranking_metrics,
)

VAL_GRID: np.ndarray = np.round(np.arange(1, 20) * 0.05, 2)  # 0.05, 0.10, ..., 0.95
# The nine points of the C-GMVAE/MPVAE reference code (and DESIGN.md): also the grid of the
# per-epoch validation macro-F1 that selects checkpoints, as in the reference.
ORACLE_GRID: np.ndarray = np.round(np.arange(1, 10) * 0.1, 1)  # 0.1, 0.2, ..., 0.9
FIXED_THRESHOLD: float = 0.5


def as_grid(grid) -> np.ndarray:
    """A finite, non-empty, 1-D float64 grid of thresholds."""
    g = np.asarray(grid, dtype=np.float64).ravel() if np.ndim(grid) <= 1 else None
    if g is None or g.size == 0:
        raise MetricInputError("a threshold grid must be a non-empty 1-D sequence of numbers")
    if not np.isfinite(g).all():
        raise MetricInputError("a threshold grid must contain only finite numbers")
    return g


def _counts_above(group: np.ndarray, passed: np.ndarray, n_groups: int, G: int) -> np.ndarray:
    """(n_groups, G): per group, cells passing each sorted threshold (``passed > g``).

    One ``bincount`` of (group, passed) codes, then a reverse cumulative sum over the
    bins: a cell that passes k thresholds counts for thresholds 0..k-1.
    """
    hist = np.bincount((group * (G + 1) + passed).ravel(), minlength=n_groups * (G + 1))
    hist = hist.reshape(n_groups, G + 1)
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]


def count_passed(S: np.ndarray, sorted_grid: np.ndarray) -> np.ndarray:
    """Per cell, how many thresholds of the ascending grid it passes (``s >= t``).

    Equal to ``np.searchsorted(sorted_grid, S, side="right")``, which is slow (a binary
    search per cell). For an evenly spaced grid (VAL_GRID, ORACLE_GRID) the count is
    ``floor((s - t0) / step) + 1``, computed in float32 where its rounding error is
    provably far below ``margin`` steps; the few cells within ``margin`` steps of a
    grid point are recounted exactly with ``searchsorted``.
    """
    G = len(sorted_grid)
    steps = np.diff(sorted_grid)
    if G < 3 or steps.min() <= 0 or not np.allclose(steps, steps.mean(), rtol=1e-9, atol=0):
        return np.searchsorted(sorted_grid, S, side="right")
    lo, step = float(sorted_grid[0]), float(steps.mean())
    scale = max(abs(lo), abs(float(sorted_grid[-1]))) / step + G + 2  # largest |estimate| used
    if scale * 2.0**-20 < 1e-4:
        dtype, margin = np.float32, 1e-3
    elif scale * 2.0**-48 < 1e-8:
        dtype, margin = np.float64, 1e-6
    else:
        return np.searchsorted(sorted_grid, S, side="right")
    with np.errstate(over="ignore", invalid="ignore"):
        estimate = np.multiply(S, 1.0 / step, dtype=dtype, casting="same_kind")
        estimate += dtype(1.0 - lo / step)  # grid point m sits at estimate m + 1
        np.clip(estimate, 0.5, G + 0.5, out=estimate)  # integers 1..G are the grid points
    passed = estimate.astype(np.int8 if G < 120 else np.int16 if G < 30000 else np.intp)
    estimate -= passed  # fractional part; near 0 or 1 means near a grid point
    estimate -= 0.5
    np.abs(estimate, out=estimate)
    near = np.flatnonzero(estimate > 0.5 - margin)
    if near.size:
        flat = passed.reshape(-1)
        flat[near] = np.searchsorted(sorted_grid, S.reshape(-1)[near], side="right")
    return passed


def sweep(y_true, scores, grid) -> dict[str, np.ndarray]:
    """Every thresholded metric at every threshold of ``grid``, in one vectorised pass.

    Returns ``{metric: array(len(grid))}`` for ``THRESHOLDED_METRICS``, aligned with
    ``grid`` as given (any order). Equal to calling :func:`benchmark.evaluation.metrics.compute`
    once per threshold, with the same prediction rule ``scores >= t``.
    """
    Y, S = check_inputs(y_true, scores)
    return _sweep_checked(Y, S, as_grid(grid))


def _sweep_checked(Y: np.ndarray, S: np.ndarray, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Sweep of validated inputs. Predicted counts need every cell; true-positive
    counts only the true cells."""
    n, L = Y.shape
    order = np.argsort(grid, kind="stable")
    sorted_grid = grid[order]
    G = len(grid)
    passed = count_passed(S, sorted_grid)  # (n, L): thresholds each cell passes

    pred_j = _counts_above(np.arange(L), passed, L, G)  # (L, G)
    pred_i = _counts_above(np.arange(n)[:, None], passed, n, G)  # (n, G)
    rows, cols = np.nonzero(Y)
    passed_true = passed[rows, cols]
    tp_j = _counts_above(cols, passed_true, L, G)
    tp_i = _counts_above(rows, passed_true, n, G)
    fp_j, fp_i = pred_j - tp_j, pred_i - tp_i
    fn_j = np.bincount(cols, minlength=L)[:, None] - tp_j
    fn_i = np.bincount(rows, minlength=n)[:, None] - tp_i

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


TIE_TOLERANCE = 1e-12  # metric values this close count as tied (floating-point noise)


def _best_index(values: np.ndarray, grid: np.ndarray) -> int:
    """Index of the best value; among ties (within TIE_TOLERANCE), the smallest threshold."""
    best = values.max()
    candidates = np.flatnonzero(values >= best - TIE_TOLERANCE)
    return int(candidates[np.argmin(grid[candidates])])


def best_over_grid(y_true, scores, metric: str = "maF1", grid=ORACLE_GRID) -> tuple[float, float]:
    """``(best value, its threshold)`` of a thresholded metric over ``grid``.

    Used by epoch-trained models to score validation data each epoch (macro-F1 over
    ``ORACLE_GRID``, the reference's nine points). Ties go to the smallest threshold. For a threshold-free metric
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
    for protocol in chosen:  # stored in this order: fixed, val, oracle
        values = {m: test_value(m, t) for m, t in chosen[protocol].items()}
        values.update(ranking)
        result[protocol] = {
            "metrics": {name: values[name] for name in METRICS},
            "thresholds": dict(chosen[protocol]),
        }
    return result
