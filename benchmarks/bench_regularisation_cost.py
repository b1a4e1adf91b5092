"""How a logistic model's fit time grows with its inverse regularisation C.

    python benchmarks/bench_regularisation_cost.py [--datasets bibtex,delicious] [--models br,rakeld] [--rows 3000]

The cost probe times each model at its fixed settings (C = 0.1 by default), but tuning draws
C log-uniformly from 1e-2 to 1e2, and L-BFGS needs more iterations the weaker the penalty.
This times one-thread fits (no validation data, no prediction) on the first ``--rows``
training rows at C = 0.01 ... 100, without and with balanced class weights, and prints each
time over the time at C = 0.1 unweighted (the default).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data.loading import load_dataset  # noqa: E402
from benchmark.modelapi.base import get_model  # noqa: E402

CS = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_seconds(cls, X, Y, C: float, class_weight: str | None = None) -> float:
    with threadpool_limits(1):
        started = time.process_time()
        cls(seed=0, n_threads=1, C=C, class_weight=class_weight).fit(X, Y)
        return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bibtex,delicious")
    parser.add_argument("--models", default="br,rakeld")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--labels", type=int, default=0, help="fit only this many random labels (0: all)")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    args = parser.parse_args()
    print(f"{'dataset':<10} {'model':<7} {'weights':<8} rows  " + "  ".join(f"C={c:g}" for c in CS)
          + "   (CPU-s; then over C=0.1 unweighted)")
    for name in args.datasets.split(","):
        data = load_dataset(name, data_dir=args.data_dir)
        train = data.split.get("train")
        train = train if train is not None and len(train) else np.arange(data.X.shape[0])
        rows = np.sort(np.random.default_rng(0).permutation(train)[:args.rows])
        X, Y = data.X[rows], data.Y[rows]
        if args.labels:
            positives = Y.sum(axis=0)
            varying = np.flatnonzero((positives > 0) & (positives < len(rows)))
            Y = Y[:, np.sort(np.random.default_rng(0).permutation(varying)[:args.labels])]
        for model in args.models.split(","):
            cls = get_model(model)
            fit_seconds(cls, X[:32], Y[:32], 0.1)  # warm-up: first calls
            base = None
            for weights in (None, "balanced"):
                times = [fit_seconds(cls, X, Y, c, weights) for c in CS]
                base = base or times[CS.index(0.1)]
                print(f"{name:<10} {model:<7} {str(weights):<8} {len(rows):>5} " + " ".join(f"{t:7.2f}" for t in times)
                      + "   " + " ".join(f"{t / base:5.2f}" for t in times), flush=True)


if __name__ == "__main__":
    main()
