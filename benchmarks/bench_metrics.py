"""Speed of evaluating one run under all three threshold protocols.

    python benchmarks/bench_metrics.py [--data-dir DIR] [--repeats 5] [--synthetic] [--sklearn]

Times ``benchmark.evaluation.thresholds.evaluate_protocols`` (all ten metrics, fixed / val /
oracle, 19-point validation grid, 17-point oracle grid) on delicious's published test
set (3185 x 983 labels; validation = 1938 rows of the training file, the size of a
15% share) with uniform random scores, against straightforward loops over the
thresholds that give the same numbers:

- ``loop``: for every threshold of each grid, the per-threshold thresholded metrics
  (``benchmark.evaluation.metrics.thresholded_metrics`` on ``scores >= t``: numpy, vectorised
  within one threshold); ranking metrics once. The strongest loop.
- ``loop-compute``: the same loop calling ``benchmark.evaluation.metrics.compute`` (all ten
  metrics) at every threshold, as code that evaluates a run once per threshold does.
- ``loop-sklearn`` (with ``--sklearn``): per threshold scikit-learn's ``f1_score``
  (samples, micro, macro), ``hamming_loss`` and ``accuracy_score``; scikit-learn's
  ranking loss and LRAP once, the style of the C-GMVAE/MPVAE reference evaluation.

Without the mirror (or with ``--synthetic``) the labels are random with delicious's
density (0.0193). Times are the best of ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.evaluation.metrics import (  # noqa: E402
    METRICS,
    THRESHOLDED_METRICS,
    compute,
    ranking_metrics,
    thresholded_metrics,
)
from benchmark.evaluation.thresholds import (  # noqa: E402
    FIXED_THRESHOLD,
    ORACLE_GRID,
    VAL_GRID,
    evaluate_protocols,
)

N_TEST, N_VAL, N_LABELS, DENSITY = 3185, 1938, 983, 0.019349


def load_labels(data_dir: str | None, synthetic: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """(validation labels, test labels, where they came from)."""
    if not synthetic:
        try:
            from benchmark.data.loading import load_dataset

            data = load_dataset("delicious", data_dir=data_dir)
            train, test = np.sort(data.split["train"]), np.sort(data.split["test"])
            return data.Y[train[:N_VAL]], data.Y[test], "delicious (published test split)"
        except Exception as exc:  # noqa: BLE001 - fall back to synthetic data, say why
            print(f"delicious unavailable ({exc}); using random labels of the same density")
    rng = np.random.default_rng(1)
    return (
        (rng.random((N_VAL, N_LABELS)) < DENSITY).astype(np.uint8),
        (rng.random((N_TEST, N_LABELS)) < DENSITY).astype(np.uint8),
        "random labels, delicious's shape and density",
    )


def _protocols_by_loop(per_threshold, ranking, y_val, s_val, y_test, s_test):
    """fixed/val/oracle by evaluating each threshold separately (ties: smallest threshold)."""
    val_runs = [per_threshold(y_val, s_val, t) for t in VAL_GRID]
    test_runs = {float(t): per_threshold(y_test, s_test, t) for t in ORACLE_GRID}
    test_runs.setdefault(FIXED_THRESHOLD, per_threshold(y_test, s_test, FIXED_THRESHOLD))
    result = {}
    for protocol in ("fixed", "val", "oracle"):
        metrics, thresholds = dict(ranking(y_test, s_test)), {}
        for name in THRESHOLDED_METRICS:
            if protocol == "fixed":
                t = FIXED_THRESHOLD
            elif protocol == "val":
                t = float(VAL_GRID[int(np.argmax([run[name] for run in val_runs]))])
            else:
                t = float(ORACLE_GRID[int(np.argmax([test_runs[float(g)][name] for g in ORACLE_GRID]))])
            if t not in test_runs:
                test_runs[t] = per_threshold(y_test, s_test, t)
            metrics[name], thresholds[name] = test_runs[t][name], t
        result[protocol] = {"metrics": {m: metrics[m] for m in METRICS}, "thresholds": thresholds}
    return result


def loop(y_val, s_val, y_test, s_test):
    def per_threshold(Y, S, t):
        return thresholded_metrics(Y.astype(bool), S >= t)

    def ranking(Y, S):
        return ranking_metrics(Y.astype(bool), S)

    return _protocols_by_loop(per_threshold, ranking, y_val, s_val, y_test, s_test)


def loop_compute(y_val, s_val, y_test, s_test):
    return _protocols_by_loop(compute, compute, y_val, s_val, y_test, s_test)


def loop_sklearn(y_val, s_val, y_test, s_test):
    from sklearn import metrics as skm

    def per_threshold(Y, S, t):
        P = (S >= t).astype(np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {
                "ebF1": skm.f1_score(Y, P, average="samples", zero_division=0),
                "miF1": skm.f1_score(Y, P, average="micro", zero_division=0),
                "maF1": skm.f1_score(Y, P, average="macro", zero_division=0),
                "HA": 1 - skm.hamming_loss(Y, P),
                "ACC": skm.accuracy_score(Y, P),
            }

    def ranking(Y, S):
        ours = ranking_metrics(Y.astype(bool), S)  # P@k: scikit-learn has no multi-label P@k
        ours["RL"] = skm.label_ranking_loss(Y, S)
        ours["LRAP"] = skm.label_ranking_average_precision_score(Y, S)
        return ours

    return _protocols_by_loop(per_threshold, ranking, y_val, s_val, y_test, s_test)


def best_time(fn, args, repeats: int) -> tuple[float, float, dict]:
    """Best wall-clock and best CPU seconds over ``repeats`` runs after a warm-up.

    CPU time (this process) is the steadier figure on a machine shared with other jobs.
    """
    result = fn(*args)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn(*args)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu), result


def check_same(reference: dict, other: dict, name: str, exact_ebf1: bool = True) -> None:
    for protocol in ("fixed", "val", "oracle"):
        for metric in METRICS:
            if metric == "ebF1" and not exact_ebf1:
                continue  # scikit-learn's samples-F1 keeps empty samples (see benchmark.evaluation.metrics)
            a, b = reference[protocol]["metrics"][metric], other[protocol]["metrics"][metric]
            if not np.isclose(a, b, rtol=1e-9, atol=1e-12):
                raise SystemExit(f"{name} disagrees on {protocol}/{metric}: {a} vs {b}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("MLCBENCH_DATA_DIR"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--synthetic", action="store_true", help="random labels instead of delicious")
    parser.add_argument("--sklearn", action="store_true", help="also time the scikit-learn loop (slow)")
    args = parser.parse_args(argv)
    if args.data_dir is None:
        mirror = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
        args.data_dir = str(mirror) if mirror.exists() else None
    os.environ.setdefault("MLCBENCH_OFFLINE", "1")

    y_val, y_test, source = load_labels(args.data_dir, args.synthetic)
    rng = np.random.default_rng(0)
    s_val, s_test = rng.random(y_val.shape), rng.random(y_test.shape)
    data = (y_val, s_val, y_test, s_test)
    print(f"labels: {source}; val {y_val.shape}, test {y_test.shape}, density {y_test.mean():.4f}")
    print(f"grids: val {len(VAL_GRID)} points, oracle {len(ORACLE_GRID)} points; best of {args.repeats}")

    wall, cpu, reference = best_time(evaluate_protocols, data, args.repeats)
    rows = [("evaluate_protocols (vectorised)", wall, cpu)]
    contenders = [("loop", loop), ("loop-compute", loop_compute)]
    if args.sklearn:
        contenders.append(("loop-sklearn", loop_sklearn))
    for name, fn in contenders:
        other_wall, other_cpu, result = best_time(fn, data, max(1, min(args.repeats, 2)))
        check_same(reference, result, name, exact_ebf1=name != "loop-sklearn")
        rows.append((name, other_wall, other_cpu))

    print(f"\n{'implementation':34s} {'wall s':>8s} {'speed-up':>9s} {'CPU s':>8s} {'speed-up':>9s}")
    for name, w, c in rows:
        print(f"{name:34s} {w:8.3f} {w / wall:8.1f}x {c:8.3f} {c / cpu:8.1f}x")
    print("\nall implementations agree on every metric and protocol"
          + (" (ebF1 not compared with scikit-learn)" if args.sklearn else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
