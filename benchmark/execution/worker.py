"""The worker side: one :class:`Job` in, one :class:`JobResult` out.

A job is plain, frozen data: which dataset (a catalog name or a declaration), which
model with which params and seed, the row indices of its train/val/test parts
(computed once by the driver, see :mod:`benchmark.data.dataplan`), the threshold grids and
the tuning objective, and for a tuning trial the pruner and the trial history it may
see. The executor stamps the device and thread count on submit. :func:`run_job`
loads the dataset (cached per process), fits, predicts validation and test, evaluates
the three threshold protocols and never raises: a failure comes back as a result.
A trial with successive halving over training rows first fits its early rungs on
stratified subsets of its training rows and stops when not promoted
(:mod:`benchmark.execution.halving`); its last rung is the plain fit.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.data.refs import DatasetRef, load_ref
from benchmark.evaluation.thresholds import best_over_grid, evaluate_protocols
from benchmark.execution.halving import Halving, RowHalving, applies
from benchmark.execution.tuning import EpochPruner
from benchmark.files import json_safe
from benchmark.lazy import lazy
from benchmark.modelapi.base import get_model
from benchmark.store import provenance
from benchmark.store.tables import now_iso

optuna = lazy("optuna")
sparse = lazy("scipy.sparse")

F1_METRICS = ("ebF1", "miF1", "maF1")


@dataclass(frozen=True)
class Pruning:
    """The pruner a trial reports its per-epoch validation scores to."""

    pruner: str = "median"  # median | hyperband | none
    startup: int = 3
    warmup: int = 2
    max_epochs: int | None = None


@dataclass(frozen=True)
class Job:
    kind: str  # "trial" (reports to a pruner) or "cell"
    dataset: DatasetRef
    model: str
    params: dict[str, Any]
    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_grid: tuple[float, ...]
    oracle_grid: tuple[float, ...]
    objective: str = "mean_f1"
    selection_grid: tuple[float, ...] | None = None  # epoch-selection thresholds (models that select epochs)
    pruning: Pruning | None = None
    history: tuple[dict[str, Any], ...] = ()  # finished trials the pruner may see
    halving: Halving | None = None  # a trial's successive halving over training rows (halving.py)
    data_dir: str | None = None
    device: str = "cpu"  # stamped by the executor
    n_threads: int | None = None  # stamped by the executor
    label: str = ""


@dataclass(frozen=True)
class FitRecord:
    """What one fit measured: the worker's answer, carried into the study (a trial's user
    attribute, for the seed that reuses it) and into the stored cell row."""

    params: dict[str, Any]
    metrics: dict[str, dict[str, float]]  # threshold protocol -> metric -> value
    thresholds: dict[str, dict[str, float]]  # threshold protocol -> metric -> threshold
    val_score: float
    best_epoch: int | None
    n_epochs: int | None
    fit_seconds: float
    predict_seconds: float
    seconds_per_epoch: float | None
    device: str
    versions: dict[str, str]
    n_train: int
    n_val: int
    n_test: int
    started_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data (non-finite numbers as None), as a study's user attribute holds it."""
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FitRecord":
        """The record back from plain data; an unknown or missing field is an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"fit record with unknown fields {unknown}")
        return cls(**data)


@dataclass
class JobResult:
    state: str  # complete | pruned | failed
    val_score: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    record: FitRecord | None = None
    error: str | None = None
    started_at: str | None = None
    artifacts: dict[str, np.ndarray] = field(default_factory=dict)  # small arrays kept beside the store
    lost: bool = False  # the job's worker died (a kill, the OOM killer, a lost node): not the model's failure
    attrs: dict[str, Any] = field(default_factory=dict)  # what a trial's stored record keeps beside its values


def objective_value(y_val, s_val, objective: str, grid) -> float:
    """The tuning objective on validation data: one F1 at its best grid threshold, or their mean.

    ``mean_f1`` (the default) averages example-, micro- and macro-F1, each at its own
    best threshold, so that no configuration wins by trading one of them away.
    """
    metrics = F1_METRICS if objective == "mean_f1" else (objective,)
    values = [best_over_grid(y_val, s_val, m, grid)[0] for m in metrics]
    value = float(np.mean(values))
    return value if math.isfinite(value) else 0.0


def run_job(job: Job) -> JobResult:
    """Train and evaluate one configuration; never raises (except KeyboardInterrupt)."""
    pruner = None
    started_at = now_iso()
    try:
        dataset = load_ref(job.dataset, job.data_dir)
        X, Y = dataset.X, dataset.Y

        cls = get_model(job.model)
        model = new_model(job, cls)
        if job.kind == "trial" and applies(len(job.train), job.halving):
            pruner = RowHalving(job.halving, list(job.history), len(job.train))
            _early_rungs(job, cls, X, Y, pruner)  # raises optuna.TrialPruned when not promoted
        elif job.kind == "trial" and job.pruning is not None and cls.reports_steps():
            pruner = EpochPruner(job.pruning, list(job.history))
        epoch_pruner = pruner if isinstance(pruner, EpochPruner) else None
        record = FitRecord.from_dict(json_safe({**_fit_and_evaluate(job, model, X, Y, epoch_pruner),
                                                "started_at": started_at}))
        if isinstance(pruner, RowHalving):  # the last rung: every training row, the trial's own fit
            pruner.report(len(pruner.rows) - 1, record.val_score)
        return JobResult("complete", val_score=record.val_score,
                         intermediate=dict(pruner.intermediate) if pruner else {},
                         record=record, started_at=started_at, attrs=_attrs(pruner),
                         artifacts=model_artifacts(job, model, Y) if job.kind == "cell" else {})
    except optuna.TrialPruned:
        return JobResult("pruned", intermediate=dict(pruner.intermediate) if pruner else {}, started_at=started_at,
                         attrs=_attrs(pruner))
    except Exception:  # noqa: BLE001 - a failing model is a result, recorded with its traceback
        return JobResult("failed", error=traceback.format_exc(), started_at=started_at,
                         intermediate=dict(pruner.intermediate) if pruner else {}, attrs=_attrs(pruner))


def new_model(job: Job, cls=None):
    """An unfitted model for ``job``: its class (``cls``, or the registry's), seed, device,
    threads and parameters, and the step score's thresholds where the model takes them."""
    model = (cls or get_model(job.model))(seed=job.seed, device=job.device, n_threads=job.n_threads, **job.params)
    if job.selection_grid is not None and hasattr(model, "selection_grid"):
        model.selection_grid = tuple(job.selection_grid)
    return model


def _attrs(pruner) -> dict[str, Any]:
    return pruner.attrs() if isinstance(pruner, RowHalving) else {}


def _early_rungs(job: Job, cls, X, Y, halving: RowHalving) -> None:
    """Fit a fresh model on each rung's rows but the last, score it on all validation rows,
    and report the score (``optuna.TrialPruned`` when the trial is not promoted)."""
    train, val = job.train, job.val
    for rung, positions in halving.early_rungs(Y[train], job.seed):
        model = new_model(job, cls)
        rows = train[positions]
        model.fit(X[rows], Y[rows], X[val], Y[val], on_epoch=None)
        s_val = np.asarray(model.predict_proba(X[val]), dtype=np.float64)
        halving.report(rung, objective_value(Y[val], s_val, job.objective, list(job.val_grid)))


def model_artifacts(job: Job, model, Y) -> dict[str, np.ndarray]:
    """What a cell keeps beside its row: the learnt label embeddings, with the training
    labels' co-occurrence counts they are compared with in the report (cell jobs only;
    a cell that reuses its best tuning trial has none)."""
    embed = getattr(model, "label_embeddings", None)
    if embed is None:
        return {}

    Y_train = Y[job.train]
    Y_train = Y_train.toarray() if sparse.issparse(Y_train) else np.asarray(Y_train)
    Y_train = (Y_train > 0).astype(np.float64)
    return {"label_embeddings": np.asarray(embed(), dtype=np.float32),
            "cooccurrence": (Y_train.T @ Y_train).astype(np.int64),
            "n_train": np.asarray(len(Y_train))}


def _fit_and_evaluate(job: Job, model, X, Y, pruner) -> dict[str, Any]:
    train, val, test = job.train, job.val, job.test
    started = time.perf_counter()
    model.fit(X[train], Y[train], X[val], Y[val], on_epoch=pruner)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    s_val = np.asarray(model.predict_proba(X[val]), dtype=np.float64)
    s_test = np.asarray(model.predict_proba(X[test]), dtype=np.float64)
    predict_seconds = time.perf_counter() - started
    protocols = evaluate_protocols(Y[val], s_val, Y[test], s_test,
                                   val_grid=list(job.val_grid), oracle_grid=list(job.oracle_grid))
    info = dict(model.fit_info)
    epoch_seconds = info.get("epoch_seconds") or []
    return {
        "params": dict(model.params),
        "metrics": {p: v["metrics"] for p, v in protocols.items()},
        "thresholds": {p: v["thresholds"] for p, v in protocols.items()},
        "val_score": objective_value(Y[val], s_val, job.objective, list(job.val_grid)),
        "best_epoch": info.get("best_epoch"),
        "n_epochs": info.get("n_epochs"),
        "fit_seconds": float(info.get("fit_seconds", fit_seconds)),
        "predict_seconds": predict_seconds,
        "seconds_per_epoch": float(np.mean(epoch_seconds)) if len(epoch_seconds) else None,
        "device": provenance.device_name(job.device),
        "versions": provenance.library_versions(),
        "n_train": int(len(train)),
        "n_val": int(len(val)),
        "n_test": int(len(test)),
    }
