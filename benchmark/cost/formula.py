"""The cost formula: what one fit costs, from a model's reference timing and its cost units.

Timing every (dataset, model) and every space draw took over two hours of one core on the
paper suite before a user saw an estimate. Instead each model is timed once, on its
*reference*: the plan's group of that model with the least work (the smallest dataset),
a few small fits (:func:`benchmark.cost.calibration.calibrate_reference`). Every other group
and every draw of a tuned space is that timing scaled by the model's cost units
(:meth:`benchmark.modelapi.base.Model.cost_units`: parameters of a network, trees x features
x outputs of a forest, labels x features of a linear model) and by its rows and epochs:

- training work per epoch (or per fit): ``per_row * rows**exponent`` times the ratio of row
  units; a network's optimiser steps add ``per_step * rows / batch_size`` times the ratio
  of step units; the per-epoch validation pass is a forward pass over the validation rows
  (a third of a training row's work);
- the rest: a network's set-up stays, its prediction of validation and test is a forward
  pass per row; another model's rest (set-up, prediction, thresholds and metrics) scales
  with the evaluation rows. Scaling it by the row units too (an ensemble's members each
  predict) priced the full fits of br, cc, ecc, rakeld and rakelo on bibtex and delicious
  1.3-2x high: there a fit's rest is mostly per fit, not per member
  (benchmarks/results/cost_formula.txt).

Only ratios of units matter, so a unit's constant never needs to be known.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from benchmark.lazy import lazy

optuna = lazy("optuna")

#: random draws of a tuned space whose mean cost the estimate takes (by formula, untimed)
SPACE_DRAWS = 16

#: a validation row's forward pass against a training row's forward and backward pass
VALIDATION_SHARE = 1 / 3


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


@dataclass(frozen=True)
class Reference:
    """A model's timed fits on its reference group, and the units they were timed at.

    ``per_row`` is seconds per training row**exponent (per epoch for a model trained in
    epochs), the validation pass included at ``VALIDATION_SHARE``; ``per_step`` seconds per
    optimiser step; ``fixed`` the seconds of the rest with ``eval_rows`` rows predicted.
    """

    fixed: float
    per_row: float
    exponent: float = 1.0
    per_step: float = 0.0
    epochs_trained: bool = False
    eval_rows: int = 1
    row_units: float = 1.0
    step_units: float = 0.0
    peak_gpu_bytes: int = 0
    parallelism: float = 1.0


@dataclass(frozen=True)
class Probe:
    """A dataset's correction to the formula: measured over predicted seconds of small fits,
    for the work that grows with rows and epochs and for the rest."""

    work: float = 1.0
    fixed: float = 1.0

    def apply(self, cost: FitCost) -> FitCost:
        return dataclasses.replace(cost, fixed=cost.fixed * self.fixed, per_row=cost.per_row * self.work,
                                   per_epoch_val=cost.per_epoch_val * self.work)


@dataclass(frozen=True)
class SpaceFactor:
    """A dataset's mean fit time over a tuned space's cost-blind hyperparameters
    (``Model.cost_blind_params``) over the time at the fixed settings: what the cost units
    cannot see (L-BFGS's iterations under C and class weights), measured."""

    factor: float = 1.0

    def apply(self, cost: FitCost) -> FitCost:
        return Probe(work=self.factor, fixed=self.factor).apply(cost)


@dataclass(frozen=True)
class Shape:
    """What the formula reads of a group's data: its features, labels and evaluation rows."""

    n_features: int
    n_labels: int
    n_val: int
    n_test: int
    density: float = 1.0  # share of nonzero features
    label_density: float = 1.0  # share of positive labels

    @classmethod
    def of(cls, data, n_val: int, n_test: int) -> "Shape":
        """The shape of a data plan's dataset with these evaluation rows."""
        facts = data.facts
        return cls(facts.n_features, facts.n_labels, n_val, n_test, facts.density, facts.label_density)


def units(model_cls: type, shape: Shape, params: dict[str, Any]):
    """``model_cls``'s cost units on ``shape`` with ``params`` over its defaults."""
    return model_cls.cost_units(shape.n_features, shape.n_labels, {**model_cls.defaults, **params}, shape.density,
                                shape.label_density)


def scaled(reference: Reference, cls: type, shape: Shape, params: dict[str, Any]) -> FitCost:
    """The cost of one fit of ``cls`` with ``params`` on data of ``shape``: the reference
    scaled by the ratio of cost units (see the module docstring)."""
    merged = {**cls.defaults, **params}
    fit_units = units(cls, shape, params)
    rows = fit_units.row / max(reference.row_units, 1e-12)
    eval_rows = shape.n_val + shape.n_test
    if not reference.epochs_trained:  # the rest: set-up and prediction, per evaluation row
        return FitCost(reference.fixed * eval_rows / max(reference.eval_rows, 1), reference.per_row * rows,
                       reference.exponent, peak_gpu_bytes=reference.peak_gpu_bytes, parallelism=reference.parallelism)
    # a network's rest: a constant set-up and a forward pass over the evaluation rows
    predicting = reference.per_row * VALIDATION_SHARE
    setup = max(reference.fixed - predicting * reference.eval_rows, 0.0)
    fixed = setup + predicting * rows * eval_rows
    steps = fit_units.step / reference.step_units if reference.step_units > 0 else 1.0
    batch = max(1, int(merged.get("batch_size") or 1))
    per_row = reference.per_row * rows + reference.per_step * steps / batch
    per_epoch_val = reference.per_row * rows * VALIDATION_SHARE * shape.n_val
    peak = int(reference.peak_gpu_bytes * max(1.0, steps))  # weights, gradients and moments grow with the parameters
    return FitCost(fixed, per_row, 1.0, per_epoch_val, True, peak, reference.parallelism)


def mean_cost(costs: list[FitCost]) -> FitCost:
    """The mean fit of several (space draws): the formula is linear in its coefficients."""
    first = costs[0]
    mean = {name: sum(getattr(c, name) for c in costs) / len(costs) for name in ("fixed", "per_row", "per_epoch_val")}
    return dataclasses.replace(first, **mean, peak_gpu_bytes=max(c.peak_gpu_bytes for c in costs))


def space_draws(space: dict[str, Any], n: int = SPACE_DRAWS) -> list[dict[str, Any]]:
    """``n`` reproducible uniform draws from ``space`` (Optuna's random sampler, seed 0)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [dict(study.ask(space).params) for _ in range(n)]


def blind_grid(space: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Points that span a tuned space's cost-blind hyperparameters ``names`` (those of
    ``space``), the product of each one's points: a numeric range its two quartile midpoints
    (in log scale for a log range), a categorical one every choice. C log-uniform on
    [1e-2, 1e2] and class weights {None, balanced} give C = 0.1 and 10 with both weights:
    their mean time was within 10% of the mean over the range on bibtex and delicious
    (regularisation_cost.txt), where four random draws of it could be off 1.5x."""
    axes = []
    for name in sorted(n for n in names if n in space):
        axes.append([(name, value) for value in _points(space[name])])
    grid: list[dict[str, Any]] = [{}]
    for axis in axes:
        grid = [{**point, name: value} for point in grid for name, value in axis]
    return grid if axes else []


def _points(distribution) -> list[Any]:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return list(distribution.choices)
    low, high = float(distribution.low), float(distribution.high)
    if getattr(distribution, "log", False):
        points = [low * (high / low) ** q for q in (0.25, 0.75)]
    else:
        points = [low + (high - low) * q for q in (0.25, 0.75)]
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return sorted({int(round(p)) for p in points})
    return [float(f"{p:.6g}") for p in points]
