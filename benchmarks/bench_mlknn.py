"""ML-kNN fit cost: skmultilearn's loop against the vectorised port, both leave-one-out modes.

    python benchmarks/bench_mlknn.py [--datasets yeast,bibtex,delicious] [--k 10] [--s 1.0]
        [--repeats 3] [--out benchmarks/results/mlknn_vectorised.txt]

Per dataset (published train/test, validation = stratified share of train, split seed
0; fitted on the training part) three fits, each in a fresh one-thread process:

- ``library``: ``skmultilearn.adapt.MLkNN(k, s, ignore_first_neighbours=1).fit`` on the
  non-constant labels, as models/mlknn.py did before the port; test scores from its
  fitted index and tables with the harness's vectorised posterior (bit-equal to the
  library's own ``predict_proba``, which on delicious would take minutes);
- ``vec-library``: ``mlknn`` with ``loo="library"`` (the same counting, vectorised);
- ``vec-exact``: ``mlknn`` at its defaults (``loo="exact"``, a row is never its own
  neighbour).

Columns: fit CPU seconds of the process (median of ``--repeats`` fits for the vectorised
ones, and their minimum, one fit for the library's), speed-up over ``library``, peak RSS increase during
the (first) fit (VmHWM after resetting it through /proc/self/clear_refs, minus VmRSS
before the fit; ru_maxrss when that is unavailable), whether the priors + conditional
tables and the test probabilities are bit-equal (``np.array_equal``) to ``library``'s,
training rows counted among their own neighbours, and test miF1 / maF1 at threshold 0.5
and under the harness's ``val`` threshold protocol.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("library", "vec-library", "vec-exact")
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# ----------------------------------------------------------------------------- child


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def measured(fit) -> tuple[float, float, str]:
    """(CPU seconds, peak RSS increase in MiB, how the peak was measured) of ``fit()``."""
    gc.collect()
    if _reset_peak() and _status_kib("VmRSS") is not None:
        before, how = _status_kib("VmRSS"), "VmHWM"
    else:
        before, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    start = time.process_time()
    fit()
    cpu = time.process_time() - start
    peak = _status_kib("VmHWM") if how == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return cpu, (peak - before) / 1024, how


def child(dataset_name: str, variant: str, k: int, s: float, repeats: int, out: str) -> None:
    from threadpoolctl import threadpool_limits

    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split
    from benchmark.evaluation.metrics import compute
    from benchmark.evaluation.thresholds import evaluate_protocols
    from benchmark.modelapi.base import get_model
    from benchmark.modelapi.sklearn_utils import LabelPartition

    threadpool_limits(1)
    dataset = load_dataset(dataset_name)
    split = make_split(dataset, seed=0)
    X, Y = dataset.X[split.train], dataset.Y[split.train]
    X_val, Y_val = dataset.X[split.val], dataset.Y[split.val]
    X_test, Y_test = dataset.X[split.test], dataset.Y[split.test]
    cls = get_model("mlknn")
    if variant == "library":
        from mlcbench_models.mlknn import training_neighbours
        from skmultilearn.adapt import MLkNN as LibraryMLkNN

        varying = LabelPartition.of(Y).varying
        Y_fit = np.array(Y[:, varying], dtype=np.int64)
        LibraryMLkNN(k=k, s=s, ignore_first_neighbours=1, n_jobs=1).fit(X[:50], Y_fit[:50])  # warm-up
        library = LibraryMLkNN(k=k, s=s, ignore_first_neighbours=1, n_jobs=1)
        cpu, peak, how = measured(lambda: library.fit(X, Y_fit))
        cpus = [cpu]
        # the harness model carrying the library's index and tables predicts as the old wrapper did
        model = cls(k=k, s=s, loo="library", n_threads=1).fit(X, Y)
        model.index_ = library.knn_
        model._tables = (np.asarray(library._prior_prob_true, dtype=np.float64),
                         np.asarray(library._prior_prob_false, dtype=np.float64),
                         library._cond_prob_true.toarray(), library._cond_prob_false.toarray())
        neighbours = training_neighbours(library.knn_, X, k, "library")
        self_counted = int((neighbours == np.arange(X.shape[0])[:, None]).any(axis=1).sum())
    else:
        params = {"loo": "library"} if variant == "vec-library" else {}
        models = [cls(k=k, s=s, n_threads=1, **params) for _ in range(repeats)]
        cpu, peak, how = measured(lambda: models[0].fit(X, Y))
        cpus = [cpu] + [measured(lambda m=m: m.fit(X, Y))[0] for m in models[1:]]
        model = models[0]
        self_counted = model.fit_info["rows_counting_themselves"]
    scores = model.predict_proba(X_test)
    metrics = compute(Y_test, scores, threshold=0.5)
    tuned = evaluate_protocols(Y_val, model.predict_proba(X_val), Y_test, scores)["val"]["metrics"]
    np.savez(out, scores=scores, tables=np.concatenate([np.ravel(t) for t in model._tables]))
    info = {"cpu": statistics.median(cpus), "cpus": cpus, "peak_mib": peak, "peak_how": how,
            "self_counted": self_counted, "miF1": metrics["miF1"], "maF1": metrics["maF1"],
            "miF1_val": tuned["miF1"], "maF1_val": tuned["maF1"],
            "n_train": int(X.shape[0]), "n_labels": int(Y.shape[1]), "n_test": int(X_test.shape[0])}
    Path(out + ".json").write_text(json.dumps(info))


# ----------------------------------------------------------------------------- parent


def run_child(dataset: str, variant: str, args, workdir: str) -> tuple[dict, dict]:
    out = os.path.join(workdir, f"{dataset}-{variant}")
    repeats = 1 if variant == "library" else args.repeats
    command = [sys.executable, __file__, "--child", dataset, variant, out,
               "--k", str(args.k), "--s", str(args.s), "--repeats", str(repeats)]
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    info = json.loads(Path(out + ".json").read_text())
    info["wall"] = time.perf_counter() - started
    arrays = dict(np.load(out + ".npz"))
    print(f"  {dataset:10s} {variant:12s} fit {info['cpu']:8.3f} CPU-s  peak +{info['peak_mib']:.0f} MiB",
          file=sys.stderr, flush=True)
    return info, arrays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="yeast,bibtex,delicious")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--s", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5, help="fits per vectorised variant (median CPU-s)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mlknn_vectorised.txt"))
    parser.add_argument("--child", nargs=3, metavar=("DATASET", "VARIANT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child[:2], args.k, args.s, args.repeats, args.child[2])
        return 0

    header = (f"{'dataset':10s} {'n_train':>7s} {'L':>4s}  {'variant':12s} {'fit CPU-s':>9s} {'(min)':>7s} {'speed-up':>8s} "
              f"{'peak MiB':>8s} {'tables=lib':>10s} {'probs=lib':>9s} {'self-counted':>12s} "
              f"{'miF1@.5':>7s} {'maF1@.5':>7s} {'miF1@val':>8s} {'maF1@val':>8s}")
    lines = [header, "-" * len(header)]
    how = set()
    with tempfile.TemporaryDirectory() as workdir:
        for dataset in args.datasets.split(","):
            results = {variant: run_child(dataset, variant, args, workdir) for variant in VARIANTS}
            base_info, base_arrays = results["library"]
            for variant, (info, arrays) in results.items():
                how.add(info["peak_how"])
                same_tables = np.array_equal(arrays["tables"], base_arrays["tables"])
                same_scores = np.array_equal(arrays["scores"], base_arrays["scores"])
                lines.append(
                    f"{dataset:10s} {info['n_train']:7d} {info['n_labels']:4d}  {variant:12s} {info['cpu']:9.3f} {min(info['cpus']):7.3f} "
                    f"{base_info['cpu'] / info['cpu']:7.1f}x {info['peak_mib']:8.1f} {str(same_tables):>10s} "
                    f"{str(same_scores):>9s} {info['self_counted']:12d} {info['miF1']:7.4f} {info['maF1']:7.4f} "
                    f"{info['miF1_val']:8.4f} {info['maF1_val']:8.4f}")
    notes = [
        "",
        f"k={args.k}, s={args.s}; split seed 0, fitted on the training part, scored on the published test part.",
        "fit CPU-s: process CPU time of one fit, one thread; vectorised: median (and min) of "
        f"{args.repeats} fits, library: one fit (after a 50-row warm-up fit). speed-up: of the median.",
        f"peak MiB: peak RSS increase during the first fit ({', '.join(sorted(how))}); the library's neighbour",
        "search runs at scikit-learn's default working_memory (1 GiB), the port's at 64 MiB (CSR distances in chunks).",
        "tables=lib / probs=lib: priors + conditional tables / test probabilities np.array_equal to library's.",
        "self-counted: training rows among their own neighbours when the tables were counted.",
        "@.5: test metrics at threshold 0.5; @val: the harness's `val` protocol (per metric, the threshold",
        "best on the validation part), for comparison.",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}.",
    ]
    text = "\n".join(lines + notes) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
