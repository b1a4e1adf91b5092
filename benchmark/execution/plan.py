"""The run plan: a suite and the command line, decided once, as frozen data.

:func:`build_plan` resolves everything a run needs to know before it starts: each
dataset's data plan (fingerprint, split, subsets), each model's plan on each dataset
(fixed params, tuned space, trial budget, epochs, resource, identity), the groups of
cells, the threshold grids and the pruner. The runner, the dry run, the cost estimate
and the progress display all read this one object; none of them derives a setting again.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from benchmark.data.dataplan import DataPlan
from benchmark.data.refs import DatasetRef
from benchmark.data.settings import cache_dir
from benchmark.errors import BenchmarkError
from benchmark.evaluation.thresholds import ORACLE_GRID
from benchmark.execution.halving import Halving, applies
from benchmark.execution.resources import ExecutionPlan
from benchmark.execution.suite import ModelConfig, Suite
from benchmark.execution.worker import Job, Pruning
from benchmark.store.identity import config_hash, group_settings, study_hash
from benchmark.store.tables import CellKey, cell_key

#: what ``protocol = "reference"`` fixes in every model that declares it (the authors' code)
REFERENCE_MODEL_PARAMS = {"standardize": False, "epoch_selection": "reference"}
#: share of the machine's memory the planner lets the jobs running at once use
MEMORY_SHARE = 0.8


class PlanError(BenchmarkError):
    """The plan asks for something this machine cannot do (a fit that would not fit in memory)."""


@dataclass(frozen=True)
class ModelPlan:
    """What one model column computes on one dataset: its fixed params, space and identity."""

    name: str  # as stored and reported (a variant's own name)
    base: str  # the registered model whose code runs
    resource: str  # vocabulary.Resource: the pool its jobs go to
    params: dict[str, Any]
    space: dict[str, Any]  # empty when not tuned
    trials: int  # the study's budget; 0 = no study (fixed params)
    epochs: int | None  # epochs a fit trains: the fixed value, or the middle of a tuned range
    max_epochs: int | None  # the most a fit may train (the pruner's horizon)
    pruning: Pruning | None  # the pruner trials report to (None: not tuned)
    settings: dict[str, Any]
    config: str
    study: str
    cls: type = dataclasses.field(compare=False, repr=False)  # the registered model class, resolved once
    halving: Halving | None = None  # successive halving over training rows of its trials (None: all rows)

    @property
    def tuned(self) -> bool:
        return self.trials > 0


@dataclass(frozen=True)
class GroupPlan:
    """The cells of one (dataset, model, fraction): tuned together, then one fit per seed."""

    data: DataPlan
    model: ModelPlan
    fraction: float
    seeds: tuple[int, ...]
    keys: dict[int, CellKey] = dataclasses.field(init=False, compare=False, repr=False)  # seed -> its cell

    def __post_init__(self) -> None:
        """The cells' keys, made once: the estimate, the runner and the groups only read them."""
        keys = {seed: cell_key(self.dataset, self.model.name, self.fraction, seed, self.model.config)
                for seed in self.seeds}
        object.__setattr__(self, "keys", keys)

    @property
    def dataset(self) -> str:
        return self.data.entry.name

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.model.name}/{self.fraction:g}"

    @property
    def claim_key(self) -> str:
        return f"group|{self.dataset}|{self.model.name}|{self.fraction:g}|{self.model.config}"

    @property
    def study_name(self) -> str:
        return f"mlcbench|{self.dataset}|{self.model.name}|fraction={self.fraction:g}|{self.model.study}"


@dataclass(frozen=True)
class RunPlan:
    """Everything one run computes, and how; built once by :func:`build_plan`."""

    suite: Suite  # its name, hash and notices are recorded; nothing is re-derived from it
    execution: ExecutionPlan
    datasets: tuple[DataPlan, ...]  # one per dataset, shared by its groups
    groups: tuple[GroupPlan, ...]
    trial_seed: int  # trials train with this fixed model seed (the split seed)
    val_grid: tuple[float, ...]
    oracle_grid: tuple[float, ...]
    selection_grid: tuple[float, ...]  # the thresholds epoch selection scores checkpoints on
    objective: str
    budget_seconds: float | None

    def cells(self) -> list[CellKey]:
        return [key for group in self.groups for key in group.keys.values()]

    def with_execution(self, execution: ExecutionPlan) -> "RunPlan":
        return dataclasses.replace(self, execution=execution)

    def job(self, group: GroupPlan, kind: str, seed: int, params: dict[str, Any], history: tuple = ()) -> Job:
        """The worker's job for one fit of ``group`` (a tuning trial or a seed's cell)."""
        parts = group.data.drawn[(group.fraction, seed)]
        return Job(kind=kind, dataset=group.data.entry, model=group.model.base, params=params, seed=seed,
                   train=parts.train, val=parts.val, test=parts.test, val_grid=self.val_grid,
                   oracle_grid=self.oracle_grid, objective=self.objective,
                   pruning=group.model.pruning if kind == "trial" else None, history=history, label=group.label,
                   halving=group.model.halving if kind == "trial" else None,
                   selection_grid=self.selection_grid, data_dir=self.execution.data_dir)


def build_plan(suite: Suite, execution: ExecutionPlan) -> RunPlan:
    """Resolve a loaded suite on one execution plan into the run's frozen plan."""
    reference = suite.protocol == "reference"
    datasets, groups = [], []
    for entry in suite.datasets:
        data = _data_plan(suite, entry, execution.data_dir)
        datasets.append(data)
        for config in suite.models:
            model = _model_plan(suite, execution, data, config)
            groups += [GroupPlan(data, model, fraction, tuple(suite.seeds)) for fraction in suite.fractions]
    return RunPlan(suite=suite, execution=execution, datasets=tuple(datasets), groups=tuple(groups), trial_seed=suite.split_seed,
                   val_grid=suite.val_thresholds, oracle_grid=suite.oracle_thresholds,
                   selection_grid=tuple(float(t) for t in ORACLE_GRID) if reference else suite.val_thresholds,
                   objective=suite.objective, budget_seconds=suite.budget_seconds)


def _data_plan(suite: Suite, entry: DatasetRef, data_dir: str | None) -> DataPlan:
    draws = [(fraction, seed) for fraction in suite.fractions for seed in {*suite.seeds, suite.split_seed}]
    return DataPlan.open(entry, data_dir, suite.split_seed, suite.val_size, suite.resample,
                         suite.protocol == "reference", cache_dir() / "splits", draws)


def _model_plan(suite: Suite, execution: ExecutionPlan, data: DataPlan, config: ModelConfig) -> ModelPlan:
    """One model column on one dataset; refused here when a fit would not fit in memory."""
    cls = config.cls
    params, space = _params_and_space(suite, cls, data.entry.name, config)
    trials = suite.trials if not config.fixed and suite.trials > 0 and space else 0
    epochs, max_epochs = (_steps(cls, params, space, tuned=bool(trials)) if cls.grows_in_steps
                          else _epochs(cls, params, space, tuned=bool(trials)))
    space = space if trials else {}
    warmup = suite.pruner_warmup_epochs if cls.pruner_warmup is None else cls.pruner_warmup
    pruning = Pruning(suite.pruner, suite.pruner_startup_trials, warmup, max_epochs) if trials else None
    resource = execution.resource_for(cls)
    threads = execution.cpu_threads if resource == "cpu" else execution.gpu_threads
    halving = _halving(suite, config) if trials else None
    _refuse_what_will_not_fit(config.name, cls, resource, params, space, data, execution)
    if halving is not None:  # only where the full training pool allows more than one rung
        halving = halving if applies(data.facts.n_rows, halving) else None
    halving_settings = halving.settings() if halving else None
    settings = group_settings(suite, data.entry.name, data.fingerprint, config.name, config.base, params,
                              space, trials, max_epochs, pruner_warmup=warmup, threads=threads,
                              revision=cls.revision, halving=halving_settings)
    return ModelPlan(config.name, config.base, resource, params, space, trials, epochs,
                     max_epochs, pruning, settings, config_hash(settings), study_hash(settings), cls, halving)


def _halving(suite: Suite, config: ModelConfig) -> Halving | None:
    """The model's halving setting: its own table's over the suite's (``false`` there: off).
    The plan keeps it only where the full training pool allows more than one rung (a
    smaller fraction may still get one rung: its trials then train on all its rows)."""
    return (suite.halving if config.halving is None else config.halving) or None


def machine_memory_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _refuse_what_will_not_fit(name: str, cls, resource: str, fixed: dict[str, Any], space: dict[str, Any],
                              data: DataPlan, execution: ExecutionPlan) -> None:
    """One line, before anything runs, when a fit of this model (at the most memory its space
    can ask for) would not fit beside the other jobs running at once."""
    if cls.peak_bytes(1, 1, 1, dict(cls.defaults)) is None:
        return  # not modelled: nothing to check (and no dataset to load)
    n_rows, n_features, n_labels = data.facts.n_rows, data.facts.n_features, data.facts.n_labels
    params = {**cls.defaults, **fixed}
    for setting, dist in space.items():  # the most memory each tuned setting can ask for
        values = list(getattr(dist, "choices", ())) or [dist.low, dist.high]
        params[setting] = max(values, key=lambda v: cls.peak_bytes(n_rows, n_features, n_labels,
                                                                   {**params, setting: v}))
    peak = cls.peak_bytes(n_rows, n_features, n_labels, params)
    slots = execution.cpu_workers if resource == "cpu" else 1
    budget = MEMORY_SHARE * machine_memory_bytes() / max(1, slots)
    if peak > budget:
        worst = ", ".join(f"{k} = {params[k]!r}" for k in sorted(space) or sorted(fixed))
        raise PlanError(f"{name} on {data.entry.name}: a fit needs about {peak / 2**30:.1f} GiB "
                        f"({worst or 'its defaults'}), more than the {budget / 2**30:.1f} GiB one of "
                        f"{slots} job(s) may use here; narrow its space or use fewer workers")


def _params_and_space(suite: Suite, cls, dataset: str, config: ModelConfig) -> tuple[dict, dict]:
    """The fixed params (reference settings, suite epochs, protocol, the suite's table) and
    the space searched over the rest (only ``tune`` where the suite lists it)."""
    params: dict[str, Any] = {}
    if config.reference:
        params.update(cls.reference_params(dataset) or {})
    if suite.epochs is not None and "epochs" in cls.defaults:
        params["epochs"] = suite.epochs
    if suite.protocol == "reference":
        params.update({k: v for k, v in REFERENCE_MODEL_PARAMS.items() if k in cls.defaults})
    own = config.datasets.get(dataset)  # that dataset's table over the model's
    params.update(config.params)
    tune = config.tune
    if own is not None:
        params.update(own.params)
        tune = own.tune if own.tune is not None else tune
    if tune is not None:  # only these are searched; everything else stays fixed
        space = {k: cls.search_space[k] for k in tune}
        return {k: v for k, v in params.items() if k not in space}, space
    return params, {k: d for k, d in cls.search_space.items() if k not in params}


def _steps(cls, params: dict[str, Any], space: dict[str, Any], tuned: bool) -> tuple[int | None, int | None]:
    """For a model that grows in steps: (steps a fit is expected to report, the most it may);
    None where the model cannot say before the fit. The expected count is at the middle of
    each tuned numeric range; the most, at the largest value of each tuned setting."""
    fixed = {**cls.defaults, **params}
    if cls.steps(fixed) is None:
        return None, None
    middle, most = dict(fixed), cls.steps(fixed)
    for name, dist in (space.items() if tuned else ()):
        values = list(getattr(dist, "choices", ())) or [dist.low, dist.high]
        most = max(most, *(cls.steps({**fixed, name: v}) for v in values))
        if not hasattr(dist, "choices"):
            middle[name] = type(dist.low)(round((dist.low + dist.high) / 2))
    return cls.steps(middle), most


def _epochs(cls, params: dict[str, Any], space: dict[str, Any], tuned: bool) -> tuple[int | None, int | None]:
    """(epochs a fit is expected to train, the most it may train); None without epochs.

    The only place epochs are derived: a fixed value (params, else the model's default), or
    over a tuned range its middle (expected). The most is the top of the model's range
    whether or not the plan tunes it (it is part of the cell's identity as it always was).
    """
    fixed = int(params.get("epochs", cls.defaults.get("epochs", 0)) or 0) or None
    ranged = space.get("epochs")
    most = (int(getattr(ranged, "high", fixed or 0)) or fixed) if ranged is not None else fixed
    if tuned and ranged is not None and hasattr(ranged, "low"):
        return int(round((ranged.low + ranged.high) / 2)), most
    return fixed, most
