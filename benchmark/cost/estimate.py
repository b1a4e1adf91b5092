"""The cost model: how long a suite will take, known before it starts and corrected while it runs.

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

*Estimate.* Per group: ``trials`` trial fits (epochs: the fixed value, or the middle of a
tuned range; under the median pruner the trials it may stop train the measured share of
their epochs after warm-up, :func:`trial_epochs`) plus one fit per seed (minus the one
reused from the best trial); hours per row are CPU (or GPU) hours. Wall time is a list
schedule of every fit's wall time, longest first, on the plan's CPU and GPU slots, with
at most ``LAG + 1`` trials of one study at a time.

*During a run* the progress display takes the estimate of each finished job, compares
it with the measured time and scales the remaining estimate by that ratio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import inspect
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import discovery
from benchmark.data.settings import cache_dir
from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.pool import configure_threads
from benchmark.execution.tuning import LAG
from benchmark.execution.worker import Pruning, run_job
from benchmark.files import UnusableCacheEntry, atomic_write, warn_unusable
from benchmark.lazy import lazy
from benchmark.modelapi.base import get_model
from benchmark.store import provenance

optuna = lazy("optuna")
torch = lazy("torch")

CALIBRATION_ROWS = 1024
CALIBRATION_EVAL_ROWS = 256
CACHE_VERSION = 3
#: Hyperparameters that do not change the work of a fit (step size, regularisation): a
#: space tuning only these costs what the fixed settings cost, with no timed draws.
COST_NEUTRAL = frozenset({"lr", "dropout", "weight_decay"})
#: Random draws of a tuned space timed against the fixed settings (:func:`calibrate_space`).
SPACE_DRAWS = 8  # trial costs over a network's space vary with a CV of 1.0-1.4 (scene): 4 draws missed the tail
SPACE_CLIP = 20.0  # space factors are kept within [1/20, 20]: past that, small fits time noise
#: Median pruning: the share of its epochs after warm-up that a trial the pruner may stop
#: trains on average (measured 0.57 on scene, pooled over six models: benchmarks/results/pruning_scene.txt).
MEDIAN_KEPT_SHARE = 0.6


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

    cost = _calibrate_fits(get_model(group.model.base), fit, setup.pool_size, setup.eval_scale, setup.val_scale)
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
    cls = get_model(group.model.base)
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


# ----------------------------------------------------------------------------- cache

#: the engine files a fit executes (besides the model's own file): a change to one of them
#: can change a fit's cost, a change to the driver, the suite reader or the report cannot
FIT_ENGINE = ("execution/worker.py", "modelapi/base.py", "modelapi/torch_training.py", "modelapi/torch_device.py",
              "modelapi/torch_loop.py", "modelapi/torch_layers.py", "modelapi/epoch_selection.py",
              "modelapi/sklearn_utils.py", "evaluation/metrics.py", "evaluation/thresholds.py",
              "data/dataset.py", "data/splits.py")


def _code_version(model_name: str) -> str:
    digest = hashlib.sha256()
    digest.update(Path(inspect.getfile(get_model(model_name))).read_bytes())
    for name in FIT_ENGINE:
        digest.update((discovery.REPO_ROOT / "benchmark" / name).read_bytes())
    return digest.hexdigest()[:16]


def _machine(threads: int) -> str:
    return f"{provenance.device_name('cpu')}|threads={threads}"


class CostCache:
    """Calibrations on disk, one JSON file per machine, shared by concurrent runs."""

    def __init__(self, directory: Path, threads: int, gpu: str = ""):
        self.threads = threads
        self.gpu = gpu  # the GPU's name: GPU calibrations (wall seconds) belong to it
        self.path = directory / f"cost-{hashlib.sha256(_machine(threads).encode()).hexdigest()[:12]}.json"
        self.entries = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            entries = json.loads(self.path.read_bytes())
            if not isinstance(entries, dict):
                raise UnusableCacheEntry(f"a JSON {type(entries).__name__}, not an object")
        except FileNotFoundError:
            return {}
        except Exception as exc:  # noqa: BLE001 - unreadable in any way: absent, recalibrated
            warn_unusable(self.path, "cost", exc)
            return {}
        return entries if entries.get("_version") == CACHE_VERSION else {}

    def _entry(self, cls, key: str):
        """A cached calibration, or None when absent or implausible (negative, not finite)."""
        entry = self.entries.get(key)
        if not entry:
            return None
        try:
            value = cls(**entry)
            numbers = [v for v in dataclasses.astuple(value) if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not all(math.isfinite(v) and v >= 0 for v in numbers):
                raise UnusableCacheEntry(f"{key}: a negative or non-finite number")
            return value
        except (TypeError, ValueError) as exc:
            warn_unusable(f"{self.path} [{key}]", "cost", exc)
            self.entries.pop(key, None)
            return None

    def key(self, group) -> str:
        content = [group.data.fingerprint, group.model.base, group.model.params, _code_version(group.model.base),
                   group.data.split_seed, group.data.val_size, group.model.resource]
        if group.model.resource == "gpu":
            content.append(self.gpu)
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def get(self, group) -> FitCost | None:
        entry = self.entries.get(self.key(group))
        if isinstance(entry, dict) and self.threads > 1 and "parallelism" not in entry and group.model.resource != "gpu":
            return None  # calibrated before parallelism was measured: its wall time reads up to threads x high
        return self._entry(FitCost, self.key(group))

    def put(self, group, cost: FitCost) -> None:
        self.put_entry(self.key(group), dataclasses_asdict(cost))

    def space_key(self, group) -> str:
        space = sorted((k, optuna.distributions.distribution_to_json(d)) for k, d in cost_space(group).items())
        content = [self.key(group), space, SPACE_DRAWS]
        return "space-" + hashlib.sha256(json.dumps(content).encode()).hexdigest()[:20]

    def get_space(self, group) -> SpaceFactor | None:
        return self._entry(SpaceFactor, self.space_key(group))

    def put_space(self, group, factor: SpaceFactor) -> None:
        self.put_entry(self.space_key(group), dataclasses_asdict(factor))

    def put_entry(self, key: str, entry: dict[str, Any]) -> None:
        """Merge one calibration into the file under a lock, written whole by a rename.

        Two runs on one machine (a dry run beside a run, two users) each add theirs: a
        plain rewrite from this process's memory would drop what the other one added since
        (tens of minutes of calibration on the paper suite).
        """
        self.entries[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.path.with_suffix(".lock")):
            merged = {**self._read(), **self.entries, "_version": CACHE_VERSION}
            atomic_write(self.path, lambda fh: fh.write(json.dumps(merged, indent=1, sort_keys=True).encode()))
        self.entries = merged


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock (POSIX ``flock``); without fcntl, no lock (the rename
    still keeps the file whole, but a concurrent calibration may be lost)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dataclasses_asdict(cost: FitCost) -> dict[str, Any]:
    return dataclasses.asdict(cost)


# ----------------------------------------------------------------------------- estimate

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
    seeds = [s for s in group.seeds if group.key(s) not in done]
    if not seeds:
        return []
    n = len(group.data.parts(group.fraction, plan.trial_seed).train)
    epochs = group.model.epochs
    trials = group.model.trials
    reused = plan.trial_seed if trials and plan.trial_seed in seeds else None
    label = group.label

    def make(job: tuple[str, int], fit_epochs: float | None) -> Fit:
        return Fit(label, group.data.entry.name, group.model.name, group.model.resource,
                   cost.wall_seconds(n, fit_epochs), label if job[0] == "trial" else None,
                   cost.seconds(n, fit_epochs), job)

    return ([make(("trial", k), trial_epochs(group.model.pruning, k, epochs, LAG)) for k in range(trials)]
            + [make(("cell", seed), epochs) for seed in seeds if seed != reused])


def schedule_wall(fits: list[Fit], cpu_slots: int, gpu_slots: int, lag: int) -> float:
    """Makespan of a greedy longest-first schedule over the slots (per resource kind)."""
    wall = 0.0
    for resource, slots in (("cpu", cpu_slots), ("gpu", gpu_slots)):
        jobs = sorted((f for f in fits if f.resource == resource), key=lambda f: -f.seconds)
        if not jobs:
            continue
        slots = max(1, slots)
        free = [0.0] * slots
        heapq.heapify(free)
        per_study: dict[str, list[float]] = {}
        for job in jobs:
            start = heapq.heappop(free)
            if job.study is not None:  # at most lag+1 trials of one study run at once
                running = per_study.setdefault(job.study, [])
                running.sort()
                if len(running) > lag:
                    start = max(start, running[-(lag + 1)])
            end = start + job.seconds
            if job.study is not None:
                per_study[job.study].append(end)
            heapq.heappush(free, end)
            wall = max(wall, end)
    return wall


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
