"""Timing small fits of a model on its dataset: what one fit costs, before anything runs.

*Calibration.* For each (dataset, model) the driver times a few small fits of the model
with the group's fixed settings (defaults for tuned ones) on subsets of the training
pool, in this process with the threads a worker gets, measured in CPU seconds (GPU
models on a GPU: wall seconds), so other load on the machine does not distort it:

- (validation and test rows are subsampled to 256 each and their share of the cost scaled
  back to the full sizes)
- epoch-trained models: 1 and 3 epochs on two subset sizes, which separate the per-epoch
  cost (linear in the rows, plus the per-epoch validation pass) from the fixed cost
  (set-up, prediction, evaluation);
- other models: one fit on each of three subset sizes, fitted as ``c + k * n**a``
  (so MLkNN's super-linear cost shows).

A fit of ``E`` epochs on ``n`` rows is then extrapolated. With several threads per worker
the fits' CPU seconds per wall second (``parallelism``, at most the thread count) turn CPU
seconds into a fit's wall time. A tuned space that can change a fit's work (anything but
``COST_NEUTRAL``: trees, widths, batch sizes) is timed at ``SPACE_DRAWS`` random draws
against the fixed settings, and the ratio scales the cost (:class:`SpaceFactor`). The
measurements are cached per machine (CPU model, threads), code version (the sha256 of the
model file and of the engine files a fit runs, ``FIT_ENGINE``), dataset (its files'
sha256) and space, so a second dry run is instant.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.worker import run_job
from benchmark.lazy import lazy

optuna = lazy("optuna")
torch = lazy("torch")

CALIBRATION_ROWS = 1024


CALIBRATION_EVAL_ROWS = 256


#: Hyperparameters that do not change the work of a fit (step size, regularisation): a
#: space tuning only these costs what the fixed settings cost, with no timed draws.
COST_NEUTRAL = frozenset({"lr", "dropout", "weight_decay"})


#: Random draws of a tuned space timed against the fixed settings (:func:`calibrate_space`).
SPACE_DRAWS = 8  # trial costs over a network's space vary with a CV of 1.0-1.4 (scene): 4 draws missed the tail


SPACE_CLIP = 20.0  # space factors are kept within [1/20, 20]: past that, small fits time noise


@dataclass(frozen=True)
class FitCost:
    """Seconds of one fit: ``fixed + epochs * (per_epoch_val + per_row * n**exponent)``."""

    fixed: float
    per_row: float
    exponent: float = 1.0
    per_epoch_val: float = 0.0
    epochs_trained: bool = False
    peak_gpu_bytes: int = 0  # GPU calibrations: the largest torch allocation of a fit (0: CPU/unknown)
    parallelism: float = 1.0  # CPU seconds per wall second with the worker's threads (GPU: 1)

    def seconds(self, n_rows: int, epochs: int | None = None) -> float:
        work = self.per_row * max(n_rows, 1) ** self.exponent
        if self.epochs_trained:
            return self.fixed + max(1, epochs or 1) * (self.per_epoch_val + work)
        return self.fixed + work

    def wall_seconds(self, n_rows: int, epochs: int | None = None) -> float:
        """The slot time of one fit: its CPU seconds spread over the threads it keeps busy."""
        return self.seconds(n_rows, epochs) / self.parallelism


def parallelism_of(timings: list[tuple[float, float]], threads: int) -> float:
    """CPU seconds per wall second of the timed fits ``(cpu, wall)``, within ``[1, threads]``.

    A worker with several threads spends more CPU seconds than wall seconds when its fits
    use them (``process_time`` sums the threads); scheduling CPU seconds as wall time
    overestimated such runs by up to the thread count. Under other load the wall times
    stretch, so the figure errs low and the wall estimate high.
    """
    cpu = sum(c for c, _ in timings)
    wall = sum(w for _, w in timings)
    if threads <= 1 or wall <= 0:
        return 1.0
    return float(min(max(cpu / wall, 1.0), threads))


def _timed(job, peaks: list[int] | None = None, timings: list[tuple[float, float]] | None = None) -> float:
    """CPU seconds of one fit in this process: robust to other load on the machine.

    On a GPU: wall seconds, and the fit's peak torch allocation is appended to ``peaks``.
    On the CPU, ``(cpu, wall)`` seconds are appended to ``timings``.
    """


    on_gpu = job.device != "cpu"
    measure_memory = on_gpu and torch.cuda.is_available()  # not for a mocked device list (tests)
    if measure_memory:
        torch.cuda.reset_peak_memory_stats(job.device)
    wall_started, cpu_started = time.perf_counter(), time.process_time()
    result = run_job(job)
    if result.state == "failed":
        raise RuntimeError(result.error)
    wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
    seconds = wall if on_gpu else cpu
    if timings is not None and not on_gpu:
        timings.append((cpu, wall))
    if measure_memory and peaks is not None:
        peaks.append(int(torch.cuda.max_memory_allocated(job.device)))
    return seconds


@dataclass
class _Calibration:
    """A group's timed-fit set-up: its base job, training pool order and evaluation scales."""

    base_job: Any
    order: np.ndarray
    pool_size: int
    eval_scale: float
    val_scale: float
    fixed_params: dict[str, Any]

    def fit(self, n: int, epochs: int | None = None, params: dict[str, Any] | None = None,
            peaks: list[int] | None = None, timings: list[tuple[float, float]] | None = None) -> float:
        """Seconds of one fit on the first ``n`` rows of the pool (``params`` over the fixed ones)."""
        merged = {**self.fixed_params, **(params or {})}
        if epochs is not None:
            merged["epochs"] = epochs
        job = dataclasses.replace(self.base_job, train=np.sort(self.order[:n]), params=merged, kind="cell")
        return _timed(job, peaks, timings)


def _calibration(plan: RunPlan, group: GroupPlan) -> _Calibration:
    base_job = plan.job(group, "cell", plan.trial_seed, dict(group.model.params))
    device = plan.execution.device if group.model.resource == "gpu" else "cpu"
    base_job = dataclasses.replace(base_job, device=device)
    pool = base_job.train
    rng = np.random.default_rng(0)
    order = rng.permutation(pool)
    # evaluation rows subsampled too (their cost is linear in rows): scaled back below
    val = np.sort(rng.permutation(base_job.val)[:CALIBRATION_EVAL_ROWS])
    test = np.sort(rng.permutation(base_job.test)[:CALIBRATION_EVAL_ROWS])
    val_scale = len(base_job.val) / max(len(val), 1)
    eval_scale = (len(base_job.val) + len(base_job.test)) / max(len(val) + len(test), 1)
    base_job = dataclasses.replace(base_job, val=val, test=test)
    return _Calibration(base_job, order, len(pool), eval_scale, val_scale, dict(group.model.params))


def calibrate(plan: RunPlan, group: GroupPlan) -> FitCost:
    """Time small fits of one group's model on its dataset (see the module docstring)."""
    setup = _calibration(plan, group)
    peaks: list[int] = []
    timings: list[tuple[float, float]] = []

    def fit(n: int, epochs: int | None = None) -> float:
        return setup.fit(n, epochs, peaks=peaks, timings=timings)

    cost = _calibrate_fits(group.model.cls, fit, setup.pool_size, setup.eval_scale, setup.val_scale)
    # A fit's peak is set by its batch, not its rows, except for the features it holds on
    # the device: the full training set's are a few tens of MB more on the paper's
    # datasets, inside the share of free memory that plan.jobs_per_gpu leaves unused.
    return dataclasses.replace(cost, peak_gpu_bytes=max(peaks, default=0),
                               parallelism=parallelism_of(timings[1:], plan.execution.cpu_threads))  # [0]: warm-up


def _calibrate_fits(cls, fit, pool_size: int, eval_scale: float, val_scale: float) -> FitCost:
    """The cost model's coefficients from timed fits (``fit(n_rows, epochs)`` -> seconds)."""
    top = min(pool_size, CALIBRATION_ROWS)
    if cls.trains_in_epochs and "epochs" in cls.defaults:
        small = max(8, top // 2)
        fit(small, 1)  # warm-up: imports, caches, first-call overheads
        a1, a3 = fit(small, 1), fit(small, 3)
        b1, b3 = fit(top, 1), fit(top, 3)
        per_small, per_top = max((a3 - a1) / 2, 1e-4), max((b3 - b1) / 2, 1e-4)
        per_row = max((per_top - per_small) / max(top - small, 1), 0.0)
        per_epoch_val = max(per_top - per_row * top, 0.0)
        fixed = max(b1 - per_top, 0.0)
        return FitCost(fixed * eval_scale, per_row, 1.0, per_epoch_val * val_scale, True)
    sizes = sorted({max(8, top // 4), max(8, top // 2), top})
    fit(sizes[0])  # warm-up
    times = [fit(n) for n in sizes]
    fixed = max(min(times[0] - (times[1] - times[0]), times[0]) * 0.5, 0.0) if len(times) > 1 else 0.0
    if len(sizes) >= 2 and times[-1] - fixed > 0 and times[0] - fixed > 0:
        exponent = math.log((times[-1] - fixed) / (times[0] - fixed)) / math.log(sizes[-1] / sizes[0])
        exponent = float(np.clip(exponent, 0.5, 2.0))
    else:
        exponent = 1.0
    per_row = max(times[-1] - fixed, 1e-4) / sizes[-1] ** exponent
    return FitCost(fixed * eval_scale, per_row, exponent)


@dataclass(frozen=True)
class SpaceFactor:
    """Mean cost of fits at random draws of a group's tuned space over the cost at its
    fixed settings (the defaults of the tuned ones): the epochs' work and the rest of a fit
    scale separately (a wider network costs more per epoch, not more to set up)."""

    epoch: float = 1.0
    fixed: float = 1.0

    def apply(self, cost: FitCost) -> FitCost:
        if not cost.epochs_trained:  # one fit is all the work
            return dataclasses.replace(cost, fixed=cost.fixed * self.fixed, per_row=cost.per_row * self.fixed)
        return dataclasses.replace(cost, fixed=cost.fixed * self.fixed, per_row=cost.per_row * self.epoch,
                                   per_epoch_val=cost.per_epoch_val * self.epoch)


def cost_space(group) -> dict[str, Any]:
    """The part of a group's tuned space that can change what a fit costs (``epochs``
    aside: :func:`epochs_of` counts them)."""
    return {k: d for k, d in group.model.space.items() if k not in COST_NEUTRAL and k != "epochs"}


def space_draws(space: dict[str, Any], n: int = SPACE_DRAWS) -> list[dict[str, Any]]:
    """``n`` reproducible uniform draws from ``space`` (Optuna's random sampler, seed 0)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [dict(study.ask(space).params) for _ in range(n)]


def calibrate_space(plan: RunPlan, group: GroupPlan) -> SpaceFactor:
    """Time fits at :func:`space_draws` of the group's cost space against its fixed settings.

    Calibrating at the fixed settings alone missed what the tuned space costs: rf's trees
    and features, a network's width and batch size (an rf-dominated suite measured x3.1 its
    estimate). Draws that fail are left out; if all do, the factor is 1.
    """
    space = cost_space(group)
    if not space:
        return SpaceFactor()
    setup = _calibration(plan, group)
    top = min(setup.pool_size, CALIBRATION_ROWS // 2)  # a ratio of costs: half the rows keep 9 fits cheap
    cls = group.model.cls
    by_epochs = cls.trains_in_epochs and "epochs" in cls.defaults

    def measure(params: dict[str, Any]) -> tuple[float, float]:
        """(per-epoch, rest) seconds; a model without epochs: (whole fit, whole fit)."""
        if not by_epochs:
            whole = setup.fit(top, params=params)
            return whole, whole
        one, three = setup.fit(top, 1, params), setup.fit(top, 3, params)
        per_epoch = max((three - one) / 2, 1e-4)
        return per_epoch, max(one - per_epoch, 0.05 * one)  # a near-zero rest: no ratio of noise

    setup.fit(top, 1 if by_epochs else None)  # warm-up
    base = measure({})
    drawn = []
    for params in space_draws(space):
        try:
            drawn.append(measure(params))
        except Exception:  # noqa: BLE001 - a draw the model refuses would fail its trial too
            continue
    if not drawn:
        return SpaceFactor()
    epoch, fixed = (float(np.clip(np.mean([d[i] for d in drawn]) / base[i], 1 / SPACE_CLIP, SPACE_CLIP)) for i in (0, 1))
    return SpaceFactor(epoch, fixed)  # without epochs both are the whole fit's ratio
