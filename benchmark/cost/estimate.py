"""The cost model: how long a plan will take, known before it starts and corrected while it runs.

The pieces: :mod:`~benchmark.cost.calibration` times a few small fits per (dataset, model),
:mod:`~benchmark.cost.cache` keeps them per machine, :mod:`~benchmark.cost.schedule` turns
costs into the plan's fits and their wall time on its slots; :func:`estimate` puts them
together for a run plan. *During a run* the progress display takes the estimate of each
finished job, compares it with the measured time and scales the remaining estimate by that ratio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from benchmark.cost.cache import CostCache
from benchmark.cost.calibration import (
    SPACE_DRAWS,
    FitCost,
    calibrate,
    calibrate_space,
    cost_space,
)
from benchmark.cost.schedule import Fit, group_fits, schedule_wall
from benchmark.data.settings import cache_dir
from benchmark.execution import resources
from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.pool import configure_threads
from benchmark.execution.tuning import LAG
from benchmark.store import provenance


@dataclass(frozen=True)
class EstimateRow:
    """One (dataset, model) of an estimate."""

    fits: int
    seconds: float  # CPU seconds (all threads), or GPU seconds on the GPU
    resource: str


@dataclass(frozen=True)
class Estimate:
    """What a plan (or the part of it still to run) is expected to cost."""

    rows: dict[tuple[str, str], EstimateRow]  # (dataset, model) -> fits and hours
    wall_seconds: float  # on the plan's CPU and GPU slots
    fits: list[Fit]
    failed: list[tuple[str, str]]  # pairs whose calibration failed: not estimated
    costs: dict[tuple[str, str], FitCost]  # at the fixed settings (GPU peaks)

    def busy_seconds(self, resource: str) -> float:
        return sum(r.seconds for r in self.rows.values() if r.resource == resource)

    def gpu_peaks(self) -> list[int]:
        """The calibrated peak GPU bytes of the pairs that run on the GPU."""
        on_gpu = {(f.dataset, f.model) for f in self.fits if f.resource == "gpu"}
        return [self.costs[pair].peak_gpu_bytes for pair in sorted(on_gpu)]


def estimate(plan: RunPlan, groups: list[GroupPlan], done: set, notice=print, time_spaces: bool = True) -> Estimate:
    """Per (dataset, model): fits and CPU/GPU hours; the total wall time for the plan's slots.

    Each (dataset, model) is calibrated once (then cached); a tuned space that can change a
    fit's work scales it by its space factor, timed here only with ``time_spaces`` (the dry
    run; a run's progress estimate uses cached factors alone).
    """
    execution = plan.execution
    gpu = provenance.device_name(execution.device) if execution.uses_gpu else ""
    cache = CostCache(cache_dir() / "cost", execution.cpu_threads, gpu)
    configure_threads(execution.cpu_threads)
    costs: dict[tuple[str, str], FitCost] = {}  # at the fixed settings (GPU peaks)
    spaced: dict[tuple[str, str], FitCost] = {}  # scaled to the tuned space
    failed: set[tuple[str, str]] = set()
    for group in groups:
        dataset, model = pair = (group.dataset, group.model.name)
        if pair in costs or pair in failed:
            continue

        def measure_cost() -> FitCost:
            notice(f"calibrating {model} on {dataset} (a few small fits; cached afterwards)")
            return calibrate(plan, group)

        def measure_space():
            notice(f"timing {model} on {dataset} at {SPACE_DRAWS} draws of its tuned space")
            return calibrate_space(plan, group)

        try:
            costs[pair] = cache.cost(group, measure_cost)
        except Exception as exc:  # noqa: BLE001 - the model fails here; the run would record it
            last = str(exc).strip().splitlines()
            notice(f"{model} on {dataset}: calibration failed ({last[-1] if last else exc}); not estimated")
            failed.add(pair)
            continue
        factor = None
        if group.model.tuned and cost_space(group):
            try:
                factor = cache.space_factor(group, measure_space if time_spaces else None)
            except Exception as exc:  # noqa: BLE001 - the fixed settings' cost stands (not cached: retried)
                notice(f"{model} on {dataset}: space timing failed ({exc}); fixed settings used")
        spaced[pair] = factor.apply(costs[pair]) if factor is not None else costs[pair]
    fits = [fit for group in groups if (group.dataset, group.model.name) in spaced
            for fit in group_fits(plan, group, spaced[(group.dataset, group.model.name)], done)]
    rows: dict[tuple[str, str], EstimateRow] = {}
    for fit in fits:
        row = rows.get((fit.dataset, fit.model), EstimateRow(0, 0.0, fit.resource))
        rows[(fit.dataset, fit.model)] = EstimateRow(row.fits + 1, row.seconds + fit.cpu_seconds, fit.resource)
    wall = schedule_wall(fits, execution.cpu_workers, len(execution.gpu_devices), LAG)
    return Estimate(rows, wall, fits, sorted(failed), costs)


def format_hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def size_gpu_jobs(plan: RunPlan, done: set, notice=print) -> RunPlan:
    """No --workers on a GPU machine: as many jobs per GPU as its free memory holds of the
    largest calibrated peak of the plan's GPU jobs (``resources.jobs_per_gpu``); the
    calibrations are cached, so the run's own estimate reuses them."""
    plan.check_data()  # a bad dataset file: one error line, before any calibration
    peaks = estimate(plan, list(plan.groups), done, notice=notice).gpu_peaks()
    if not peaks:
        return plan
    devices = sorted(set(plan.execution.gpu_devices))
    free = min(resources.gpu_free_bytes(d) for d in devices)
    jobs = resources.jobs_per_gpu(free, peaks, os.cpu_count() or 1, len(devices))
    notice(f"{jobs} job(s) per GPU: largest calibrated peak {max(peaks) / 2**20:.0f} MB, "
           f"{free / 2**30:.1f} GB free (--workers N sets it)")
    return plan.with_execution(plan.execution.with_jobs_per_gpu(jobs))


def run_estimator(plan: RunPlan):
    """What a run's progress display estimates with: the plan's estimate from cached space
    factors alone (timing spaces took minutes of the smoke suite: that is the dry run's work;
    the display corrects the estimate by the measured times of finished jobs)."""
    return lambda groups, done, notice: estimate(plan, groups, done, notice=notice, time_spaces=False)
