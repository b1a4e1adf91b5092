"""Hyperparameter tuning: Optuna studies owned by the driver, pruning decided by workers.

One study per (dataset, model, fraction), stored in the results store's database
(Optuna's RDB storage on the same SQLAlchemy URL), so an interrupted study resumes
where it stopped and can be inspected with Optuna's own tools.

*Sampler*: TPE seeded by the split seed; its first 10 trials are random (Optuna's
default). Those do not depend on earlier results, so parallel trials (several
workers, Ray) sample exactly what a sequential run samples.

*Objective*: the validation macro-F1 at its best threshold over the ``val`` grid
(0.05..0.95), computed on the validation set (a fixed share of the training file,
never subsampled by the fraction). TPE (seeded by the split seed) maximises it.

*Budget*: the suite's ``trials`` is the same for every model. A trial counts when it
finished COMPLETE or PRUNED; a trial that raised (FAIL) or was cut off by a killed run
does not count, but a run stops asking once it has seen ``trials`` failures, so a
broken model cannot loop. A model with an empty search space (or a ``[model.X]``
table with ``trials = 0``) has no study: it runs its defaults (or the fixed params).

*Pruning* (ask/tell): the driver asks the stored study for a trial and sends the
worker the sampled params plus the study's finished trials as plain dicts. The worker
rebuilds an in-memory study with the same pruner, adds those trials, and reports each
epoch's validation score into a fresh trial there; when the pruner says so, the
``on_epoch`` callback raises ``optuna.TrialPruned``. The worker returns the
intermediate values and the final state; the driver writes them into the stored
trial (``report`` then ``tell``). The pruner sees the same history it would see in
a sequential study, without workers touching the database.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import TrialState

COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
TPE_STARTUP_TRIALS = 10  # Optuna's default: random search first, then TPE


class PruningConfig(dict):
    """``{"pruner": "median"|"hyperband"|"none", "startup": int, "warmup": int, "max_epochs": int}``."""


def make_pruner(config: dict[str, Any]) -> optuna.pruners.BasePruner:
    kind = config.get("pruner", "median")
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(config.get("startup", 3)), n_warmup_steps=int(config.get("warmup", 2))
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=int(config.get("max_epochs") or 100))
    return optuna.pruners.NopPruner()


def study_name(dataset: str, model: str, fraction: float, split_seed: int, val_size: float, epochs) -> str:
    """Studies are keyed by what changes the objective, not by the trial budget.

    Raising ``trials`` therefore resumes the same study and adds only the new trials.
    """
    return f"mlcbench|{dataset}|{model}|fraction={fraction:g}|split={split_seed}|val={val_size:g}|epochs={epochs}"


def storage_for(url: str) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def trial_to_dict(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A finished trial as plain data (what a worker needs to rebuild the history)."""
    return {
        "params": dict(trial.params),
        "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
        "value": trial.value,
        "intermediate": {int(k): float(v) for k, v in trial.intermediate_values.items()},
        "state": trial.state.name,
    }


def trial_from_dict(data: dict[str, Any]) -> optuna.trial.FrozenTrial:
    state = TrialState[data["state"]]
    return optuna.trial.create_trial(
        params=data["params"],
        distributions={k: json_to_distribution(v) for k, v in data["distributions"].items()},
        value=data["value"] if state == TrialState.COMPLETE else None,
        intermediate_values={int(k): v for k, v in data["intermediate"].items()},
        state=state,
    )


class EpochPruner:
    """Worker side: an ``on_epoch`` callback that reports into an in-memory study.

    Records every reported score (the driver copies them into the stored trial) and
    raises ``optuna.TrialPruned`` when the pruner, given the study's finished trials,
    says this trial is hopeless.
    """

    def __init__(self, config: dict[str, Any], finished: list[dict[str, Any]]):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="maximize", pruner=make_pruner(config))
        trials = [trial_from_dict(t) for t in finished]
        if trials:
            self.study.add_trials(trials)
        self.trial = self.study.ask()
        self.intermediate: dict[int, float] = {}

    def __call__(self, epoch: int, score: float) -> None:
        score = float(score) if score is not None and math.isfinite(score) else 0.0
        self.intermediate[int(epoch)] = score
        self.trial.report(score, int(epoch))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")


class StudyDriver:
    """Driver side: the stored study of one (dataset, model, fraction)."""

    def __init__(self, url: str, name: str, search_space: dict[str, Any], budget: int, seed: int,
                 storage: optuna.storages.RDBStorage | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.search_space = search_space
        self.budget = int(budget)
        self.study = optuna.create_study(
            study_name=name,
            storage=storage or storage_for(url),
            direction="maximize",
            load_if_exists=True,
        )
        # Seeded by the split seed and the trials already there: a resumed study must not
        # replay the random configurations its first session already tried.
        existing = len(self.study.get_trials(deepcopy=False))
        self.study.sampler = optuna.samplers.TPESampler(
            seed=seed * 100_003 + existing, n_startup_trials=TPE_STARTUP_TRIALS
        )
        self.in_flight: dict[int, optuna.trial.Trial] = {}
        self.failures = 0
        self._abandon_stale_trials()

    def _abandon_stale_trials(self) -> None:
        """Trials left RUNNING by a killed run are marked FAIL (they do not count)."""
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study.tell(trial.number, state=TrialState.FAIL)

    def counted(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=COUNTED_STATES))

    def finished_dicts(self) -> list[dict[str, Any]]:
        return [trial_to_dict(t) for t in self.study.get_trials(deepcopy=False, states=COUNTED_STATES)]

    def can_ask(self) -> bool:
        return self.counted() + len(self.in_flight) < self.budget and self.failures < self.budget

    def done(self) -> bool:
        return not self.in_flight and not self.can_ask()

    def ask(self) -> tuple[int, dict[str, Any]]:
        trial = self.study.ask(self.search_space)
        self.in_flight[trial.number] = trial
        return trial.number, dict(trial.params)

    def tell(self, number: int, state: str, value: float | None, intermediate: dict[int, float],
             attrs: dict[str, Any] | None = None) -> None:
        trial = self.in_flight.pop(number)
        for step, score in sorted(intermediate.items()):
            trial.report(float(score), int(step))
        for key, attr in (attrs or {}).items():
            trial.set_user_attr(key, attr)
        if state == "complete":
            self.study.tell(trial, float(value))
        elif state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.failures += 1
            self.study.tell(trial, state=TrialState.FAIL)

    def best(self) -> optuna.trial.FrozenTrial | None:
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return max(complete, key=lambda t: t.value) if complete else None

    def abandon_in_flight(self) -> None:
        for number in list(self.in_flight):
            self.study.tell(self.in_flight.pop(number), state=TrialState.FAIL)


def no_op_epoch(_epoch: int, _score: float) -> None:
    """``on_epoch`` for runs that are not tuned (final cells keep early stopping only)."""


EpochCallback = Callable[[int, float], None]
