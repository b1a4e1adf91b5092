"""CPU seconds per tree, peak memory per fit and test scores of rf and rfp (issue 21).

    python benchmarks/bench_forests.py [--cases bibtex:rf:200,bibtex:rfp:200,delicious:rf:20,delicious:rfp:20,delicious:rfp:200]
        [--seeds 0,1,2] [--out benchmarks/results/forests.txt]

Each case is DATASET:MODEL:TREES (other settings at the model's defaults: max_features
"sqrt", min_samples_leaf 1, full depth, bootstrap; rfp q = 64). Every fit runs in a fresh
subprocess (``--one``), so its peak resident memory (``ru_maxrss``) is that fit's alone:
the process loads the parsed dataset from the cache, fits on the training rows of the
published split with ``benchmark.data.splits.make_split``'s validation share (split seed 0),
then scores the validation and test rows. Measured there:

- CPU-s per tree: process CPU seconds of ``fit`` (one thread) over the trees;
- peak: ``ru_maxrss`` after fit and prediction, and the model's ``peak_bytes`` prediction
  for the same shape and settings (the planner's figure) beside it;
- test miF1 / maF1 / P@1 at threshold 0.5 (``fixed``) and at each metric's best
  validation threshold of the validation grid (``val``), with ``evaluate_protocols``.

Seeds vary the forest (and rfp's projection), never the split; the table gives mean ± std
(sample std) over seeds. Cases run one after another (a fit at a time, niced). "grown" is
the peak less the process's resident memory just before ``fit`` (what the fit and its
predictions added). ``--raw FILE`` appends every fit's record to FILE; ``--table-from FILE``
rebuilds the table from such records without fitting, with ``peak_bytes`` recomputed by this
checkout's models (after a change of their memory model).

delicious rf runs 20 trees: at ~190 MB a tree, more would pass the 6 GiB a fit may use on
the shared 24 GiB machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
if (REPO.parent / "shared" / "datasets").is_dir():
    os.environ.setdefault("MLCBENCH_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
os.environ.setdefault("MLCBENCH_OFFLINE", "1")

import benchmark  # noqa: E402,F401  (installs the models/ alias package)

DEFAULT_CASES = "bibtex:rf:200,bibtex:rfp:200,delicious:rf:20,delicious:rfp:20,delicious:rfp:200"
SHOWN = ("miF1", "maF1", "P@1")
THRESHOLDED = ("miF1", "maF1")
#: the paper space's largest forest (what the planner checks): rf's and rfp's search spaces
WORST = {"n_estimators": 500, "min_samples_leaf": 1, "max_depth": None, "max_samples": None}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_fit(dataset: str, model: str, trees: int, seed: int) -> dict:
    """One fit in this process: what the table needs, as a JSON-able dict."""
    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split
    from benchmark.evaluation.thresholds import evaluate_protocols
    from benchmark.modelapi.base import get_model

    data = load_dataset(dataset)
    split = make_split(data, seed=0)
    X, Y = data.X[split.train], data.Y[split.train]
    cls = get_model(model)
    params = {"n_estimators": trees}
    before = rss_bytes()
    cpu = time.process_time()
    wall = time.perf_counter()
    fitted = cls(seed=seed, n_threads=1, **params).fit(X, Y)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    s_val = fitted.predict_proba(data.X[split.val])
    s_test = fitted.predict_proba(data.X[split.test])
    protocols = evaluate_protocols(data.Y[split.val], s_val, data.Y[split.test], s_test)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "dataset": dataset, "model": model, "trees": trees, "seed": seed,
        "shape": [int(X.shape[0]), int(X.shape[1]), int(Y.shape[1])],
        "fit_cpu": cpu, "fit_wall": wall, "cpu_per_tree": cpu / trees,
        "rss_before_fit": before, "peak": peak,
        "predicted": cls.peak_bytes(X.shape[0], X.shape[1], Y.shape[1], params),
        "leaves": fitted.fit_info.get("n_leaves_mean"),
        "fixed": {m: protocols["fixed"]["metrics"][m] for m in SHOWN},
        "val": {m: protocols["val"]["metrics"][m] for m in SHOWN},
    }


def run_case(dataset: str, model: str, trees: int, seed: int) -> dict:
    out = subprocess.run(["nice", "-n", "5", sys.executable, __file__, "--one", dataset, model, str(trees), str(seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def pm(values, fmt: str) -> str:
    values = np.asarray(values, dtype=float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{format(values.mean(), fmt)} ± {format(std, fmt)}"


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"], row["trees"]), []).append(row)
    head = ("dataset", "model", "trees", "seeds", "CPU-s/tree", "peak GiB", "grown GiB", "predicted GiB", "pred/meas",
            "leaves/tree") + tuple(f"{m}@0.5" for m in THRESHOLDED) + tuple(f"{m}@val" for m in THRESHOLDED) + ("P@1",)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (dataset, model, trees), rs in groups.items():
        peak = np.mean([r["peak"] for r in rs]) / 2**30
        predicted = np.mean([r["predicted"] for r in rs]) / 2**30
        cells = [dataset, model, str(trees), str(len(rs)), pm([r["cpu_per_tree"] for r in rs], ".3f"),
                 pm([r["peak"] / 2**30 for r in rs], ".2f"),
                 pm([(r["peak"] - r["rss_before_fit"]) / 2**30 for r in rs], ".2f"),
                 f"{predicted:.2f}", f"{predicted / peak:.2f}",
                 f"{np.mean([r['leaves'] for r in rs]):.0f}"]
        cells += [pm([r["fixed"][m] for r in rs], ".4f") for m in THRESHOLDED]
        cells += [pm([r["val"][m] for r in rs], ".4f") for m in THRESHOLDED]
        cells += [pm([r["val"]["P@1"] for r in rs], ".4f")]  # threshold-free: the same under both
        lines.append("| " + " | ".join(cells) + " |")
    ratios = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        trees = {(r["model"], r["trees"]): r for r in rows if r["dataset"] == dataset}
        for (model, n), _ in trees.items():
            if model == "rf" and ("rfp", n) in trees:
                rf = np.mean([r["cpu_per_tree"] for r in groups[(dataset, "rf", n)]])
                rfp = np.mean([r["cpu_per_tree"] for r in groups[(dataset, "rfp", n)]])
                peak_rf = np.mean([r["peak"] - r["rss_before_fit"] for r in groups[(dataset, "rf", n)]])
                peak_rfp = np.mean([r["peak"] - r["rss_before_fit"] for r in groups[(dataset, "rfp", n)]])
                ratios.append(f"- {dataset}, {n} trees: rf/rfp CPU-s per tree {rf / rfp:.2f}x; "
                              f"memory grown by the fit {peak_rf / 2**20:.0f} MB vs {peak_rfp / 2**20:.0f} MB "
                              f"({peak_rf / peak_rfp:.1f}x)")
    from benchmark.modelapi.base import get_model

    worst = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        shape = next(r["shape"] for r in rows if r["dataset"] == dataset)
        sizes = ", ".join(f"{m} {get_model(m).peak_bytes(*shape, WORST) / 2**30:.1f} GiB" for m in ("rf", "rfp"))
        worst.append(f"- {dataset} (n, features, labels = {tuple(shape)}), the search space's largest forest "
                     f"(500 trees, min_samples_leaf 1, full depth, full bootstrap): predicted peak {sizes}")
    return "\n".join(lines + [""] + ratios + worst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "forests.txt"))
    parser.add_argument("--raw", default=None, help="also write every fit's record (JSON lines) here")
    parser.add_argument("--table-from", default=None, help="rebuild the table from this --raw file, fitting nothing")
    parser.add_argument("--one", nargs=4, metavar=("DATASET", "MODEL", "TREES", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        dataset, model, trees, seed = args.one
        print(json.dumps(one_fit(dataset, model, int(trees), int(seed))))
        return
    rows = []
    if args.table_from:
        from benchmark.modelapi.base import get_model

        for line in Path(args.table_from).read_text().splitlines():
            row = json.loads(line)
            row["predicted"] = get_model(row["model"]).peak_bytes(*row["shape"], {"n_estimators": row["trees"]})
            rows.append(row)
    for case in [] if args.table_from else args.cases.split(","):
        dataset, model, trees = case.split(":")
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run_case(dataset, model, int(trees), seed)
            rows.append(row)
            print(f"{dataset} {model} {trees} seed {seed}: {row['cpu_per_tree']:.3f} CPU-s/tree, "
                  f"peak {row['peak'] / 2**30:.2f} GiB (predicted {row['predicted'] / 2**30:.2f}), "
                  f"val {row['val']}", flush=True)
            if args.raw:
                with open(args.raw, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    import sklearn

    cases = ",".join(dict.fromkeys(f"{r['dataset']}:{r['model']}:{r['trees']}" for r in rows))
    seeds = ",".join(str(s) for s in dict.fromkeys(r["seed"] for r in rows))
    text = (f"# bench_forests.py --cases {cases} --seeds {seeds}\n"
            f"# scikit-learn {sklearn.__version__}, numpy {np.__version__}, one thread per fit, "
            f"{os.cpu_count()} shared cores; mean ± std over seeds (forest seed; split seed 0)\n"
            + (f"# rebuilt from {Path(args.table_from).name}; predicted GiB by this checkout's peak_bytes\n"
               if args.table_from else "") + "\n"
            + table(rows) + "\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
