"""The driver: expand a suite into groups of cells, tune, train, evaluate, record.

A *cell* is (dataset, model, fraction, seed) under one configuration (its identity hash,
see :mod:`benchmark.store.identity`). Cells sharing (dataset, model, fraction) form a
:class:`Group`: its Optuna study (:mod:`benchmark.execution.tuning`) runs first, then the best
configuration is trained and evaluated once per seed. A group is a small state machine:

    CLAIMING -> TUNING -> SEEDING -> DONE
        \\-> SKIPPED (another live run holds it)

with :meth:`Group.next_job` (the next job to submit, or None) and
:meth:`Group.on_result`. The :class:`Runner` owns the store, the claims and the
executor; workers (:mod:`benchmark.execution.worker`) only compute.

Every trial trains with model seed = the split seed (fixed, so trials stay comparable)
and is evaluated on the test set too; the cell (best configuration, that seed) then
reuses the best trial's result instead of training the same model again. The test
scores of the other trials are never looked at, so no test data leaks into the choice
of hyperparameters.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from benchmark.store import provenance
from benchmark.data.dataplan import DataPlan, dataset_fingerprint
from benchmark.store.identity import config_hash, group_settings, study_hash
from benchmark.execution.worker import Job, JobResult, Pruning
from benchmark.store.results import CellKey, ResultsStore, cell_key, now_iso

EXIT_FAILED = 1
EXIT_LEFT_TO_OTHERS = 3
EXIT_INTERRUPTED = 130


class GroupState(enum.Enum):
    CLAIMING = "claiming"
    TUNING = "tuning"
    SEEDING = "seeding"
    DONE = "done"
    SKIPPED = "skipped"


@dataclass
class ModelPlan:
    """What one model column computes on one dataset: its fixed params, space and identity."""

    name: str  # as stored and reported (a variant's own name)
    base: str  # the registered model whose code runs
    resource: str  # "cpu" | "gpu"
    params: dict[str, Any]
    space: dict[str, Any]
    tuned: bool
    settings: dict[str, Any]
    config: str
    study: str
    max_epochs: int | None


@dataclass
class Group:
    """The cells of one (dataset, model, fraction) still to compute."""

    runner: "Runner"
    data: DataPlan
    model: ModelPlan
    fraction: float
    seeds: list[int]
    state: GroupState = GroupState.CLAIMING
    study: Any = None  # tuning.StudyDriver while tuning
    params: dict[str, Any] | None = None  # the configuration the seeds use
    reuse: dict[str, Any] | None = None  # best trial's record, for the trial seed
    error: str | None = None  # why no configuration could be chosen
    last_trial_error: str | None = None
    pending: list[int] = field(default_factory=list)  # seeds not yet submitted
    started_at: float = 0.0
    _claims: Any = None

    @property
    def label(self) -> str:
        return f"{self.data.entry.name}/{self.model.name}/{self.fraction:g}"

    @property
    def claim_key(self) -> str:
        return f"group|{self.data.entry.name}|{self.model.name}|{self.fraction:g}|{self.model.config}"

    def key(self, seed: int) -> CellKey:
        return cell_key(self.data.entry.name, self.model.name, self.fraction, seed, self.model.config)

    @property
    def finished(self) -> bool:
        return self.state in (GroupState.DONE, GroupState.SKIPPED)

    # ------------------------------------------------------------------ transitions
    def start(self, claims, done: set) -> None:
        """CLAIMING -> TUNING | SEEDING | DONE, or SKIPPED when another live run holds it."""
        if not claims.claim(self.claim_key):
            self.state = GroupState.SKIPPED
            return
        self._claims = claims
        self.seeds = [s for s in self.seeds if self.key(s) not in done]  # finished elsewhere meanwhile
        self.started_at = time.monotonic()
        if not self.seeds:
            self._finish()
        elif self.model.tuned:
            from benchmark.execution.tuning import StudyDriver

            name = f"mlcbench|{self.data.entry.name}|{self.model.name}|fraction={self.fraction:g}|{self.model.study}"
            self.study = StudyDriver(self.runner.store.url, name, self.model.space, self.runner.suite.trials,
                                     seed=self.runner.suite.split_seed)
            self.state = GroupState.TUNING
        else:
            self._seed_with(dict(self.model.params))

    def _seed_with(self, params: dict[str, Any] | None) -> None:
        self.params = params
        self.pending = list(self.seeds)
        self.state = GroupState.SEEDING

    def _over_budget(self) -> bool:
        budget = self.runner.suite.budget_seconds
        return budget is not None and time.monotonic() - self.started_at > budget

    def _finish_tuning(self) -> None:
        best = self.study.best()
        if best is None:
            self.error = "tuning produced no complete trial; last trial error:\n" + (self.last_trial_error or "none")
            self._seed_with(None)
        else:
            self.reuse = best.user_attrs.get("cell_record")
            self._seed_with({**self.model.params, **best.params})

    def next_job(self) -> tuple[str, Any, Job] | None:
        """The next job to submit, or None when the group must wait (or is finished)."""
        if self.state == GroupState.TUNING:
            if self.study.can_ask() and not self._over_budget():
                index, sampled, history = self.study.ask()
                job = self.runner.job(self, "trial", self.runner.trial_seed, {**self.model.params, **sampled},
                                      history=tuple(history))
                return ("trial", index, job)
            if self.study.in_flight:
                return None
            self._finish_tuning()
        while self.state == GroupState.SEEDING and self.pending:
            seed = self.pending.pop(0)
            if self.params is None:  # tuning failed: every seed fails with its reason
                self.runner.record(self, seed, JobResult("failed", error=self.error))
                continue
            if self.reuse is not None and seed == self.runner.trial_seed:
                self.runner.record(self, seed, JobResult("complete", record=self.reuse), reused=True)
                continue
            return ("cell", seed, self.runner.job(self, "cell", seed, dict(self.params)))
        return None

    def on_result(self, kind: str, ident: Any, result: JobResult) -> None:
        if kind == "trial":
            attrs: dict[str, Any] = {}
            if result.state == "complete":
                attrs["cell_record"] = {**result.record, "started_at": result.started_at}
            elif result.state == "failed":
                attrs["error"] = (result.error or "")[-4000:]
                self.last_trial_error = result.error
            self.study.tell(ident, result.state, result.val_score, result.intermediate, attrs)
        else:
            self.runner.record(self, ident, result)

    def settle(self, in_flight: int) -> None:
        """SEEDING -> DONE once every seed was submitted and came back."""
        if self.state == GroupState.SEEDING and not self.pending and in_flight == 0:
            self._finish()

    def _finish(self) -> None:
        self.state = GroupState.DONE
        if self._claims is not None:  # a run waiting for this group may take it now
            self._claims.release(self.claim_key)


@dataclass
class RunSummary:
    planned: int = 0
    already_done: int = 0
    done: int = 0
    failed: list[tuple[tuple, str]] = field(default_factory=list)
    left_to_others: list[str] = field(default_factory=list)
    interrupted: bool = False
    trials: int = 0
    pruned: int = 0
    fits: int = 0
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """130 interrupted, 1 a cell failed, 3 groups left to another live run, else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.failed:
            return EXIT_FAILED
        return EXIT_LEFT_TO_OTHERS if self.left_to_others else 0


class Runner:
    """Drive one suite on one executor, writing one store."""

    WAIT_SECONDS = 30.0  # longest wait for a result before looking at the groups again
    POLL_SECONDS = 3.0  # --wait: how often to look whether another run's groups are free

    def __init__(self, suite, store: ResultsStore, executor, progress, plan, wait_for_others: bool = False,
                 estimate: bool = False):
        self.suite = suite
        self.store = store
        self.executor = executor
        self.progress = progress
        self.plan = plan
        self.wait_for_others = wait_for_others
        self.summary = RunSummary(notices=list(suite.notices))
        self.git_commit = provenance.git_commit()
        self.trial_seed = suite.split_seed  # trials train with a fixed model seed
        self._data: dict[str, DataPlan] = {}
        self.estimate = estimate
        self.fit_estimates: dict[tuple, float] = {}  # (group label, kind, trial or seed) -> cost-model seconds

    # ------------------------------------------------------------------ planning
    def data_plan(self, entry) -> DataPlan:
        if entry.name not in self._data:
            from benchmark.data.sources import cache_dir

            self._data[entry.name] = DataPlan(
                entry, dataset_fingerprint(entry, self.plan.data_dir), self.plan.data_dir, self.suite.split_seed,
                self.suite.val_size, self.suite.resample, self.suite.protocol == "reference", cache_dir() / "splits")
        return self._data[entry.name]

    def model_plan(self, data: DataPlan, config) -> ModelPlan:
        from benchmark.modelapi.base import get_model
        from benchmark.execution.suite import REFERENCE_MODEL_PARAMS

        cls = get_model(config.base)
        params: dict[str, Any] = {}
        if config.reference:
            params.update(cls.reference_params(data.entry.name) or {})
        if self.suite.epochs is not None and "epochs" in cls.defaults:
            params["epochs"] = self.suite.epochs
        if self.suite.protocol == "reference":
            params.update({k: v for k, v in REFERENCE_MODEL_PARAMS.items() if k in cls.defaults})
        fixed, tune = config.on(data.entry.name)
        params.update(fixed)
        if tune is not None:  # only these are searched; everything else stays fixed
            space = {k: cls.search_space[k] for k in tune}
            params = {k: v for k, v in params.items() if k not in space}
        else:
            space = {k: d for k, d in cls.search_space.items() if k not in params}
        tuned = not config.fixed and self.suite.trials > 0 and bool(space)
        max_epochs = int(params.get("epochs", cls.defaults.get("epochs", 0)) or 0) or None
        if "epochs" in space:
            max_epochs = int(getattr(space["epochs"], "high", max_epochs or 0)) or max_epochs
        settings = group_settings(self.suite, data.entry.name, data.fingerprint, config.name, config.base, params,
                                  space if tuned else {}, self.suite.trials if tuned else 0, max_epochs)
        return ModelPlan(config.name, config.base, self.plan.resource_for(cls), params, space if tuned else {},
                         tuned, settings, config_hash(settings), study_hash(settings), max_epochs)

    def groups(self) -> tuple[list[Group], list[CellKey]]:
        groups, cells = [], []
        for entry in self.suite.datasets:
            data = self.data_plan(entry)
            for config in self.suite.models:
                model = self.model_plan(data, config)
                for fraction in self.suite.fractions:
                    group = Group(self, data, model, fraction, list(self.suite.seeds))
                    groups.append(group)
                    cells += [group.key(s) for s in group.seeds]
        return groups, cells

    def job(self, group: Group, kind: str, seed: int, params: dict[str, Any], history: tuple = ()) -> Job:
        from benchmark.execution.suite import REFERENCE_GRID

        suite = self.suite
        parts = group.data.parts(group.fraction, seed)
        pruning = None
        if kind == "trial":
            pruning = Pruning(suite.pruner, suite.pruner_startup_trials, suite.pruner_warmup_epochs,
                              group.model.max_epochs)
        return Job(kind=kind, dataset=group.data.entry.ref(), model=group.model.base, params=params, seed=seed,
                   train=parts.train, val=parts.val, test=parts.test,
                   val_grid=tuple(suite.resolved_val_grid()), oracle_grid=tuple(suite.resolved_oracle_grid()),
                   objective=suite.objective, pruning=pruning, history=history, label=group.label,
                   selection_grid=tuple(REFERENCE_GRID if suite.protocol == "reference" else suite.resolved_val_grid()))

    # ------------------------------------------------------------------ results
    def record(self, group: Group, seed: int, result: JobResult, reused: bool = False) -> None:
        row = dict(result.record or {})
        started_at = result.started_at or row.pop("started_at", None)
        row.pop("started_at", None)
        key = group.key(seed)
        row.update(
            key._asdict(), status="done" if result.state == "complete" else "failed",
            error=None if result.state == "complete" else result.error,
            git_commit=self.git_commit, suite=self.suite.name, suite_hash=self.suite.hash,
            settings=group.model.settings,
            n_trials=group.study.counted() if group.study is not None else 0,
            started_at=started_at or now_iso(),
        )
        if row["status"] == "failed" and not row.get("params"):
            row["params"] = group.params or group.model.params
        if result.artifacts and row["status"] == "done":  # written first: a row never points at a missing file
            row["artifacts"] = self.store.save_artifacts(key, result.artifacts)
        self.store.record(row)
        if row["status"] == "done":
            self.summary.done += 1
        else:
            self.summary.failed.append((tuple(key[:4]), row["error"] or ""))
        self.progress.cell_finished(row, reused=reused)

    def _on_result(self, kind: str, group: Group, ident: Any, result: JobResult) -> None:
        self.summary.fits += 1
        if kind == "trial":
            self.summary.trials += 1
            self.summary.pruned += result.state == "pruned"
            self.progress.trial_finished(group.label, ident, result)
        group.on_result(kind, ident, result)

    # ------------------------------------------------------------------ main loop
    def fetch_datasets(self) -> None:
        """Download missing catalog files once, in the driver, before any cell runs."""
        from benchmark.data.sources import fetch_file, get_spec

        for entry in self.suite.datasets:
            if entry.declaration:
                continue
            spec = get_spec(entry.name)
            if not spec.is_available(self.plan.data_dir):
                self.progress.notice(f"fetching {entry.name}")
                for ref in spec.files.values():
                    fetch_file(ref, self.plan.data_dir, dataset=entry.name)

    def run(self) -> RunSummary:
        started = time.monotonic()
        self.fetch_datasets()
        groups, cells = self.groups()
        self.store.plan(cells, self.suite.name, self.suite.hash)
        done = self.store.done_cells()
        self.summary.planned = len(cells)
        self.summary.already_done = sum(c in done for c in cells)
        groups = [g for g in groups if any(g.key(s) not in done for s in g.seeds)]
        total_estimate = self._estimate(groups, done) if self.estimate else None
        self.progress.start(total=len(cells) - self.summary.already_done, already_done=self.summary.already_done,
                            planned=len(cells), notices=self.summary.notices, estimate_seconds=total_estimate,
                            slots=self.plan.cpu_workers + len(self.plan.gpu_devices))
        try:
            with self.store.claims() as claims:
                while True:
                    self._loop(groups, claims)
                    done = self.store.done_cells()  # groups the other run has finished meanwhile are not left
                    skipped = [g for g in groups if g.state == GroupState.SKIPPED
                               and any(g.key(s) not in done for s in g.seeds)]
                    if not (skipped and self.wait_for_others and not self.summary.interrupted):
                        self.summary.left_to_others = [g.label for g in skipped]
                        break
                    self.progress.notice(f"waiting for another run to finish {len(skipped)} group(s)")
                    time.sleep(self.POLL_SECONDS)
                    for group in skipped:
                        group.state = GroupState.CLAIMING
                        group.seeds = [s for s in group.seeds if group.key(s) not in done]
        finally:
            self.summary.seconds = time.monotonic() - started
        return self.summary

    def _estimate(self, groups: list[Group], done: set) -> float:
        """Seconds of work the cost model expects (calibrating once per model and dataset)."""
        from benchmark.cost import estimate as cost

        # the space timings are the dry run's (minutes on the smoke suite): a run's ETA uses
        # cached ones and is corrected by the measured times of finished jobs
        result = cost.estimate(self, groups, done, notice=self.progress.notice, time_spaces=False)
        for fit in result["fits"]:
            self.fit_estimates[(fit.group_label, *fit.job)] = fit.seconds
        return sum(f.seconds for f in result["fits"])

    def _loop(self, groups: list[Group], claims) -> None:
        in_flight: dict[Any, tuple[str, Group, Any, str, float]] = {}
        try:
            while True:
                self._fill(groups, in_flight, claims)
                for group in groups:
                    group.settle(sum(1 for _, g, *_ in in_flight.values() if g is group))
                if not in_flight:
                    if all(g.finished for g in groups):
                        return
                    stuck = [g.label for g in groups if not g.finished]
                    raise RuntimeError(f"runner made no progress on {stuck}")  # a bug, never expected
                for handle, result in self.executor.wait(timeout=self.WAIT_SECONDS):
                    kind, group, ident, label, submitted = in_flight.pop(handle)
                    self.progress.job_finished(label, self.fit_estimates.get((group.label, kind, ident)),
                                               time.monotonic() - submitted)
                    self._on_result(kind, group, ident, result)
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self._record_finished(in_flight)
            self.executor.shutdown(cancel=True)
            for group in groups:
                if group.study is not None:
                    group.study.abandon_in_flight()

    def _record_finished(self, in_flight: dict) -> None:
        """On Ctrl-C: keep the results workers already finished (trials and cells)."""
        try:
            for handle, result in self.executor.collect_finished():
                kind, group, ident, *_ = in_flight.pop(handle)
                self._on_result(kind, group, ident, result)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once
            pass

    def _fill(self, groups: list[Group], in_flight: dict, claims) -> None:
        """Submit jobs while the executor has free slots of each group's kind, earliest groups first."""
        done = None
        for group in groups:
            if group.finished or self.executor.free(group.model.resource) <= 0:
                continue
            if group.state == GroupState.CLAIMING:
                done = self.store.done_cells() if done is None else done
                group.start(claims, done)
                if group.state == GroupState.SKIPPED:
                    self.progress.notice(f"{group.label}: claimed by another live run, left to it")
                    continue
            while self.executor.free(group.model.resource) > 0:
                nxt = group.next_job()
                if nxt is None:
                    break
                kind, ident, job = nxt
                label = f"{group.label}/" + (f"trial {ident}" if kind == "trial" else f"seed {ident}")
                handle = self.executor.submit(job, group.model.resource)
                in_flight[handle] = (kind, group, ident, label, time.monotonic())
                self.progress.job_started(label)


def dry_run_rows(runner: Runner) -> list[tuple[str, str, float, int, str]]:
    """Every cell of the suite (under its configuration) with its stored status."""
    _, cells = runner.groups()
    status = runner.store.cell_status()
    return [(*cell[:4], status.get(cell, "todo")) for cell in cells]
