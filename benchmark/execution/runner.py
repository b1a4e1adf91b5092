"""The run loop: drive a run plan's groups on one executor, writing one store.

A *cell* is (dataset, model, fraction, seed) under one configuration (its identity hash,
see :mod:`benchmark.store.identity`). Cells sharing (dataset, model, fraction) form a
group (:mod:`benchmark.execution.group`): its Optuna study runs first, then the best
configuration is trained and evaluated once per seed. The :class:`Runner` owns the
store, the claims and the executor; groups only say what to do next, and workers
(:mod:`benchmark.execution.worker`) only compute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from benchmark.execution.group import CellOutcome, Group, GroupState, JobRequest
from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.tuning import StudyDriver
from benchmark.execution.worker import JobResult
from benchmark.store import provenance
from benchmark.store.results import ResultsStore
from benchmark.store.tables import CellRow, now_iso

EXIT_FAILED = 1
EXIT_LEFT_TO_OTHERS = 3
EXIT_INTERRUPTED = 130


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


@dataclass(frozen=True)
class InFlight:
    """A submitted job: what it is for, and when it went out."""

    kind: str  # "trial" | "cell"
    group: Group
    ident: int  # trial index or seed
    label: str
    submitted: float  # time.monotonic()

    @property
    def estimate_key(self) -> tuple:
        return (self.group.label, self.kind, self.ident)


class Runner:
    """Drive one run plan on one executor, writing one store."""

    WAIT_SECONDS = 30.0  # longest wait for a result before looking at the groups again
    POLL_SECONDS = 3.0  # --wait: how often to look whether another run's groups are free

    def __init__(self, plan: RunPlan, store: ResultsStore, executor, progress, wait_for_others: bool = False,
                 estimator: Callable | None = None):
        self.plan = plan
        self.store = store
        self.executor = executor
        self.progress = progress
        self.wait_for_others = wait_for_others
        self.summary = RunSummary(notices=list(plan.suite.notices))
        self.git_commit = provenance.git_commit()
        self.estimator = estimator  # (groups, done cells, notice) -> an estimate with .fits; None: no ETA
        self.fit_estimates: dict[tuple, float] = {}  # (group label, kind, trial or seed) -> cost-model seconds
        self._warned: set[tuple[str, str]] = set()  # (dataset, warning) already printed

    # ------------------------------------------------------------------ results
    def record(self, group: Group, outcome: CellOutcome) -> None:
        result, key = outcome.result, group.plan.keys[outcome.seed]
        fit = result.record if result.state == "complete" else None
        status = "done" if fit is not None else "failed"
        measured = {} if fit is None else {
            name: getattr(fit, name) for name in (
                "params", "metrics", "thresholds", "val_score", "best_epoch", "n_epochs", "fit_seconds",
                "predict_seconds", "seconds_per_epoch", "device", "versions", "n_train", "n_val", "n_test")}
        if fit is None:
            measured["params"] = outcome.params or group.plan.model.params
        warnings = group.plan.data.warnings(group.plan.fraction, outcome.seed)  # a tiny test set, unseen labels
        row = CellRow(
            **key._asdict(), status=status, error=None if fit is not None else result.error, **measured,
            git_commit=self.git_commit, suite=self.plan.suite.name, suite_hash=self.plan.suite.hash,
            settings=group.plan.model.settings, n_trials=outcome.n_trials,
            started_at=result.started_at or (fit.started_at if fit is not None else None) or now_iso(),
            warnings=warnings or None)
        self.store.record(row, artifacts=result.artifacts)
        if status == "done":
            self.summary.done += 1
        else:
            self.summary.failed.append((tuple(key[:4]), row.error or ""))
        self.progress.cell_finished(row, reused=outcome.reused)
        self._warn_once(group, outcome.seed, warnings)

    def _warn_once(self, group: Group, seed: int, warnings: list[str]) -> None:
        """Each warning once per run and dataset, not once per model and seed."""
        dataset = group.plan.dataset
        for text in warnings:
            if (dataset, text) not in self._warned:
                self._warned.add((dataset, text))
                self.progress.notice(f"{dataset} (fraction {group.plan.fraction:g}, seed {seed}): {text}")

    def _on_result(self, job: InFlight, result: JobResult) -> None:
        self.summary.fits += 1
        if job.kind == "trial":
            self.summary.trials += 1
            self.summary.pruned += result.state == "pruned"
            self.progress.trial_finished(job.group.label, job.ident, result)
        for outcome in job.group.on_result(job.kind, job.ident, result):
            self.record(job.group, outcome)

    # ------------------------------------------------------------------ main loop
    def run(self) -> RunSummary:
        started = time.monotonic()
        cells = self.plan.cells()
        done = self.store.done_cells()
        todo = [g for g in self.plan.groups if any(g.keys[s] not in done for s in g.seeds)]
        for data in {g.dataset: g.data for g in todo}.values():  # what reading the data changed
            self.summary.notices += [f"{data.entry.name}: {notice}" for notice in data.facts.notices]
        self.store.plan(cells, self.plan.suite.name, self.plan.suite.hash)
        self.summary.planned = len(cells)
        self.summary.already_done = sum(c in done for c in cells)
        total_estimate = self._estimate(todo, done) if self.estimator is not None else None
        execution = self.plan.execution
        self.progress.start(total=len(cells) - self.summary.already_done, already_done=self.summary.already_done,
                            planned=len(cells), notices=self.summary.notices, estimate_seconds=total_estimate,
                            slots=execution.cpu_workers + len(execution.gpu_devices))
        groups = [Group(plan) for plan in todo]
        try:
            with self.store.claims() as claims:
                while True:
                    self._loop(groups, claims)
                    done = self.store.done_cells()  # groups the other run has finished meanwhile are not left
                    skipped = [g for g in groups if g.state == GroupState.SKIPPED
                               and any(g.plan.keys[s] not in done for s in g.seeds)]
                    if not (skipped and self.wait_for_others and not self.summary.interrupted):
                        self.summary.left_to_others = [g.label for g in skipped]
                        break
                    self.progress.notice(f"waiting for another run to finish {len(skipped)} group(s)")
                    time.sleep(self.POLL_SECONDS)
                    for group in skipped:
                        group.retry(done)
        finally:
            self.summary.seconds = time.monotonic() - started
        return self.summary

    def _estimate(self, groups: list[GroupPlan], done: set) -> float:
        """Seconds of work the cost model expects; each job's own estimate is kept for the display."""
        result = self.estimator(groups, done, self.progress.notice)
        for fit in result.fits:
            self.fit_estimates[(fit.group_label, *fit.job)] = fit.seconds
        return sum(f.seconds for f in result.fits)

    def _open_study(self, group: GroupPlan) -> StudyDriver:
        return StudyDriver(self.store.url, group.study_name, group.model.space, group.model.trials,
                           seed=self.plan.trial_seed)

    def _loop(self, groups: list[Group], claims) -> None:
        in_flight: dict[object, InFlight] = {}
        try:
            while True:
                self._fill(groups, in_flight, claims)
                for group in groups:
                    group.settle(sum(1 for job in in_flight.values() if job.group is group))
                if not in_flight:
                    if all(g.finished for g in groups):
                        return
                    stuck = [g.label for g in groups if not g.finished]
                    raise RuntimeError(f"runner made no progress on {stuck}")  # a bug, never expected
                for handle, result in self.executor.wait(timeout=self.WAIT_SECONDS):
                    job = in_flight.pop(handle)
                    self.progress.job_finished(job.label, self.fit_estimates.get(job.estimate_key),
                                               time.monotonic() - job.submitted)
                    self._on_result(job, result)
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
                self._on_result(in_flight.pop(handle), result)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once
            pass

    def _fill(self, groups: list[Group], in_flight: dict, claims) -> None:
        """Submit jobs while the executor has free slots of each group's kind, earliest groups first."""
        done = None
        for group in groups:
            resource = group.plan.model.resource
            if group.finished or self.executor.free(resource) <= 0:
                continue
            if group.state == GroupState.CLAIMING:
                done = self.store.done_cells() if done is None else done
                group.start(claims, done, self._open_study)
                if group.state == GroupState.SKIPPED:
                    self.progress.notice(f"{group.label}: claimed by another live run, left to it")
                    continue
            while self.executor.free(resource) > 0:
                step = group.next_step(self.plan)
                if step is None:
                    break
                if isinstance(step, CellOutcome):
                    self.record(group, step)
                    continue
                self._submit(group, step, in_flight)

    def _submit(self, group: Group, request: JobRequest, in_flight: dict) -> None:
        what = f"trial {request.ident}" if request.kind == "trial" else f"seed {request.ident}"
        label = f"{group.label}/{what}"
        handle = self.executor.submit(request.job, group.plan.model.resource)
        in_flight[handle] = InFlight(request.kind, group, request.ident, label, time.monotonic())
        self.progress.job_started(label)

