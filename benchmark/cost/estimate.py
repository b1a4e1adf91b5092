"""The cost model: how long a plan will take, known before it starts and corrected while it runs.

The pieces: :mod:`~benchmark.cost.calibration` times a few small fits per (dataset, model),
:mod:`~benchmark.cost.cache` keeps them per machine, :mod:`~benchmark.cost.schedule` turns
costs into the plan's fits and their wall time on its slots; :func:`estimate` puts them
together for a run plan. *During a run* the progress display takes the estimate of each
finished job, compares it with the measured time and scales the remaining estimate by that ratio.
"""

from __future__ import annotations

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
    """Per (dataset, model): fits and CPU/GPU hours; the total wall time for the plan's slots."""
    execution = plan.execution
    gpu = provenance.device_name(execution.device) if execution.uses_gpu else ""
    cache = CostCache(cache_dir() / "cost", execution.cpu_threads, gpu)
    configure_threads(execution.cpu_threads)
    fits: list[Fit] = []
    costs: dict[tuple[str, str], FitCost] = {}  # at the fixed settings (GPU peaks)
    spaced: dict[tuple[str, str], FitCost] = {}  # scaled to the tuned space
    failed: set[tuple[str, str]] = set()
    for group in groups:
        pair = (group.data.entry.name, group.model.name)
        if pair not in costs:
            cost = cache.get(group)
            if cost is None:
                notice(f"calibrating {pair[1]} on {pair[0]} (a few small fits; cached afterwards)")
                try:
                    cost = calibrate(plan, group)
                except Exception as exc:  # noqa: BLE001 - the model fails here; the run would record it
                    last = str(exc).strip().splitlines()
                    notice(f"{pair[1]} on {pair[0]}: calibration failed ({last[-1] if last else exc}); not estimated")
                    failed.add(pair)
                    continue
                cache.put(group, cost)
            costs[pair] = cost
        if pair in failed:
            continue
        if pair not in spaced:
            spaced[pair] = _over_space(plan, group, costs[pair], cache, notice, time_spaces)
        fits += group_fits(plan, group, spaced[pair], done)
    rows: dict[tuple[str, str], EstimateRow] = {}
    for fit in fits:
        row = rows.get((fit.dataset, fit.model), EstimateRow(0, 0.0, fit.resource))
        rows[(fit.dataset, fit.model)] = EstimateRow(row.fits + 1, row.seconds + fit.cpu_seconds, fit.resource)
    wall = schedule_wall(fits, execution.cpu_workers, len(execution.gpu_devices), LAG)
    return Estimate(rows, wall, fits, sorted(failed), costs)


def _over_space(plan: RunPlan, group: GroupPlan, cost: FitCost, cache: CostCache, notice,
                time_spaces: bool = True) -> FitCost:
    """``cost`` scaled to the group's tuned space (its factor calibrated once, then cached;
    without ``time_spaces`` only a cached factor is used)."""
    if not group.model.tuned or not cost_space(group):
        return cost
    factor = cache.get_space(group)
    if factor is None and not time_spaces:
        return cost
    if factor is None:
        notice(f"timing {group.model.name} on {group.data.entry.name} at {SPACE_DRAWS} draws of its tuned space")
        try:
            factor = calibrate_space(plan, group)
        except Exception as exc:  # noqa: BLE001 - the fixed settings' cost stands
            notice(f"{group.model.name} on {group.data.entry.name}: space timing failed ({exc}); fixed settings used")
            return cost
        cache.put_space(group, factor)
    return factor.apply(cost)


def format_hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"
