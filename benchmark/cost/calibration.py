"""Timing small fits of a model on its reference dataset: the constants of the cost formula.

*Calibration.* For each model the driver times a few small fits on its reference group
(:mod:`benchmark.cost.formula`: the plan's group of that model with the least work) with
the group's fixed settings (defaults for tuned ones), on subsets of the training pool and
with validation and test subsampled to ``CALIBRATION_EVAL_ROWS`` each, in this process with
the threads a worker gets, measured in CPU seconds (GPU models on a GPU: wall seconds), so
other load on the machine does not distort it:

- epoch-trained models: 1 and 2 epochs at the batch size and at a quarter of it, which
  separate the fixed cost (set-up, prediction), the work per row and per optimiser step;
- other models: one fit on each of three subset sizes, fitted as ``c + k * n**a``, ``a``
  the model's ``row_exponent`` (MLkNN's search grows faster than a linear model); ``k`` is
  per cost unit of all labels, a fit counted at the labels its rows vary
  (``Model.learns_varying_labels``: 64 rows of delicious vary 440 of its 983 labels, and
  ECC's chains cost the square of that).

With several threads per worker the fits' CPU seconds per wall second (``parallelism``, at
most the thread count) turn CPU seconds into a fit's wall time. The timings are cached
(:mod:`benchmark.cost.cache`); every other dataset and space draw is a formula, not a fit,
so a cold dry run of the paper suite times 17 models, not 68 pairs and their spaces.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.cost.formula import (
    VALIDATION_SHARE,
    Probe,
    Reference,
    Shape,
    SpaceFactor,
    scaled,
    units,
)
from benchmark.data.refs import load_ref
from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.worker import new_model, run_job
from benchmark.lazy import lazy

torch = lazy("torch")

CALIBRATION_ROWS = 512  # training rows of the largest timed fit (fewer on a smaller pool)


CALIBRATION_EVAL_ROWS = 256  # validation and test rows each


PROBE_ROWS = 256  # a probe without epochs: 64 and 256 rows (512 took 11 s per logistic model on delicious)
PROBE_CLIP = 50.0  # a dataset's correction is kept within [1/50, 50]
#: A tuned space's grid (:func:`space_factor`) fits a tenth of the pool, within these rows: on
#: delicious C and class weights cost more the more rows there are (br's grid x1.24 at 256 rows,
#: x1.42 at 1000; ECC's trials x1.43 on 1000-3000 rows and x1.80 on all 10,982), on bibtex not.
SPACE_ROWS = (PROBE_ROWS, 1024)



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
    """A group's timed-fit set-up: its base job (evaluation rows subsampled) and training pool order."""

    base_job: Any
    order: np.ndarray
    pool_size: int
    fixed_params: dict[str, Any]
    labels: np.ndarray  # the dataset's label matrix (rows as the jobs index them)

    def fit(self, n: int, epochs: int | None = None, params: dict[str, Any] | None = None,
            peaks: list[int] | None = None, timings: list[tuple[float, float]] | None = None) -> float:
        """Seconds of one fit on the first ``n`` rows of the pool (``params`` over the fixed ones)."""
        merged = {**self.fixed_params, **(params or {})}
        if epochs is not None:
            merged["epochs"] = epochs
        job = dataclasses.replace(self.base_job, train=np.sort(self.order[:n]), params=merged, kind="cell")
        return _timed(job, peaks, timings)

    def warm_up(self, cls: type, params: dict[str, Any]) -> None:
        """A fit on a few rows, untimed: this dataset's first fit of a model pays first-call
        costs. The model's ``fit`` alone, on 16 rows: a worker's job on the probe's 64 rows
        cost 1.1 s a model on delicious, 10 s of the paper suite's cold dry run."""
        data = load_ref(self.base_job.dataset, self.base_job.data_dir)
        rows = np.sort(self.order[:16])
        _fit_seconds(cls, self.base_job, data.X[rows], data.Y[rows], params)

    def label_share(self, cls: type, shape: Shape, params: dict[str, Any], n: int) -> float:
        """A fit on the first ``n`` rows' cost units over those of one on all labels: below 1
        for a model that learns only the labels varying in its rows, when some do not."""
        if not cls.learns_varying_labels:
            return 1.0
        positives = self.labels[self.order[:n]].sum(axis=0)
        varying = int(np.count_nonzero((positives > 0) & (positives < n)))
        if varying >= shape.n_labels:
            return 1.0
        varying = max(varying, 1)  # the same positives a row, over fewer labels
        fewer = dataclasses.replace(shape, n_labels=varying,
                                    label_density=min(1.0, shape.label_density * shape.n_labels / varying))
        fitted = units(cls, fewer, params).row
        return fitted / max(units(cls, shape, params).row, 1e-12)


def _calibration(plan: RunPlan, group: GroupPlan) -> _Calibration:
    base_job = plan.job(group, "cell", plan.trial_seed, dict(group.model.params))
    device = plan.execution.device if group.model.resource == "gpu" else "cpu"
    base_job = dataclasses.replace(base_job, device=device)
    pool = base_job.train
    rng = np.random.default_rng(0)
    order = rng.permutation(pool)
    # evaluation rows subsampled too (their cost is linear in rows): the formula scales them
    val = np.sort(rng.permutation(base_job.val)[:CALIBRATION_EVAL_ROWS])
    test = np.sort(rng.permutation(base_job.test)[:CALIBRATION_EVAL_ROWS])
    base_job = dataclasses.replace(base_job, val=val, test=test)
    labels = load_ref(base_job.dataset, base_job.data_dir).Y  # parsed once per process; the fits reuse it
    return _Calibration(base_job, order, len(pool), dict(group.model.params), labels)


def calibrate_reference(plan: RunPlan, group: GroupPlan) -> Reference:
    """Time a few small fits of one model on its reference group (see the module docstring)."""
    setup = _calibration(plan, group)
    peaks: list[int] = []
    timings: list[tuple[float, float]] = []
    top = min(setup.pool_size, CALIBRATION_ROWS)

    def fit(n: int, epochs: int | None = None, params: dict[str, Any] | None = None) -> float:
        return setup.fit(n, epochs, params, peaks=peaks, timings=timings)

    cls = group.model.cls
    shape = Shape.of(group.data, 0, 0)
    if cls.trains_in_epochs and "epochs" in cls.defaults:
        reference = _epoch_reference(fit, top, len(setup.base_job.val), {**cls.defaults, **setup.fixed_params})
    else:
        reference = _fit_reference(fit, top, cls.row_exponent,
                                   lambda n: setup.label_share(cls, shape, setup.fixed_params, n))
    fixed_units = units(cls, shape, setup.fixed_params)
    return dataclasses.replace(reference, row_units=fixed_units.row, step_units=fixed_units.step,
                               eval_rows=len(setup.base_job.val) + len(setup.base_job.test),
                               peak_gpu_bytes=max(peaks, default=0),
                               parallelism=parallelism_of(timings[1:], plan.execution.cpu_threads))  # [0]: warm-up


def probe(plan: RunPlan, group: GroupPlan, reference: Reference) -> Probe:
    """Small fits of ``group`` against what the formula predicts for them: the dataset's own
    correction of the work and of the rest. Measured on bibtex, shapes alone were 0.2-28x
    off for models not trained in epochs (a solver's iterations, a forest's depth on sparse
    features, an ART network's prototypes) and 0.5-2.2x for networks (small matrices run far
    below a large layer's speed). Fits at ``Model.probe_params`` (fewer trees, chains or
    members): of a model without epochs, at 64 and 256 rows
    (``c + k * n**a``, ``n**a`` counted at the labels the rows vary); of a network, 1 and 3
    epochs (:func:`_epoch_probe`); each after a warm-up fit on the dataset."""
    setup = _calibration(plan, group)
    cls = group.model.cls
    params = _probe_settings(cls, setup)
    n = min(setup.pool_size, CALIBRATION_ROWS)
    shape = Shape.of(group.data, len(setup.base_job.val), len(setup.base_job.test))
    predicted = scaled(reference, cls, shape, params)
    # the dataset is loaded here so that no timed fit parses it (the worker keeps two per process)
    load_ref(setup.base_job.dataset, setup.base_job.data_dir)
    if predicted.epochs_trained:
        return _epoch_probe(setup, n, params, predicted)
    n = min(n, PROBE_ROWS)
    small = max(8, n // 4)
    setup.warm_up(cls, params)
    t_small, t_all = setup.fit(small, params=params), setup.fit(n, params=params)
    a = predicted.exponent
    grown_small = small ** a * setup.label_share(cls, shape, params, small)
    grown = n ** a * setup.label_share(cls, shape, params, n)
    k = max(t_all - t_small, 0.0) / max(grown - grown_small, 1e-9)
    c = max(t_all - k * grown, 0.0)
    if k * grown < 0.5 * t_all:  # a slope lost in the noise of fits this small: one ratio for all of it
        whole = _ratio(t_all, predicted.fixed + predicted.per_row * grown)
        return Probe(work=whole, fixed=whole)
    return Probe(work=_ratio(k, predicted.per_row), fixed=_ratio(c, predicted.fixed))


def _probe_settings(cls: type, setup: _Calibration) -> dict[str, Any]:
    """A probe's settings: the group's fixed ones with ``Model.probe_params`` over them."""
    return {**setup.fixed_params, **cls.probe_params({**cls.defaults, **setup.fixed_params})}


def _epoch_probe(setup: _Calibration, n: int, params: dict[str, Any], predicted) -> Probe:
    """A network's probe: fits of 1 and 3 epochs, or 9 when two epochs' work is lost in the
    fits' noise. On delicious mlp's 512-row epoch is ~2% of a fit that predicts and scores
    983 labels, and its first fit there paid 0.8 s of first calls against 0.05 s for the next:
    the 3-epoch fit came out shorter than the 1-epoch one, the work correction hit its 1/50
    clip, and the paper suite's mlp on delicious was priced at 0.04 CPU-h instead of ~1.3."""
    setup.fit(max(8, n // 8), 1, params)  # warm-up: this dataset's first fit pays first-call costs
    one, epochs = setup.fit(n, 1, params), 3
    more = setup.fit(n, epochs, params)
    if more - one < 0.2 * one:  # cheap by that very test: 6 more epochs cost < 0.6 of one fit
        epochs = 9
        more = setup.fit(n, epochs, params)
    per_epoch = (more - one) / (epochs - 1)
    if per_epoch <= 0.01 * one:  # still lost: one ratio for all of it
        whole = _ratio(more, predicted.seconds(n, epochs))
        return Probe(work=whole, fixed=whole)
    return Probe(work=_ratio(per_epoch, predicted.seconds(n, 2) - predicted.seconds(n, 1)),
                 fixed=_ratio(one - per_epoch, predicted.fixed))


def space_factor(plan: RunPlan, group: GroupPlan, grid: list[dict[str, Any]]) -> SpaceFactor:
    """The group's mean fit time over ``grid`` (points of its cost-blind hyperparameters,
    ``formula.blind_grid``) over its time at the fixed settings, on :func:`space_rows` rows.

    The fits are the model's ``fit`` alone (:func:`_fit_seconds`), without a worker's
    prediction and scoring of the evaluation rows, which do not depend on the penalty and
    pulled the ratio towards 1 (br at 256 rows, quiet: bibtex 0.87-0.89 and delicious
    1.22-1.26 this way, 0.88-0.90 and 1.15-1.18 through the worker; a CI machine's worker
    fits 0.97 and 1.11). At 414 and 1024 rows: bibtex 0.81-0.88, delicious 1.38-1.43.
    """
    setup = _calibration(plan, group)
    cls = group.model.cls
    params = {**cls.defaults, **_probe_settings(cls, setup)}  # defaults: a grid point may equal them
    n = space_rows(setup.pool_size)
    data = load_ref(setup.base_job.dataset, setup.base_job.data_dir)
    rows = np.sort(setup.order[:n])

    def fit(point: dict[str, Any]) -> float:
        return _fit_seconds(cls, setup.base_job, data.X[rows], data.Y[rows], {**params, **point})

    setup.warm_up(cls, params)
    fixed = fit({})
    times = [fixed if all(params.get(k) == v for k, v in point.items()) else fit(point) for point in grid]
    return SpaceFactor(_ratio(sum(times) / len(times), fixed))


def space_rows(pool_size: int) -> int:
    """Rows of a tuned space's grid fits: a tenth of the pool within ``SPACE_ROWS``."""
    low, high = SPACE_ROWS
    return min(pool_size, max(low, min(high, pool_size // 10)))


def _fit_seconds(cls: type, job, X, Y, params: dict[str, Any]) -> float:
    """CPU seconds of one ``fit`` of ``cls`` in this process, with the job's seed and threads."""
    model = new_model(dataclasses.replace(job, params=params), cls)
    started = time.process_time()
    model.fit(X, Y)
    return time.process_time() - started


def _ratio(measured: float, predicted: float) -> float:
    return float(np.clip(max(measured, 1e-6) / max(predicted, 1e-9), 1 / PROBE_CLIP, PROBE_CLIP))


def _epoch_reference(fit, top: int, n_val: int, params: dict[str, Any]) -> Reference:
    """Epochs' cost from fits of 1 and 2 epochs at two batch sizes: the per-epoch difference
    separates the work per row from the overhead per optimiser step (a quarter of the batch
    takes four times the steps for the same rows)."""
    batch = max(1, int(params.get("batch_size") or 1))
    small_batch = max(8, batch // 4)
    fit(max(8, top // 2), 1)  # warm-up: imports, caches, first-call overheads
    one, two = fit(top, 1), fit(top, 2)
    per_epoch = max(two - one, 1e-4)
    per_step = 0.0
    if "batch_size" in params and small_batch < batch:
        small = {"batch_size": small_batch}
        per_epoch_small = max(fit(top, 2, small) - fit(top, 1, small), 1e-4)
        extra_steps = top / small_batch - top / batch
        per_step = max((per_epoch_small - per_epoch) / extra_steps, 0.0)
    row_seconds = max(per_epoch - per_step * top / batch, 0.1 * per_epoch)
    per_row = row_seconds / (top + VALIDATION_SHARE * n_val)
    return Reference(fixed=max(one - per_epoch, 0.0), per_row=per_row, per_step=per_step, epochs_trained=True)


def _fit_reference(fit, top: int, exponent: float, label_share=lambda n: 1.0) -> Reference:
    """One fit at each of three sizes, fitted as ``c + k * n**a`` with the model's ``a``
    (``Model.row_exponent``) by least squares, ``c`` at least 0; ``label_share(n)`` counts a
    fit on ``n`` rows at the labels they vary (``_Calibration.label_share``)."""
    sizes = np.array(sorted({max(8, top // 4), max(8, top // 2), top}), dtype=float)
    fit(int(sizes[0]))  # warm-up
    times = np.array([fit(int(n)) for n in sizes])
    grown = sizes ** exponent * np.array([label_share(int(n)) for n in sizes])
    if len(sizes) > 1:
        k, c = np.polyfit(grown, times, 1)
    else:
        k, c = times[0] / grown[0], 0.0
    if c < 0 or k <= 0:  # a slope lost in noise: all of it work, as the model's exponent says
        # (all of it fixed, as before, priced rf at a constant 0.2 s on every dataset from three
        # noisy fits on emotions, and yeast's 2-5 s fits at 0.35 s)
        c, k = 0.0, float(times[-1] / grown[-1])
    return Reference(fixed=float(c), per_row=float(max(k, 1e-12)), exponent=exponent)
