"""How one fit's CPU time grows with its training rows: the evidence for ``Model.row_exponent``.

    python benchmarks/bench_row_growth.py [--datasets bibtex,delicious] [--models br,cc,rakeld]

The cost probe times a model at 64 and 256 rows of each dataset and extrapolates to the full
training pool as ``rows ** row_exponent``; this script times one-thread fits (no validation
data, no prediction) at 64, 256, 1024, 4096 rows and the whole published training split, and
prints the local exponents between consecutive sizes and the one from 256 rows to all of
them, which is the extrapolation the estimate makes.
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

SIZES = (64, 256, 1024, 4096)


def fit_seconds(cls, X, Y) -> float:
    with threadpool_limits(1):
        started = time.process_time()
        cls(seed=0, n_threads=1).fit(X, Y)
        return time.process_time() - started


def exponent(n0: int, t0: float, n1: int, t1: float) -> float:
    return float(np.log(t1 / t0) / np.log(n1 / n0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bibtex,delicious")
    parser.add_argument("--models", default="br,cc,rakeld")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    args = parser.parse_args()
    print(f"{'dataset':<10} {'model':<7} CPU-s at rows ...; local exponents; 256 -> all")
    for name in args.datasets.split(","):
        data = load_dataset(name, data_dir=args.data_dir)
        train = data.split.get("train")
        train = train if train is not None and len(train) else np.arange(data.X.shape[0])
        order = np.random.default_rng(0).permutation(train)
        sizes = [n for n in SIZES if n < len(order)] + [len(order)]
        for model in args.models.split(","):
            cls = get_model(model)
            fit_seconds(cls, data.X[np.sort(order[:32])], data.Y[np.sort(order[:32])])  # warm-up: first calls
            times = [fit_seconds(cls, data.X[np.sort(order[:n])], data.Y[np.sort(order[:n])]) for n in sizes]
            local = [exponent(sizes[i], times[i], sizes[i + 1], times[i + 1]) for i in range(len(sizes) - 1)]
            print(f"{name:<10} {model:<7} " + " ".join(f"{n}:{t:.2f}" for n, t in zip(sizes, times))
                  + "; " + " ".join(f"{e:.2f}" for e in local)
                  + f"; {exponent(sizes[1], times[1], sizes[-1], times[-1]):.2f}", flush=True)


if __name__ == "__main__":
    main()
