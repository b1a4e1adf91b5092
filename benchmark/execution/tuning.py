"""Hyperparameter tuning: Optuna studies owned by the driver, pruning decided by workers.

One study per (dataset, model, fraction) and configuration, stored in the results
store's database (Optuna's RDB storage on the same SQLAlchemy URL), so an interrupted
study resumes where it stopped and can be inspected with Optuna's own tools.

*Deterministic trials.* Trial ``k`` of a study (its *index*, kept as the user attribute
``mlcbench_index``) gets parameters that are a pure function of (the study's seed,
``k``, and the results of trials ``0 .. k-1-LAG``): the driver samples them in a
throw-away in-memory study (TPE seeded by ``seed`` and ``k``, given exactly those
trials) and enqueues them into the stored study. It asks trial ``k`` only once trials
``0 .. k-1-LAG`` have finished, so up to ``LAG + 1`` trials of one study run in parallel,
and the pruner of trial ``k`` sees the same trials. Hence the sequence of trials does
not depend on the number of workers, on timing, or on where a run was killed: a trial
cut off by a crash (left RUNNING) is marked FAIL with ``mlcbench_interrupted`` and its
index is asked again, with the same parameters, by the next run.

*Budget*: the suite's ``trials``, the same for every model: indices ``0 .. trials-1``.
An index is used up when its trial finished COMPLETE, PRUNED, or FAIL because the model
raised (a broken model cannot loop). A model with an empty search space (or a fixed
``[model.X]`` table) has no study: it runs its defaults (or the fixed params).

*Objective*: see :func:`benchmark.execution.worker.objective_value` (validation data only).

*Pruning* (ask/tell): the worker rebuilds an in-memory study with the same pruner and
the trial history it was sent, reports each epoch's validation score into a fresh trial
there, and raises ``optuna.TrialPruned`` when the pruner says so. The driver copies the
intermediate values into the stored trial. Hyperband's maximum resource is the model's
real epoch budget. A study with successive halving over training rows
(:mod:`benchmark.execution.halving`) reports rungs instead of epochs: its steps are rung
indices, decided by the same history, and per-epoch pruning is off there.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from benchmark.lazy import lazy
from benchmark.store.results import schema_lock

optuna = lazy("optuna")

TPE_STARTUP_TRIALS = 10  # Optuna's default: random search first, then TPE
LAG = 4  # trial k is conditioned on trials 0..k-1-LAG; up to LAG+1 trials of a study in flight
INDEX_ATTR = "mlcbench_index"
INTERRUPTED_ATTR = "mlcbench_interrupted"


def make_pruner(pruning) -> optuna.pruners.BasePruner:
    if pruning.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(pruning.startup), n_warmup_steps=int(pruning.warmup))
    if pruning.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=int(pruning.max_epochs or 100))
    return optuna.pruners.NopPruner()


def storage_for(url: str) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    engine = sa.create_engine(url)  # a server: runs opening a new database together race for optuna's tables
    try:
        with schema_lock(engine):
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    finally:
        engine.dispose()


def trial_to_dict(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A finished trial as plain data (what a worker or the sampler needs)."""
    return {
        "params": dict(trial.params),
        "distributions": {k: optuna.distributions.distribution_to_json(d) for k, d in trial.distributions.items()},
        "value": trial.value,
        "intermediate": {int(k): float(v) for k, v in trial.intermediate_values.items()},
        "state": trial.state.name,
    }


def trial_from_dict(data: dict[str, Any]) -> optuna.trial.FrozenTrial:
    state = optuna.trial.TrialState[data["state"]]
    return optuna.trial.create_trial(
        params=data["params"],
        distributions={k: optuna.distributions.json_to_distribution(v) for k, v in data["distributions"].items()},
        value=data["value"] if state == optuna.trial.TrialState.COMPLETE else None,
        intermediate_values={int(k): v for k, v in data["intermediate"].items()},
        state=state,
    )


def sample_params(search_space: dict[str, Any], history: list[dict[str, Any]], seed: int, index: int) -> dict:
    """Parameters of trial ``index``: TPE seeded by (seed, index), given ``history`` only."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=(seed * 100_003 + index) % (2**31 - 1),
                                         n_startup_trials=TPE_STARTUP_TRIALS)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trials = [trial_from_dict(t) for t in history]
    if trials:
        study.add_trials(trials)
    return dict(study.ask(search_space).params)


class EpochPruner:
    """Worker side: an ``on_epoch`` callback that reports into an in-memory study.

    Records every reported score (the driver copies them into the stored trial) and
    raises ``optuna.TrialPruned`` when the pruner, given the trials it was sent, says
    this trial is hopeless.
    """

    def __init__(self, pruning, finished: list[dict[str, Any]]):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="maximize", pruner=make_pruner(pruning))
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
    """Driver side: the stored study of one group, asked and told deterministically."""

    def __init__(self, url: str, name: str, search_space: dict[str, Any], budget: int, seed: int,
                 storage: optuna.storages.RDBStorage | None = None):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.search_space = search_space
        self.budget = int(budget)
        self.seed = int(seed)
        self.study = optuna.create_study(study_name=name, storage=storage or storage_for(url),
                                         direction="maximize", load_if_exists=True)
        self.in_flight: dict[int, optuna.trial.Trial] = {}  # index -> trial
        self._abandon_stale_trials()

    def _abandon_stale_trials(self) -> None:
        """Trials left RUNNING (or WAITING) by a killed run: FAIL, index free to be asked again."""
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)):
            if trial.state == optuna.trial.TrialState.WAITING:
                trial = self.study.ask()  # pop the enqueued trial so it can be closed
            optuna.trial.Trial(self.study, trial._trial_id).set_user_attr(INTERRUPTED_ATTR, True)
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)

    def _finished(self) -> dict[int, optuna.trial.FrozenTrial]:
        """Used-up indices and their trials (the latest trial of an index wins)."""
        used = {}
        for trial in self.study.get_trials(deepcopy=False):
            index = trial.user_attrs.get(INDEX_ATTR)
            if index is None or trial.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
                continue
            if trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR):
                continue
            used[int(index)] = trial
        return used

    def _next_index(self, finished: dict) -> int | None:
        for index in range(self.budget):
            if index not in finished and index not in self.in_flight:
                return index
        return None

    def history(self, index: int, finished: dict | None = None) -> list[dict[str, Any]]:
        """Trials ``0 .. index-1-LAG`` that count for the sampler and the pruner."""
        finished = self._finished() if finished is None else finished
        visible = [finished[i] for i in sorted(finished) if i < index - LAG]
        return [trial_to_dict(t) for t in visible if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]

    def stop_asking(self) -> None:
        """No further trial: the group fails (its cells are retried by the next run)."""
        self.budget = 0

    def can_ask(self) -> bool:
        finished = self._finished()
        index = self._next_index(finished)
        return index is not None and all(i in finished for i in range(index - LAG))

    def counted(self) -> int:
        finished = self._finished()
        return sum(1 for i in range(self.budget) if i in finished)

    def ask(self) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
        """The next trial: (index, params, the history its pruner may see)."""
        finished = self._finished()
        index = self._next_index(finished)
        assert index is not None, "ask() without can_ask()"
        history = self.history(index, finished)
        params = sample_params(self.search_space, history, self.seed, index)
        self.study.enqueue_trial(params, user_attrs={INDEX_ATTR: index}, skip_if_exists=False)
        trial = self.study.ask(self.search_space)
        self.in_flight[index] = trial
        return index, dict(trial.params), history

    def tell(self, index: int, state: str, value: float | None, intermediate: dict[int, float],
             attrs: dict[str, Any] | None = None) -> None:
        trial = self.in_flight.pop(index)
        for step, score in sorted(intermediate.items()):
            trial.report(float(score), int(step))
        for key, attr in (attrs or {}).items():
            trial.set_user_attr(key, attr)
        if state == "complete":
            self.study.tell(trial, float(value))
        elif state == "pruned":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def best(self) -> optuna.trial.FrozenTrial | None:
        """The best complete trial within the budget (ties: the lowest index)."""
        finished = self._finished()
        complete = [finished[i] for i in sorted(finished) if i < self.budget and finished[i].state == optuna.trial.TrialState.COMPLETE]
        return max(complete, key=lambda t: t.value) if complete else None

    def abandon(self, index: int) -> None:
        """Close a trial whose result was lost (its worker died, the run was interrupted): it
        does not count, and its index is asked again with the same parameters."""
        trial = self.in_flight.pop(index)
        trial.set_user_attr(INTERRUPTED_ATTR, True)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def abandon_in_flight(self) -> None:
        for index in list(self.in_flight):
            self.abandon(index)
