"""Test-set scores and fit times of the classic baselines at default hyperparameters.

    python benchmarks/bench_baselines.py [--datasets yeast,scene] [--models prior,br,cc,ecc,mlknn]
        [--seeds 0] [--threads 1] [--data-dir DIR] [--markdown]

For each dataset: the published train/test split, validation = stratified share of
the training file (``benchmark.data.splits.make_split``, split seed 0), each model fitted on
the rest of the training file at its default hyperparameters, and its test ebF1,
miF1, maF1 and P@1 under the ``val`` threshold protocol (per metric, the threshold
best on validation) plus fit seconds (wall and this process's CPU time, which is the
fairer number on a shared machine) and predict seconds for validation + test. With several seeds, mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METRICS = ("ebF1", "miF1", "maF1", "P@1")


def evaluate(model_name: str, dataset, split, seed: int, threads: int) -> dict[str, float]:
    from benchmark.evaluation.thresholds import evaluate_protocols
    from benchmark.modelapi.base import get_model

    X, Y = dataset.X, dataset.Y
    model = get_model(model_name)(seed=seed, n_threads=threads)
    cpu_start = time.process_time()  # this process only: exact for --threads 1
    model.fit(X[split.train], Y[split.train])
    fit_cpu = time.process_time() - cpu_start
    start = time.perf_counter()
    s_val, s_test = model.predict_proba(X[split.val]), model.predict_proba(X[split.test])
    predict_seconds = time.perf_counter() - start
    result = evaluate_protocols(Y[split.val], s_val, Y[split.test], s_test)["val"]["metrics"]
    return {**{m: result[m] for m in METRICS}, "fit_s": model.fit_info["fit_seconds"], "fit_cpu_s": fit_cpu,
            "predict_s": predict_seconds}


def cell(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="yeast,scene")
    parser.add_argument("--models", default="prior,br,cc,ecc,mlknn")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=os.environ.get("MLCBENCH_DATA_DIR"))
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    os.environ.setdefault("MLCBENCH_OFFLINE", "1")

    from tabulate import tabulate

    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split

    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name in args.datasets.split(","):
        dataset = load_dataset(name, data_dir=args.data_dir)
        split = make_split(dataset, seed=0)
        for model_name in args.models.split(","):
            runs = [evaluate(model_name, dataset, split, seed, args.threads) for seed in seeds]
            rows.append([name, model_name]
                        + [cell([r[m] for r in runs], 4) for m in METRICS]
                        + [cell([r[key] for r in runs], 2) for key in ("fit_s", "fit_cpu_s", "predict_s")])
            print(f"done {name} {model_name}", file=sys.stderr, flush=True)
    headers = ["dataset", "model", *METRICS, "fit s", "fit CPU s", "predict s"]
    print(f"split seed 0, model seeds {seeds}, n_threads={args.threads}, val protocol, test set")
    print(tabulate(rows, headers=headers, tablefmt="github" if args.markdown else "simple"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
