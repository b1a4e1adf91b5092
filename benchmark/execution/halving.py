"""Successive halving over training rows: cheap early rungs for tuning on large datasets.

In the spirit of scikit-learn's ``HalvingRandomSearchCV(resource="n_samples")``, but
asynchronous and deterministic like the rest of the tuning (see
:mod:`benchmark.execution.tuning`). A suite asks for it with
``halving = { min_rows = 1000, factor = 3 }`` (see :mod:`benchmark.execution.suite`).

*Rungs* (:func:`rung_rows`): for ``n`` training rows, rung ``i`` trains on
``min_rows * factor**i`` rows, as long as that leaves at least a factor ``sqrt(factor)``
to the last rung, which is always all ``n`` rows. With ``n = 10000, min_rows = 1000,
factor = 3``: 1000, 3000, 10000 (9000 is too close to 10000 to be worth a rung). When
``min_rows * sqrt(factor) > n`` there is one rung: halving does nothing there, and the
plan leaves it off (so the cells of a small dataset keep their identity).

*Rows* (:func:`rung_subsets`): one fixed :func:`~benchmark.data.splits.stratified_order`
of the job's training rows (recursive iterative stratification, seeded by the job's
seed, i.e. the trial seed): rung ``i`` takes its first ``rows`` positions, so every rung
is label-stratified and lies inside the next one. The last rung is the training rows
themselves, in their own order, so a trial that reaches it computes exactly the fit a
trial without halving would. The validation rows are never subsampled.

*Promotion* (:func:`promoted`): after its rung-``i`` fit a trial reports its validation
objective as intermediate value at step ``i`` and goes on to rung ``i + 1`` only if it is
among the best ``max(1, floor((m + 1) / factor))`` of itself and the ``m`` trials of its
history that reached rung ``i`` (ties go its way), or if ``m < startup``. The history is
what the driver sent (trials ``0 .. k-1-LAG``), so the decision, like the parameters,
does not depend on workers, timing or crashes. A trial that is not promoted is PRUNED:
it is never the best trial, so the best trial always trained on all rows and the cell
of the trial seed may reuse its fit. Cells (every seed of the chosen configuration)
train on all rows. Per-epoch pruning inside one rung's fit is off for a halving study:
its steps are rungs.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from benchmark.data.splits import stratified_order
from benchmark.execution.tuning import LAG, TPE_STARTUP_TRIALS
from benchmark.lazy import lazy

optuna = lazy("optuna")


@dataclass(frozen=True)
class Halving:
    """A suite's successive-halving setting (part of a tuned cell's identity when it applies)."""

    min_rows: int  # rows of the first rung
    factor: float = 3.0  # rows grow, and trials thin out, by this factor per rung
    startup: int = 3  # a rung promotes every trial until this many history trials reached it

    def settings(self) -> dict[str, Any]:
        return {k: (float(v) if k == "factor" else int(v)) for k, v in asdict(self).items()}


def rung_rows(n_train: int, halving: Halving) -> list[int]:
    """Training rows of each rung, increasing; the last is always ``n_train`` (all rows)."""
    n_train = int(n_train)
    rungs: list[int] = []
    i = 0
    while True:
        rows = int(round(halving.min_rows * halving.factor ** i))
        if rows * math.sqrt(halving.factor) > n_train or rows >= n_train:
            break
        if not rungs or rows > rungs[-1]:
            rungs.append(rows)
        i += 1
    return rungs + [n_train]


def applies(n_train: int, halving: Halving | None) -> bool:
    """Whether halving changes anything for ``n_train`` rows (more than one rung)."""
    return halving is not None and len(rung_rows(n_train, halving)) > 1


def keep(peers: int, factor: float) -> int:
    """How many of ``peers + 1`` trials at a rung are promoted (at least one)."""
    return max(1, int(math.floor((peers + 1) / factor)))


def promoted(score: float, rung: int, history: Sequence[dict[str, Any]], halving: Halving) -> bool:
    """Whether a trial scoring ``score`` at ``rung`` trains on the next rung (see the module doc)."""
    peers = [value for value in (_score_at(t, rung) for t in history) if value is not None]
    if len(peers) < halving.startup:
        return True
    better = sum(1 for p in peers if p > score)
    return better < keep(len(peers), halving.factor)


def _score_at(trial: dict[str, Any], rung: int) -> float | None:
    values = trial.get("intermediate") or {}
    value = values.get(rung, values.get(str(rung)))
    return None if value is None else float(value)


# How trial scores behave in a tuned study, for :func:`expected_rung_counts`, in units of the
# random start-up trials' spread: a trial's scores at two rungs correlate by SCORE_CORRELATION,
# and once TPE takes over from random start-up sampling its trials score SAMPLER_DRIFT higher
# on average, spread SAMPLER_SPREAD as widely. Measured on the paper suite's halving studies
# (benchmarks/results/halving_promotions.txt): rank correlation between rungs 0.91-0.99 for br
# and cc, 0.57 for rakeld (over promoted trials, so it reads low), drift 0.90-1.10, spread
# 0.2-0.6; these values fit the promotion counts of those and two earlier studies best.
SCORE_CORRELATION = 0.9
SAMPLER_DRIFT = 0.9
SAMPLER_SPREAD = 0.5
INDEPENDENT_SCORES = {"correlation": 0.0, "drift": 0.0, "spread": 1.0}  # the model before these were measured


@functools.lru_cache(maxsize=64)
def expected_rung_counts(trials: int, n_rungs: int, halving: Halving, lag: int | None = None,
                         repeats: int = 200, correlation: float = SCORE_CORRELATION,
                         drift: float = SAMPLER_DRIFT, spread: float = SAMPLER_SPREAD) -> tuple[float, ...]:
    """Expected number of a study's ``trials`` that train on each rung (rung 0 = all of them).

    For the cost estimate: a trial costs the fits of every rung it reached. Computed by
    running :func:`promoted` itself on simulated scores (a fixed seed: the same answer
    every time), with trial ``k`` seeing trials ``0..k-1-lag`` as the driver sends them;
    startup trials and the lag make the shares larger than ``factor ** -i`` on small
    budgets. A simulated score is a trial's own quality (shared by its rungs, so that a
    trial good on few rows stays good on more: ``correlation``) plus rung noise; the
    scores of the sampler's trials (those that see ``TPE_STARTUP_TRIALS`` finished ones)
    are ``drift`` higher and ``spread`` times as spread as the random start-up trials'.
    Both keep more trials going than independent scores would.
    """
    lag = LAG if lag is None else int(lag)
    trials, n_rungs = int(trials), int(n_rungs)
    if trials <= 0 or n_rungs <= 0:
        return tuple(0.0 for _ in range(max(0, n_rungs)))
    rng = np.random.default_rng(0)
    counts = np.zeros(n_rungs)
    sampled = np.arange(trials) >= TPE_STARTUP_TRIALS + lag
    shift, scale = np.where(sampled, drift, 0.0)[:, None], np.where(sampled, spread, 1.0)[:, None]
    for _ in range(repeats):
        quality = math.sqrt(correlation) * rng.standard_normal((trials, 1))
        noise = math.sqrt(1.0 - correlation) * rng.standard_normal((trials, n_rungs))
        scores = shift + scale * (quality + noise)
        reached: list[dict[str, Any]] = []
        for k in range(trials):
            history = reached[: max(0, k - lag)]
            intermediate: dict[int, float] = {}
            for rung in range(n_rungs):
                intermediate[rung] = float(scores[k, rung])
                counts[rung] += 1
                if rung == n_rungs - 1 or not promoted(scores[k, rung], rung, history, halving):
                    break
            reached.append({"intermediate": intermediate})
    return tuple(float(c) / repeats for c in counts)


def rung_subsets(Y_train, n_rows: Sequence[int], seed: int) -> list[np.ndarray]:
    """Sorted positions into the training rows for each rung: nested, label-stratified
    prefixes of one seeded stratified order (the last rung: every position)."""
    n = Y_train.shape[0]
    order = _order(Y_train, seed) if any(r < n for r in n_rows) else np.arange(n)
    return [np.arange(n) if r >= n else np.sort(order[: int(r)]) for r in n_rows]


_ORDERS: dict[tuple, np.ndarray] = {}


def _order(Y_train, seed: int) -> np.ndarray:
    """:func:`stratified_order` of the training labels, kept per process (the trials of one
    study share their training rows; the order of delicious's ~11k rows takes ~10 CPU-s)."""
    dense = Y_train.toarray() if hasattr(Y_train, "toarray") else np.asarray(Y_train)
    dense = np.ascontiguousarray(dense != 0)
    key = (dense.shape, hashlib.sha256(np.packbits(dense).tobytes()).hexdigest(), int(seed))
    if key not in _ORDERS:
        if len(_ORDERS) >= 8:
            _ORDERS.pop(next(iter(_ORDERS)))
        _ORDERS[key] = stratified_order(dense, int(seed))
    return _ORDERS[key]


class RowHalving:
    """Worker side: the rungs of one trial, fitted in turn until one is not promoted.

    ``intermediate`` holds the validation objective of every rung fitted (step = rung
    index), as :class:`~benchmark.execution.tuning.EpochPruner`'s does for epochs.
    """

    def __init__(self, halving: Halving, history: Sequence[dict[str, Any]], n_train: int):
        self.halving = halving
        self.history = list(history)
        self.rows = rung_rows(n_train, halving)
        self.intermediate: dict[int, float] = {}

    def early_rungs(self, Y_train, seed: int):
        """(rung index, positions into the training rows) of every rung but the last."""
        subsets = rung_subsets(Y_train, self.rows, seed)
        return list(enumerate(subsets[:-1]))

    def report(self, rung: int, score: float) -> None:
        """Record a rung's score; ``optuna.TrialPruned`` when the trial is not promoted."""
        score = float(score) if score is not None and math.isfinite(score) else 0.0
        self.intermediate[int(rung)] = score
        if rung < len(self.rows) - 1 and not promoted(score, rung, self.history, self.halving):
            raise optuna.TrialPruned(f"not promoted past rung {rung} ({self.rows[rung]} training rows)")

    def attrs(self) -> dict[str, Any]:
        """What the stored trial keeps: every rung's rows (its steps are rung indices)."""
        return {"halving_rows": list(self.rows)}
