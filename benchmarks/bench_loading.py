"""Time first (uncached parse) and cached loads of datasets.

    python benchmarks/bench_loading.py [--data-dir DIR] [--all] [--repeat N] [NAME ...]

Default: delicious and bibtex; ``--all`` times every catalog dataset available locally.
The parsed cache goes to a fresh temporary directory, so the first load really parses
the ARFF files (file hashing included in both timings). Prints one line per dataset:
first load, best cached load over ``--repeat`` runs, and the shape.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=None)
    parser.add_argument("--data-dir", default=os.environ.get("MLCBENCH_DATA_DIR"))
    parser.add_argument("--all", action="store_true", help="every locally available catalog dataset")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlcbench-bench-") as cache:
        os.environ["MLCBENCH_CACHE_DIR"] = cache
        os.environ["MLCBENCH_OFFLINE"] = "1"
        from benchmark.data.catalog import catalog
        from benchmark.data.loading import load_dataset

        specs = catalog()
        if args.all:
            names = [n for n, s in specs.items() if s.files and s.is_available(args.data_dir)]
        else:
            names = args.names or ["delicious", "bibtex"]
        load_dataset("emotions", data_dir=args.data_dir, use_cache=False)  # warm imports; no cache write
        print(f"{'dataset':<13} {'first load':>11} {'cached load':>12}  shape")
        for name in names:
            start = time.perf_counter()
            dataset = load_dataset(name, data_dir=args.data_dir)
            first = time.perf_counter() - start
            cached = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                load_dataset(name, data_dir=args.data_dir)
                cached.append(time.perf_counter() - start)
            kind = "CSR" if dataset.is_sparse else "dense"
            print(f"{name:<13} {first:>10.3f}s {min(cached):>11.3f}s  "
                  f"{dataset.n_instances}x{dataset.n_features} {kind}, {dataset.n_labels} labels")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
