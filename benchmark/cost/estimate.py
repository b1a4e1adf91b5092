"""The cost model: how long a plan will take, known before it starts and corrected while it runs.

The pieces: :mod:`~benchmark.cost.calibration` times a few small fits per model on its
reference group, :mod:`~benchmark.cost.cache` keeps them per machine,
:mod:`~benchmark.cost.formula` scales them to every group and space draw,
:mod:`~benchmark.cost.schedule` turns costs into the plan's fits and their wall time on its
slots; :func:`estimate` puts them together for a run plan. *During a run* the progress display takes the estimate of each
finished job, compares it with the measured time and scales the remaining estimate by that ratio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from benchmark.cost.cache import CostCache
from benchmark.cost.calibration import calibrate_reference, probe, space_factor
from benchmark.cost.formula import (
    FitCost,
    Probe,
    Reference,
    Shape,
    SpaceFactor,
    blind_grid,
    mean_cost,
    scaled,
    space_draws,
    units,
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
    busy_seconds: dict[str, float]  # "cpu" and "gpu": the rows' seconds on each, summed

    def gpu_peaks(self) -> list[int]:
        """The calibrated peak GPU bytes of the pairs that run on the GPU."""
        on_gpu = {(f.dataset, f.model) for f in self.fits if f.resource == "gpu"}
        return [self.costs[pair].peak_gpu_bytes for pair in sorted(on_gpu)]


def estimate(plan: RunPlan, groups: list[GroupPlan], done: set, notice=print) -> Estimate:
    """Per (dataset, model): fits and CPU/GPU hours; the total wall time for the plan's slots.

    Each model is timed once on its reference group (then cached); every group's fits are
    the formula's scaling of that timing, averaged over draws of a tuned space.
    """
    execution = plan.execution
    configure_threads(execution.cpu_threads)  # the timed fits run with the plan's threads
    gpu = provenance.device_name(execution.device) if execution.uses_gpu else ""
    cache = CostCache(cache_dir() / "cost", execution.cpu_threads, gpu)
    references, reference_keys = _references(plan, cache, {g.model.name for g in groups}, notice)
    costs: dict[tuple[str, str], FitCost] = {}  # at the fixed settings (GPU peaks)
    spaced: dict[tuple[str, str], FitCost] = {}  # mean over the tuned space
    largest = [g for g in _largest_fractions(groups) if g.model.name in references]
    blind = _space_factors(plan, cache, largest, notice)
    for group in largest:
        pair = (group.dataset, group.model.name)
        reference = references[group.model.name]
        correction = Probe() if cache.key(group) == reference_keys[group.model.name] else \
            _probe(plan, cache, group, reference, notice)
        fixed, mean = (correction.apply(c) for c in group_cost(plan, group, reference))
        costs[pair], spaced[pair] = fixed, blind.get(pair, SpaceFactor()).apply(mean)
    fits = [fit for group in groups if (group.dataset, group.model.name) in spaced
            for fit in group_fits(plan, group, spaced[(group.dataset, group.model.name)], done)]
    rows: dict[tuple[str, str], EstimateRow] = {}
    for fit in fits:
        row = rows.get((fit.dataset, fit.model), EstimateRow(0, 0.0, fit.resource))
        rows[(fit.dataset, fit.model)] = EstimateRow(row.fits + 1, row.seconds + fit.cpu_seconds, fit.resource)
    wall = schedule_wall(fits, execution.cpu_workers, len(execution.gpu_devices), LAG)
    failed = sorted({(g.dataset, g.model.name) for g in groups if g.model.name not in references})
    busy = {resource: sum(r.seconds for r in rows.values() if r.resource == resource) for resource in ("cpu", "gpu")}
    return Estimate(rows, wall, fits, failed, costs, busy)


def _largest_fractions(groups: list[GroupPlan]) -> list[GroupPlan]:
    """Each (dataset, model)'s group with the largest training fraction: the one its probe
    times and its cost per fit is read from (the others scale it by their rows). The first
    group in plan order is the smallest fraction: emotions at 0.1 has 33 training rows."""
    largest: dict[tuple[str, str], GroupPlan] = {}
    for group in groups:
        pair = (group.dataset, group.model.name)
        if pair not in largest or group.fraction > largest[pair].fraction:
            largest[pair] = group
    return list(largest.values())


def reference_group(groups: list[GroupPlan]) -> GroupPlan:
    """A model's reference: its group with the least work per row at the fixed settings
    (the smallest dataset), so the timed fits are short; ties go to the larger pool (the
    larger dataset, then the larger fraction: the quick suite's reference fits were 8 to 33
    rows of emotions at fraction 0.1, and their slope was noise)."""
    def work(group: GroupPlan) -> tuple[float, int, float]:
        shape = Shape.of(group.data, 0, 0)
        return units(group.model.cls, shape, group.model.params).row, -group.data.facts.n_rows, -group.fraction
    return min(groups, key=work)


def _references(plan: RunPlan, cache: CostCache, models: set[str], notice) -> tuple[dict[str, Reference], dict[str, str]]:
    """Each model's reference timing (cached, or timed now; a model whose fits fail is left
    out) and its reference group's cache key (a group with that key needs no probe)."""
    references, keys = {}, {}
    for model in sorted(models):
        group = reference_group([g for g in plan.groups if g.model.name == model])
        keys[model] = cache.key(group)

        def measure() -> Reference:
            notice(f"timing {model} on {group.dataset} (a few small fits; cached afterwards)")
            return calibrate_reference(plan, group)

        try:
            references[model] = cache.reference(group, measure)
        except Exception as exc:  # noqa: BLE001 - the model fails here; the run would record it
            last = str(exc).strip().splitlines()
            notice(f"{model} on {group.dataset}: timing failed ({last[-1] if last else exc}); not estimated")
    return references, keys


def _probe(plan: RunPlan, cache: CostCache, group: GroupPlan, reference: Reference, notice) -> Probe:
    """The formula's correction on the group's dataset, cached or timed now."""
    def measure() -> Probe:
        notice(f"timing {group.model.name} on {group.dataset} (small fits; cached afterwards)")
        return probe(plan, group, reference)

    try:
        return cache.probe(group, measure)
    except Exception as exc:  # noqa: BLE001 - the formula stands uncorrected; the run would record the failure
        notice(f"{group.model.name} on {group.dataset}: timing failed ({exc}); formula uncorrected")
        return Probe()


def _blind_points(group: GroupPlan) -> tuple[list[dict], tuple]:
    """The group's grid over its tuned cost-blind hyperparameters, and what a measurement of
    it is shared by: the dataset, the grid and the fixed values it is compared with."""
    cls = group.model.cls
    names = tuple(n for n in cls.cost_blind_params if n in group.model.space) if group.model.tuned else ()
    grid = blind_grid(group.model.space, names)
    fixed = {**cls.defaults, **group.model.params}
    return grid, (group.dataset, repr(grid), repr([fixed.get(n) for n in names]))


def _space_factors(plan: RunPlan, cache: CostCache, groups: list[GroupPlan], notice) -> dict[tuple[str, str], SpaceFactor]:
    """Per (dataset, model) with tuned cost-blind hyperparameters: the dataset's factor over
    their grid, measured once per dataset and grid with the cheapest such model (br for the
    logistic family): the solver's iterations depend mostly on the data and the penalty (at
    3000 rows bibtex br x0.84, rakeld x0.87). Ensembles react somewhat more on delicious
    (rakeld x1.5 against br's x1.3; ECC's trials x1.66 where br's grid said x1.45), so there
    the shared factor errs low; each model's own grid would cost the paper's cold dry run ~30 s."""
    shared: dict[tuple, list[GroupPlan]] = {}
    grids: dict[tuple, list[dict]] = {}
    for group in groups:
        grid, key = _blind_points(group)
        if grid:
            shared.setdefault(key, []).append(group)
            grids[key] = grid  # equal for every member: the key holds it
    factors = {}
    for key, members in shared.items():
        cheapest = min(members, key=lambda g: (units(g.model.cls, Shape.of(g.data, 0, 0), g.model.params).row,
                                               g.model.name))
        grid = grids[key]

        def measure() -> SpaceFactor:
            notice(f"timing {cheapest.model.name} on {cheapest.dataset} across its tuned "
                   f"{', '.join(sorted(grid[0]))} (cached afterwards)")
            return space_factor(plan, cheapest, grid)

        try:
            factor = cache.space_factor(cheapest, grid, measure)
        except Exception as exc:  # noqa: BLE001 - the formula stands uncorrected; the run would record the failure
            notice(f"{cheapest.model.name} on {cheapest.dataset}: timing failed ({exc}); tuned space uncorrected")
            factor = SpaceFactor()
        factors.update({(g.dataset, g.model.name): factor for g in members})
    return factors


def group_cost(plan: RunPlan, group: GroupPlan, reference: Reference) -> tuple[FitCost, FitCost]:
    """One fit's cost at the group's fixed settings, and its mean over the tuned space."""
    parts = group.data.drawn[(group.fraction, plan.trial_seed)]
    shape = Shape.of(group.data, len(parts.val), len(parts.test))
    cls, params = group.model.cls, dict(group.model.params)
    fixed = scaled(reference, cls, shape, params)
    if not group.model.tuned or not group.model.space:
        return fixed, fixed
    drawn = []
    for draw in space_draws(group.model.space):
        try:
            drawn.append(scaled(reference, cls, shape, {**params, **draw}))
        except Exception:  # noqa: BLE001 - a draw the model refuses would fail its trial too
            continue
    return fixed, mean_cost(drawn) if drawn else fixed


def format_hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def size_gpu_jobs(plan: RunPlan, done: set, notice=print) -> RunPlan:
    """No --workers on a GPU machine: as many jobs per GPU as its free memory holds of the
    largest calibrated peak of the plan's GPU jobs (``resources.jobs_per_gpu``); the
    calibrations are cached, so the run's own estimate reuses them."""
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
    """What a run's progress display estimates with: the dry run's formula (the display
    corrects it by the measured times of finished jobs)."""
    return lambda groups, done, notice: estimate(plan, groups, done, notice=notice)
