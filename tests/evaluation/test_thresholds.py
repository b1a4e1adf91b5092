"""The vectorised threshold sweep and the fixed / val / oracle protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.errors import BenchmarkError
from benchmark.evaluation.metrics import (
    METRICS,
    RANKING_METRICS,
    THRESHOLDED_METRICS,
    compute,
)
from benchmark.evaluation.thresholds import (
    ORACLE_GRID,
    VAL_GRID,
    best_over_grid,
    count_passed,
    evaluate_protocols,
    sweep,
)


def test_grids_are_the_documented_ones():
    assert len(VAL_GRID) == 19 and VAL_GRID[0] == 0.05 and VAL_GRID[-1] == 0.95
    # the oracle grid is the reference code's nine points 0.1, 0.2, ..., 0.9 (DESIGN.md)
    assert ORACLE_GRID.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert np.allclose(np.diff(VAL_GRID), 0.05)
    # grid points are the plain decimals, so compute(..., 0.15) means the same threshold
    assert 0.15 in VAL_GRID and 0.5 in VAL_GRID and 0.5 in ORACLE_GRID and 0.15 not in ORACLE_GRID


@st.composite
def sweep_cases(draw):
    n, L = draw(st.integers(1, 12)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Y = (rng.random((n, L)) < draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))).astype(np.uint8)
    if draw(st.booleans()):  # scores on grid points and their neighbours: boundary cases
        levels = np.concatenate([VAL_GRID, np.nextafter(VAL_GRID, 0), [0.0, 1.0]])
        S = rng.choice(levels, size=(n, L))
    else:
        S = rng.random((n, L))
    grid = draw(
        st.sampled_from(
            [VAL_GRID, ORACLE_GRID, np.array([0.5]), np.array([0.9, 0.1, 0.5, 0.5]), np.linspace(0, 1, 41)]
        )
    )
    return Y, S, grid


@settings(max_examples=100, deadline=None)
@given(sweep_cases())
def test_sweep_equals_compute_at_every_threshold(case):
    Y, S, grid = case
    swept = sweep(Y, S, grid)
    assert set(swept) == set(THRESHOLDED_METRICS)
    for g, t in enumerate(grid):
        expected = compute(Y, S, t)
        for name in THRESHOLDED_METRICS:
            assert swept[name].shape == (len(grid),)
            assert math.isclose(swept[name][g], expected[name], rel_tol=1e-12, abs_tol=1e-12), (name, t)


GRIDS = [
    VAL_GRID,
    ORACLE_GRID,
    np.linspace(-1, 2, 7),
    np.linspace(0, 1, 200),  # more than int8 bins
    np.linspace(1000, 1001, 11),  # far from zero: float64 estimate
    np.linspace(1e9, 1e9 + 1, 5),  # too far for any estimate: binary search
    np.array([0.2, 0.7]),
    np.array([0.5]),
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-2, 3, allow_nan=False), min_size=1, max_size=50), st.sampled_from(GRIDS))
def test_count_passed_equals_binary_search(values, grid):
    rng = np.random.default_rng(len(values))
    near_grid = rng.uniform(grid[0] - 1, grid[-1] + 1, 200)
    on_grid = list(grid) + list(np.nextafter(grid, -np.inf)) + list(np.nextafter(grid, np.inf))
    S = np.array(values + on_grid + list(near_grid) + [-1e300, 1e300])
    assert np.array_equal(count_passed(S, grid), np.searchsorted(grid, S, side="right"))


def test_sweep_has_no_python_loop_per_threshold_and_scales():
    """A 200-point grid costs about the same as a 2-point one (one pass over the data)."""
    import time

    rng = np.random.default_rng(0)
    Y = (rng.random((1000, 300)) < 0.05).astype(np.uint8)
    S = rng.random((1000, 300))

    def seconds(grid):
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            sweep(Y, S, grid)
            best = min(best, time.perf_counter() - start)
        return best

    assert seconds(np.linspace(0.001, 0.999, 200)) < 4 * seconds(np.array([0.3, 0.6]))


def test_best_over_grid_returns_best_value_and_its_threshold():
    rng = np.random.default_rng(1)
    Y = (rng.random((200, 6)) < 0.3).astype(int)
    S = np.clip(0.35 * Y + rng.random((200, 6)) * 0.6, 0, 1)
    value, threshold = best_over_grid(Y, S, "maF1", ORACLE_GRID)
    per_threshold = [compute(Y, S, t)["maF1"] for t in ORACLE_GRID]
    assert value == pytest.approx(max(per_threshold))
    assert threshold == ORACLE_GRID[int(np.argmax(per_threshold))]
    assert threshold != 0.5  # informative scores shifted below 0.5: the grid matters here


def test_best_over_grid_breaks_ties_towards_the_smallest_threshold():
    Y = np.array([[1, 0], [0, 1]])
    S = np.array([[1.0, 0.0], [0.0, 1.0]])  # perfect at every threshold in (0, 1]
    assert best_over_grid(Y, S, "maF1", ORACLE_GRID) == (1.0, 0.1)
    assert best_over_grid(Y, S, "ebF1", np.array([0.9, 0.3, 0.6])) == (1.0, 0.3)


def test_best_over_grid_of_a_threshold_free_metric_has_no_threshold():
    Y = np.array([[1, 0], [0, 1]])
    S = np.array([[0.9, 0.1], [0.8, 0.2]])
    value, threshold = best_over_grid(Y, S, "P@1")
    assert value == 0.5 and math.isnan(threshold)
    with pytest.raises(BenchmarkError, match="unknown metric"):
        best_over_grid(Y, S, "F1")


def _val_and_test_that_disagree(seed=0):
    """Validation scores separate the classes around 0.8, test scores around 0.3."""
    rng = np.random.default_rng(seed)
    y_val = (rng.random((300, 5)) < 0.3).astype(np.uint8)
    y_test = (rng.random((250, 5)) < 0.3).astype(np.uint8)
    s_val = np.where(y_val == 1, rng.uniform(0.8, 1.0, y_val.shape), rng.uniform(0.0, 0.78, y_val.shape))
    s_test = np.where(y_test == 1, rng.uniform(0.3, 1.0, y_test.shape), rng.uniform(0.0, 0.28, y_test.shape))
    return y_val, s_val, y_test, s_test


def test_protocols_structure_and_fixed_protocol():
    y_val, s_val, y_test, s_test = _val_and_test_that_disagree()
    result = evaluate_protocols(y_val, s_val, y_test, s_test)
    assert list(result) == ["fixed", "val", "oracle"]
    expected_fixed = compute(y_test, s_test, 0.5)
    for protocol, entry in result.items():
        assert list(entry["metrics"]) == list(METRICS)
        assert list(entry["thresholds"]) == list(THRESHOLDED_METRICS)  # ranking metrics: none
        for name in RANKING_METRICS:  # threshold-free: identical under every protocol
            assert entry["metrics"][name] == expected_fixed[name]
    assert result["fixed"]["thresholds"] == {m: 0.5 for m in THRESHOLDED_METRICS}
    for name in METRICS:
        assert result["fixed"]["metrics"][name] == pytest.approx(expected_fixed[name], abs=1e-12)


def test_val_thresholds_come_from_validation_only():
    y_val, s_val, y_test, s_test = _val_and_test_that_disagree()
    result = evaluate_protocols(y_val, s_val, y_test, s_test)
    for metric in THRESHOLDED_METRICS:
        t_val = result["val"]["thresholds"][metric]
        assert t_val == best_over_grid(y_val, s_val, metric, VAL_GRID)[1]
        assert result["val"]["metrics"][metric] == pytest.approx(compute(y_test, s_test, t_val)[metric])
        t_oracle = result["oracle"]["thresholds"][metric]
        assert t_oracle == best_over_grid(y_test, s_test, metric, ORACLE_GRID)[1]
    # validation says 0.8, the test set itself says 0.3: the protocols really disagree
    assert result["val"]["thresholds"]["maF1"] == 0.8
    assert result["oracle"]["thresholds"]["maF1"] == 0.3
    assert result["oracle"]["metrics"]["maF1"] == 1.0 > result["val"]["metrics"]["maF1"]

    # changing the test labels never changes the val thresholds
    flipped = evaluate_protocols(y_val, s_val, 1 - y_test, s_test)
    assert flipped["val"]["thresholds"] == result["val"]["thresholds"]
    assert flipped["oracle"]["thresholds"] != result["oracle"]["thresholds"]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_oracle_is_at_least_fixed_and_val_on_shared_grid(seed):
    """0.5 is in the oracle grid, so oracle >= fixed; with equal grids, oracle >= val."""
    rng = np.random.default_rng(seed)
    n, L = rng.integers(1, 40), rng.integers(1, 10)
    y_val, y_test = (rng.random((2, n, L)) < rng.random()).astype(np.uint8)
    s_val, s_test = rng.random((2, n, L))
    result = evaluate_protocols(y_val, s_val, y_test, s_test, val_grid=ORACLE_GRID, oracle_grid=ORACLE_GRID)
    for metric in THRESHOLDED_METRICS:
        oracle = result["oracle"]["metrics"][metric]
        assert oracle >= result["fixed"]["metrics"][metric] - 1e-12
        assert oracle >= result["val"]["metrics"][metric] - 1e-12


def smallest_best(values, grid):
    best = max(values)
    return min(t for t, v in zip(grid, values) if v >= best - 1e-12)


def protocols_by_definition(y_val, s_val, y_test, s_test, val_grid, oracle_grid):
    """The protocols written out with one compute() call per threshold (ties: smallest)."""
    val_runs = [compute(y_val, s_val, t) for t in val_grid]
    oracle_runs = [compute(y_test, s_test, t) for t in oracle_grid]
    expected = {"fixed": compute(y_test, s_test, 0.5), "val": {}, "oracle": {}}
    thresholds = {"fixed": {}, "val": {}, "oracle": {}}
    for m in THRESHOLDED_METRICS:
        t_val = smallest_best([run[m] for run in val_runs], val_grid)
        t_oracle = smallest_best([run[m] for run in oracle_runs], oracle_grid)
        expected["val"][m] = compute(y_test, s_test, t_val)[m]
        expected["oracle"][m] = max(run[m] for run in oracle_runs)
        thresholds["fixed"][m], thresholds["val"][m], thresholds["oracle"][m] = 0.5, t_val, t_oracle
    return expected, thresholds


@settings(max_examples=40, deadline=None)
@given(sweep_cases(), st.integers(0, 2**32 - 1))
def test_evaluate_protocols_equals_the_definition(case, seed):
    y_test, s_test, _ = case
    rng = np.random.default_rng(seed)
    y_val = (rng.random((rng.integers(1, 15), y_test.shape[1])) < rng.random()).astype(np.uint8)
    s_val = rng.choice([0.0, 0.1, 0.45, 0.5, 0.55, 0.9, 1.0], size=y_val.shape)
    result = evaluate_protocols(y_val, s_val, y_test, s_test)
    expected, thresholds = protocols_by_definition(y_val, s_val, y_test, s_test, VAL_GRID, ORACLE_GRID)
    fixed = compute(y_test, s_test, 0.5)
    for protocol in ("fixed", "val", "oracle"):
        assert result[protocol]["thresholds"] == pytest.approx(thresholds[protocol])
        for m in METRICS:
            want = expected[protocol][m] if m in THRESHOLDED_METRICS else fixed[m]
            assert math.isclose(result[protocol]["metrics"][m], want, rel_tol=1e-12, abs_tol=1e-12), (protocol, m)


def test_val_on_the_test_set_itself_is_the_oracle():
    y_val, s_val, _, _ = _val_and_test_that_disagree(3)
    result = evaluate_protocols(y_val, s_val, y_val, s_val, val_grid=ORACLE_GRID)
    assert result["val"] == result["oracle"]


def test_protocol_input_errors():
    y, s = np.zeros((3, 2)), np.zeros((3, 2))
    with pytest.raises(BenchmarkError, match="labels"):
        evaluate_protocols(y, s, np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(BenchmarkError, match="s_test has shape"):
        evaluate_protocols(y, s, y, np.zeros((2, 2)))
    with pytest.raises(BenchmarkError, match="grid"):
        evaluate_protocols(y, s, y, s, val_grid=[])
    with pytest.raises(BenchmarkError, match="grid"):
        sweep(y, s, [0.5, np.nan])


def test_protocols_on_yeast_labels():
    """Real label structure (yeast), scores of an under-confident noisy model."""
    datasource = pytest.importorskip("benchmark.data.loading")
    Y = datasource.load_dataset("yeast").Y
    rng = np.random.default_rng(0)
    S = 0.15 * Y + rng.uniform(0, 0.35, Y.shape)  # all scores < 0.5: fixed predicts nothing
    half = len(Y) // 2
    result = evaluate_protocols(Y[:half], S[:half], Y[half:], S[half:])
    # the oracle on the validation grid: the nine-point default grid is a subset of it
    fine = evaluate_protocols(Y[:half], S[:half], Y[half:], S[half:], oracle_grid=VAL_GRID)["oracle"]["metrics"]
    val, oracle, fixed = (result[p]["metrics"] for p in ("val", "oracle", "fixed"))
    for metric in ("ebF1", "miF1", "maF1"):
        assert fixed[metric] == 0.0
        assert val[metric] > 0.4  # thresholds chosen on validation rescue the model...
        assert fine[metric] >= val[metric] - 0.02  # ...and transfer between i.i.d. halves
        assert oracle[metric] <= fine[metric] + 1e-12  # a coarser grid never finds a better threshold
        assert result["val"]["thresholds"][metric] < 0.5
        assert result["oracle"]["thresholds"][metric] in ORACLE_GRID
    assert fixed["ACC"] == pytest.approx(np.mean(Y[half:].sum(axis=1) == 0))
