"""One group's state machine: tune once, then train and evaluate once per seed.

    CLAIMING -> TUNING -> SEEDING -> DONE
        \\-> SKIPPED (another live run holds it)

A :class:`Group` holds the progress of one :class:`~benchmark.execution.plan.GroupPlan`
and nothing else: :meth:`Group.next_step` says what to do next (submit a job, record a
seed's outcome, or wait), :meth:`Group.on_result` takes a job's result and returns the
seeds' outcomes to record. The run loop (:mod:`benchmark.execution.runner`) owns the
store, the claims and the executor; a group never calls back into it.

Every trial trains with model seed = the plan's trial seed (fixed, so trials stay
comparable) and is evaluated on the test set too; the cell of that seed then reuses the
best trial's record instead of training the same model again. The test scores of the
other trials are never looked at, so no test data leaks into the choice of
hyperparameters.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from benchmark.execution.plan import GroupPlan, RunPlan
from benchmark.execution.worker import FitRecord, Job, JobResult

#: a trial whose worker dies this often fails its group's cells instead of being asked again
MAX_TRIAL_LOSSES = 2


class GroupState(enum.Enum):
    CLAIMING = "claiming"
    TUNING = "tuning"
    SEEDING = "seeding"
    DONE = "done"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class JobRequest:
    """A job to submit: a tuning trial (``ident`` = its index) or a seed's cell (``ident`` = seed)."""

    kind: str  # "trial" | "cell"
    ident: int
    job: Job


@dataclass(frozen=True)
class CellOutcome:
    """A seed's result, ready to record (from a job, the best trial's record, or a failed study)."""

    seed: int
    result: JobResult
    params: dict[str, Any] | None  # the configuration the seed used (None: none could be chosen)
    n_trials: int  # trials of the study that count (0 without a study)
    reused: bool = False


@dataclass
class Group:
    """The progress of one (dataset, model, fraction); see the module docstring."""

    plan: GroupPlan
    seeds: list[int] = field(default_factory=list)  # seeds still to compute
    state: GroupState = GroupState.CLAIMING
    study: Any = None  # tuning.StudyDriver while tuning
    params: dict[str, Any] | None = None  # the configuration the seeds use
    reuse: FitRecord | None = None  # best trial's record, for the trial seed
    error: str | None = None  # why no configuration could be chosen
    last_trial_error: str | None = None
    lost_trials: dict[int, int] = field(default_factory=dict)  # trial index -> times its worker died
    pending: list[int] = field(default_factory=list)  # seeds not yet submitted
    started_at: float = 0.0
    _claims: Any = None

    def __post_init__(self) -> None:
        self.seeds = self.seeds or list(self.plan.seeds)

    @property
    def label(self) -> str:
        return self.plan.label

    @property
    def finished(self) -> bool:
        return self.state in (GroupState.DONE, GroupState.SKIPPED)

    def n_trials(self) -> int:
        return self.study.counted() if self.study is not None else 0

    # ------------------------------------------------------------------ transitions
    def start(self, claims, done: set, open_study: Callable[[GroupPlan], Any]) -> None:
        """CLAIMING -> TUNING | SEEDING | DONE, or SKIPPED when another live run holds it."""
        if not claims.claim(self.plan.claim_key):
            self.state = GroupState.SKIPPED
            return
        self._claims = claims
        self.seeds = [s for s in self.seeds if self.plan.keys[s] not in done]  # finished elsewhere meanwhile
        self.started_at = time.monotonic()
        if not self.seeds:
            self._finish()
        elif self.plan.model.tuned:
            self.study = open_study(self.plan)
            self.state = GroupState.TUNING
        else:
            self._seed_with(dict(self.plan.model.params))

    def retry(self, done: set) -> None:
        """SKIPPED -> CLAIMING with the seeds still missing (``--wait``: the other run may have let go)."""
        self.state = GroupState.CLAIMING
        self.seeds = [s for s in self.seeds if self.plan.keys[s] not in done]

    def _seed_with(self, params: dict[str, Any] | None) -> None:
        self.params = params
        self.pending = list(self.seeds)
        self.state = GroupState.SEEDING

    def _over_budget(self, budget: float | None) -> bool:
        return budget is not None and time.monotonic() - self.started_at > budget

    def _finish_tuning(self) -> None:
        if self.error:  # a trial lost its worker too often
            self._seed_with(None)
            return
        best = self.study.best()
        if best is None:
            self.error = "tuning produced no complete trial; last trial error:\n" + (self.last_trial_error or "none")
            self._seed_with(None)
        else:
            record = best.user_attrs.get("cell_record")
            self.reuse = FitRecord.from_dict(record) if record is not None else None
            self._seed_with({**self.plan.model.params, **best.params})

    def next_step(self, run: RunPlan) -> JobRequest | CellOutcome | None:
        """The next job to submit, a seed's outcome to record, or None (wait, or finished)."""
        if self.state == GroupState.TUNING:
            if self.study.can_ask() and not self._over_budget(run.budget_seconds):
                index, sampled, history = self.study.ask()
                job = run.job(self.plan, "trial", run.trial_seed, {**self.plan.model.params, **sampled},
                              history=tuple(history))
                return JobRequest("trial", index, job)
            if self.study.in_flight:
                return None
            self._finish_tuning()
        if self.state != GroupState.SEEDING or not self.pending:
            return None
        seed = self.pending.pop(0)
        if self.params is None:  # tuning failed: every seed fails with its reason
            return self._outcome(seed, JobResult("failed", error=self.error))
        if self.reuse is not None and seed == run.trial_seed:
            return self._outcome(seed, JobResult("complete", record=self.reuse), reused=True)
        return JobRequest("cell", seed, run.job(self.plan, "cell", seed, dict(self.params)))

    def on_result(self, kind: str, ident: int, result: JobResult) -> list[CellOutcome]:
        """A job came back: a trial is told to the study; a cell is a seed's outcome."""
        if kind == "cell":
            return [self._outcome(ident, result)]
        if result.lost:
            return self._trial_lost(ident, result)
        attrs: dict[str, Any] = dict(result.attrs)
        if result.state == "complete":
            attrs["cell_record"] = result.record.to_dict()
        elif result.state == "failed":
            attrs["error"] = (result.error or "")[-4000:]
            self.last_trial_error = result.error
        self.study.tell(ident, result.state, result.val_score, result.intermediate, attrs)
        return []

    def _trial_lost(self, index: int, result: JobResult) -> list[CellOutcome]:
        """A trial whose worker died is part of the study's budget: it is asked again, with the
        same parameters (sampling is deterministic), as after a driver crash. A trial that
        loses its worker twice fails the group's cells (retried by the next run) rather than
        leaving the study one trial short and calling its cells done."""
        self.study.abandon(index)
        self.lost_trials[index] = self.lost_trials.get(index, 0) + 1
        if self.lost_trials[index] < MAX_TRIAL_LOSSES:
            return []
        self.error = f"tuning trial {index} lost its worker {self.lost_trials[index]} times: {result.error}"
        self.study.stop_asking()
        return []

    def _outcome(self, seed: int, result: JobResult, reused: bool = False) -> CellOutcome:
        return CellOutcome(seed, result, self.params, self.n_trials(), reused)

    def settle(self, in_flight: int) -> None:
        """SEEDING -> DONE once every seed was submitted and came back."""
        if self.state == GroupState.SEEDING and not self.pending and in_flight == 0:
            self._finish()

    def _finish(self) -> None:
        self.state = GroupState.DONE
        if self._claims is not None:  # a run waiting for this group may take it now
            self._claims.release(self.plan.claim_key)
