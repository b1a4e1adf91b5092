"""How many test-time Monte-Carlo samples make MPVAE's scores stable?

MPVAE predicts ``mean_s Phi(m + R eps_s)``; the reference uses 10,000 samples. This
script trains ``mpvae`` on a dataset (published split, validation share from
``benchmark.data.splits.make_split``), then, on the test rows, compares for each sample
count S:

- ``draws``: the max (and mean) absolute difference between two independent S-sample
  estimates (different noise seeds);
- ``exact``: the max (and mean) absolute difference between an S-sample estimate and
  the exact expectation ``Phi(m / sqrt(1 + |R_j|^2))`` (what ``n_test_samples = 0``
  returns);
- the test micro-F1 (``val`` threshold protocol) with S-sample scores, next to the exact
  scores' micro-F1;
- seconds to compute the S-sample scores.

Usage::

    python benchmarks/bench_mpvae_samples.py --datasets yeast,scene --epochs 100 \\
        --samples 10,100,1000,10000,100000 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from mlcbench_models.mpvae import (
    expected_probability,
    monte_carlo_probability,
    reference_params,
)

import benchmark  # noqa: F401  (installs the models/ alias package)
from benchmark.data.loading import load_dataset
from benchmark.data.splits import make_split
from benchmark.evaluation.thresholds import evaluate_protocols
from benchmark.modelapi.base import get_model


def _scores(model, X, n_samples: int, seed: int) -> tuple[np.ndarray, float]:
    """Scores with ``n_samples`` Monte-Carlo samples (0 = exact) and the seconds they took."""
    features = model._features(X)
    net = model.net_.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        means = net.predict_means(features.slice(0, len(features)))
        if n_samples == 0:
            scores = expected_probability(means, net.r)
        else:
            scores = monte_carlo_probability(means, net.r, n_samples, seed=seed)
    return scores.cpu().numpy(), time.perf_counter() - t0


def study(name: str, epochs: int, samples: list[int], seed: int) -> list[dict]:
    dataset = load_dataset(name)
    split = make_split(dataset, seed=0)
    X, Y = dataset.X, dataset.Y
    params = {**reference_params(name), "epochs": epochs}
    model = get_model("mpvae")(seed=seed, **params).fit(X[split.train], Y[split.train], X[split.val], Y[split.val])
    X_val, X_test = X[split.val], X[split.test]
    exact_val, _ = _scores(model, X_val, 0, 0)
    exact_test, t_exact = _scores(model, X_test, 0, 0)
    y_val, y_test = Y[split.val], Y[split.test]
    exact_mif1 = evaluate_protocols(y_val, exact_val, y_test, exact_test)["val"]["metrics"]["miF1"]
    rows = [{"dataset": name, "S": 0, "max_draws": 0.0, "mean_draws": 0.0, "max_exact": 0.0, "mean_exact": 0.0,
             "miF1": exact_mif1, "seconds": t_exact}]
    for n_samples in samples:
        a, seconds = _scores(model, X_test, n_samples, seed=1)
        b, _ = _scores(model, X_test, n_samples, seed=2)
        s_val, _ = _scores(model, X_val, n_samples, seed=3)
        mif1 = evaluate_protocols(y_val, s_val, y_test, a)["val"]["metrics"]["miF1"]
        rows.append({"dataset": name, "S": n_samples, "max_draws": float(np.abs(a - b).max()),
                     "mean_draws": float(np.abs(a - b).mean()), "max_exact": float(np.abs(a - exact_test).max()),
                     "mean_exact": float(np.abs(a - exact_test).mean()), "miF1": mif1, "seconds": seconds})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="yeast,scene")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--samples", default="10,100,1000,10000,100000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    samples = [int(s) for s in args.samples.split(",")]
    print(f"{'dataset':8} {'S':>7} {'max|a-b|':>9} {'mean|a-b|':>9} {'max|a-E|':>9} {'mean|a-E|':>9} "
          f"{'test miF1':>9} {'seconds':>8}")
    for name in args.datasets.split(","):
        for row in study(name, args.epochs, samples, args.seed):
            print(f"{row['dataset']:8} {row['S'] or 'exact':>7} {row['max_draws']:9.2e} {row['mean_draws']:9.2e} "
                  f"{row['max_exact']:9.2e} {row['mean_exact']:9.2e} {row['miF1']:9.4f} {row['seconds']:8.3f}")


if __name__ == "__main__":
    main()
