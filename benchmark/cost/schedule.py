"""From costs per fit to the fits a plan makes and the wall time they take on its slots.

Per group: ``trials`` trial fits (under the median pruner the trials it may stop train
the measured share of their epochs after warm-up, :func:`trial_epochs`) plus one fit per
seed (minus the one reused from the best trial); under successive halving over rows, the
trials' fits on each rung's rows, as many as the promotion rule lets through. Wall time is the
runner's own policy simulated on the plan's CPU and GPU slots: earliest group first, at most
``LAG + 1`` trials of one study at a time, a group's seeds after its last trial.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from benchmark.cost.formula import FitCost
from benchmark.execution.halving import expected_rung_counts, rung_rows
from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.tuning import LAG
from benchmark.execution.worker import Pruning

#: Median pruning: the share of its epochs after warm-up that a trial the pruner may stop
#: trains on average (measured 0.57 on scene, pooled over six models: benchmarks/results/pruning_scene.txt).
MEDIAN_KEPT_SHARE = 0.6


@dataclass
class Fit:
    group_label: str
    dataset: str
    model: str
    resource: str
    seconds: float  # wall seconds in one slot
    study: str | None  # fits of one study are limited to LAG + 1 at a time
    cpu_seconds: float  # CPU seconds, all threads (GPU fits: GPU wall seconds, as ``seconds``)
    job: tuple[str, int] = ("cell", 0)  # ("trial", index) or ("cell", seed): the runner's job


def trial_epochs(pruning: Pruning | None, index: int, epochs: int | None, lag: int) -> float | None:
    """Epochs trial ``index`` is expected to train under the suite's pruner.

    The median pruner counts the completed trials its trial was sent (``0 .. index-1-lag``)
    and may stop a trial only after ``startup`` of them, and after its warm-up epochs; of
    the epochs after warm-up a prunable trial trains :data:`MEDIAN_KEPT_SHARE` on average
    (measured). Hyperband is not modelled (its estimate errs high).
    """
    if not epochs or pruning is None or pruning.pruner != "median" or index < pruning.startup + lag:
        return epochs
    warm = min(pruning.warmup, epochs)
    return warm + MEDIAN_KEPT_SHARE * (epochs - warm)


def group_fits(plan: RunPlan, group: GroupPlan, cost: FitCost, done: set) -> list[Fit]:
    seeds = [s for s in group.seeds if group.keys[s] not in done]
    if not seeds:
        return []
    n = len(group.data.drawn[(group.fraction, plan.trial_seed)].train)
    epochs = group.model.epochs
    trials = group.model.trials
    reused = plan.trial_seed if trials and plan.trial_seed in seeds else None
    label = group.label

    def make(job: tuple[str, int], fit_epochs: float | None) -> Fit:
        # a model growing in steps has no per-epoch cost: a pruned trial costs its share of steps
        share = fit_epochs / epochs if epochs and fit_epochs and not cost.epochs_trained else 1.0
        return Fit(label, group.data.entry.name, group.model.name, group.model.resource,
                   share * cost.wall_seconds(n, fit_epochs), label if job[0] == "trial" else None,
                   share * cost.seconds(n, fit_epochs), job)

    halving = group.model.halving
    if halving is not None and trials:
        per_trial = halving_trial_seconds(cost, n, epochs, trials, halving) / trials
        trial_fits = [Fit(label, group.data.entry.name, group.model.name, group.model.resource,
                          per_trial / cost.parallelism, label, per_trial, ("trial", k)) for k in range(trials)]
    else:
        trial_fits = [make(("trial", k), trial_epochs(group.model.pruning, k, epochs, LAG)) for k in range(trials)]
    return trial_fits + [make(("cell", seed), epochs) for seed in seeds if seed != reused]


def halving_trial_seconds(cost: FitCost, n_rows: int, epochs: int | None, trials: int, halving) -> float:
    """CPU seconds of a study's trials under successive halving over rows: each rung's fits
    (a fresh fit on that rung's rows, in full: no epoch pruning) times the trials expected to
    reach it, by the promotion rule itself (``halving.expected_rung_counts``)."""
    rows = rung_rows(n_rows, halving)
    counts = expected_rung_counts(trials, len(rows), halving, LAG)
    return sum(count * cost.seconds(r, epochs) for r, count in zip(rows, counts))


def schedule_wall(fits: list[Fit], cpu_slots: int, gpu_slots: int, lag: int) -> float:
    """Makespan of the runner's own policy on the slots (per resource kind), simulated.

    The runner fills every free slot from the earliest group in plan order that has a job:
    a group's trials with at most ``lag + 1`` of them in flight, its seeds' fits only once
    its last trial is back. ``fits`` come in plan order (a group's trials, then its cells).
    A longest-first schedule of the same fits ignored both waits and said 17.5 min of a
    quick-suite run that took 25 (the long groups of the last dataset ran at the end).
    """
    wall = 0.0
    for resource, slots in (("cpu", cpu_slots), ("gpu", gpu_slots)):
        groups = _groups_in_order([f for f in fits if f.resource == resource])
        if groups:
            wall = max(wall, _simulate(groups, max(1, slots), lag))
    return wall


@dataclass
class _GroupJobs:
    trials: list[float]  # seconds of each trial still to start, in order
    cells: list[float]  # seconds of each seed's fit, started after the last trial is back
    running: int = 0  # trials in flight


def _groups_in_order(fits: list[Fit]) -> list[_GroupJobs]:
    groups: dict[str, _GroupJobs] = {}
    for fit in fits:
        group = groups.setdefault(fit.group_label, _GroupJobs([], []))
        (group.trials if fit.job[0] == "trial" else group.cells).append(fit.seconds)
    return list(groups.values())


def _simulate(groups: list[_GroupJobs], slots: int, lag: int) -> float:
    """Event simulation: at each finish, the freed slots go to the earliest groups with a job."""
    now, free = 0.0, slots
    running: list[tuple[float, int, int, bool]] = []  # (end, order, group index, is a trial)
    order = 0
    while True:
        for index, group in enumerate(groups):
            while free > 0:
                if group.trials and group.running <= lag:
                    seconds, trial = group.trials.pop(0), True
                    group.running += 1
                elif not group.trials and not group.running and group.cells:
                    seconds, trial = group.cells.pop(0), False
                else:
                    break
                heapq.heappush(running, (now + seconds, order, index, trial))
                order, free = order + 1, free - 1
            if free == 0:
                break
        if not running:
            return now
        now, _, index, trial = heapq.heappop(running)
        free += 1
        if trial:
            groups[index].running -= 1
