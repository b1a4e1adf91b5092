"""Does a fit cost more CPU seconds when another fit runs beside it?

    python benchmarks/bench_concurrency.py [yeast:br delicious:ecc:n_chains=2:C=1 ...] [--copies 2]

The cost model times its fits one at a time in one process and schedules them on the
run's workers; a 2-worker run of ECC on delicious cost 1.84x its estimate in CPU seconds.
For each case this fits the model on the dataset's training split (one thread) in a fresh
process alone, then in ``--copies`` processes started together, and prints each one's CPU
seconds and their mean over the lone fit's. Run it on a quiet machine with at least
``--copies`` cores: on fewer the copies time-share, which inflates wall time, not CPU time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CASES = ("yeast:br", "bibtex:br", "delicious:br", "delicious:ecc:n_chains=2")


def _parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_case(text: str) -> tuple[str, str, dict]:
    """``dataset:model[:key=value ...]``: a dataset, a registered model and its parameters."""
    dataset, model, *settings = text.split(":")
    params = {key: _parse_value(value) for key, value in (item.split("=", 1) for item in settings)}
    return dataset, model, params


def _fit(case: tuple[str, str, dict], data_dir: str, start, out) -> None:
    """One fit in this (fresh) process: load, wait for the start signal, fit, report CPU-s."""
    from threadpoolctl import threadpool_limits

    from benchmark.data.loading import load_dataset
    from benchmark.modelapi.base import get_model

    dataset, model, params = case
    data = load_dataset(dataset, data_dir=data_dir)
    train = data.split.get("train")
    X, Y = (data.X[train], data.Y[train]) if train is not None and len(train) else (data.X, data.Y)
    cls = get_model(model)
    with threadpool_limits(1):
        cls(seed=0, n_threads=1, **params).fit(X[:32], Y[:32])  # warm-up: first calls, outside the timing
        start.wait()
        wall, cpu = time.perf_counter(), time.process_time()
        cls(seed=0, n_threads=1, **params).fit(X, Y)
        out.put((time.process_time() - cpu, time.perf_counter() - wall))


def timed_together(case, copies: int, data_dir: str) -> list[tuple[float, float]]:
    """(CPU, wall) seconds of ``copies`` fits of ``case`` started at once, each in its own process."""
    context = mp.get_context("spawn")
    start, out = context.Barrier(copies), context.Queue()
    processes = [context.Process(target=_fit, args=(case, data_dir, start, out)) for _ in range(copies)]
    for process in processes:
        process.start()
    results = [out.get() for _ in processes]
    for process in processes:
        process.join()
    return sorted(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(DEFAULT_CASES))
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    args = parser.parse_args()
    print(f"{'case':<34} {'alone CPU-s':>11} {'together CPU-s':>20} {'ratio':>6}")
    for text in args.cases:
        case = parse_case(text)
        (alone_cpu, _), = timed_together(case, 1, args.data_dir)
        together = timed_together(case, args.copies, args.data_dir)
        mean = sum(c for c, _ in together) / len(together)
        print(f"{text:<34} {alone_cpu:11.1f} {' '.join(f'{c:6.1f}' for c, _ in together):>20} {mean / alone_cpu:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
