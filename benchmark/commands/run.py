"""``python -m benchmark run``: run a suite (resumable), or list its cells with --dry-run."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from sqlalchemy.exc import DBAPIError
from tabulate import tabulate

from benchmark.cost.estimate import estimate, format_hours, run_estimator, size_gpu_jobs
from benchmark.execution.executors import make_executor
from benchmark.execution.plan import build_plan
from benchmark.execution.progress import RunProgress
from benchmark.execution.resources import make_plan
from benchmark.execution.runner import Runner
from benchmark.execution.suite import load_suite
from benchmark.store.results import ResultsStore, StoreError, describe_db_error


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a benchmark suite (resumable)",
        description="Tune, train and evaluate every cell (dataset, model, fraction, seed) of a suite. "
        "Cells already done in the results store are skipped; failed ones are retried.",
    )
    parser.add_argument("--suite", default="smoke", help="smoke, quick, paper, full, or a path to a .toml file")
    parser.add_argument("--models", help="comma-separated model names (overrides the suite)")
    parser.add_argument("--datasets", help="comma-separated dataset names (overrides the suite)")
    parser.add_argument("--fractions", help="comma-separated training fractions, e.g. 0.1,0.5,1")
    parser.add_argument("--seeds", help="comma-separated model seeds, e.g. 0,1,2")
    parser.add_argument("--trials", type=int, help="Optuna trials per (dataset, model, fraction)")
    parser.add_argument("--epochs", type=int, help="epoch budget of epoch-trained models")
    parser.add_argument("--split-seed", type=int, dest="split_seed", help="seed of the validation split and subsets")
    parser.add_argument("--device", help="auto (default: the suite's), cpu, cuda or cuda:i")
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int,
                        help="worker processes (local) or concurrent tasks (ray); default: the suite's (1)")
    parser.add_argument("--address", help="Ray cluster address (ray executor); default: start a local instance")
    parser.add_argument("--results", default="results", help="results directory or SQLAlchemy URL (default: results)")
    parser.add_argument("--data-dir", dest="data_dir", help="directory holding dataset files")
    parser.add_argument("--dry-run", action="store_true", help="estimate the suite's cost per dataset and model (hours, wall time) and count done cells; "
                        "--verbose also lists every cell")
    parser.add_argument("--no-estimate", action="store_true", dest="no_estimate",
                        help="no cost estimate in --dry-run or for the progress display's time left "
                        "(the estimate times each model once on its smallest dataset, then reads a cache)")
    parser.add_argument("--wait", action="store_true",
                        help="wait for groups another live run holds, instead of exiting with code 3")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="print only the final summary")
    verbosity.add_argument("--verbose", action="store_true", help="also print every tuning trial")
    parser.set_defaults(handler=handle)


def _stop_cleanly_on_signals() -> dict:
    """Ctrl-C and SIGTERM (cluster schedulers) stop the run after recording what finished.

    Installed explicitly because a run started in the background from a script
    inherits an ignored SIGINT, which would make it impossible to stop cleanly.
    Returns the previous handlers, restored when the run ends.
    """

    def interrupt(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")


    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may install handlers
    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}


def handle(args: argparse.Namespace) -> int:
    progress = RunProgress(quiet=args.quiet, verbose=args.verbose)
    data_dir = os.path.abspath(args.data_dir) if args.data_dir else None  # travels in the plan and each job
    suite = load_suite(  # flags over suite values; plain ones are checked before any model file is imported
        args.suite, data_dir=data_dir, models=args.models, datasets=args.datasets, fractions=args.fractions,
        seeds=args.seeds, trials=args.trials, epochs=args.epochs, device=args.device, split_seed=args.split_seed,
        workers=args.workers)
    execution = make_plan(suite.device, suite.workers, args.executor, data_dir, args.address)
    plan = build_plan(suite, execution)
    store = ResultsStore(args.results)
    if plan.execution.auto_gpu_jobs and not args.no_estimate:
        plan = size_gpu_jobs(plan, store.done_cells(), notice=progress.notice)
    execution = plan.execution

    if args.dry_run:  # every cell with its stored status, and what the plan will cost
        for notice in suite.notices:
            print(f"notice: {notice}")
        status = store.cell_status()
        rows = [(*cell[:4], status.get(cell, "todo")) for cell in plan.cells()]
        if args.verbose:
            print(tabulate(rows, headers=["dataset", "model", "fraction", "seed", "status"]))
        done = sum(r[-1] == "done" for r in rows)
        failed = sum(r[-1] == "failed" for r in rows)
        if not args.no_estimate:
            result = estimate(plan, list(plan.groups), store.done_cells(), notice=lambda t: print(f"notice: {t}"))
            table = [(d, m, r.fits, r.resource, f"{r.seconds / 3600:.3f}") for (d, m), r in sorted(result.rows.items())]
            print(tabulate(table, headers=["dataset", "model", "fits", "runs on", "est. hours"]))
            gpu_hours = result.busy_seconds["gpu"] / 3600
            print(f"estimate: {result.busy_seconds['cpu'] / 3600:.2f} CPU-hours"
                  + (f" + {gpu_hours:.2f} GPU-hours" if gpu_hours else "")
                  + f"; wall {format_hours(result.wall_seconds)} on {execution.describe()}"
                  + (f"; not estimated (timing failed): {', '.join('/'.join(p) for p in result.failed)}"
                     if result.failed else ""))
        print(f"suite {suite.name} ({suite.hash}): {len(rows)} cells, {done} done, {failed} failed, "
              f"{len(rows) - done} to run; trials {suite.trials}, epochs {suite.epochs or 'model default'}; "
              f"{execution.describe()}")
        return 0

    estimator = None if args.quiet or args.no_estimate else run_estimator(plan)
    executor = make_executor(execution)
    runner = Runner(plan, store, executor, progress, wait_for_others=args.wait, estimator=estimator)
    previous_handlers = _stop_cleanly_on_signals()
    store_failed = False
    try:
        summary = runner.run()
    except DBAPIError as exc:  # a full disk, a lost server: finished cells are already committed
        store_failed = True
        raise StoreError(describe_db_error(store.url, exc)) from None
    finally:
        progress.stop()
        executor.shutdown(cancel=runner.summary.interrupted or store_failed)
        for sig, handler in previous_handlers.items():  # callers (tests, notebooks) get theirs back
            signal.signal(sig, handler)
    progress.summary(summary)
    return summary.exit_code
