"""The runner: expand a suite into cells, tune, train, evaluate, record.

A *cell* is (dataset, model, fraction, seed). Cells sharing (dataset, model,
fraction) form a *group*: its Optuna study (see :mod:`benchmark.tuning`) runs first,
then the best configuration is trained and evaluated once per seed.

Work is split in two halves so that any executor can run it:

- :func:`run_job` (worker side) receives plain data (dataset name or declaration,
  model name, params, fraction, seeds, grids) and returns plain data. It loads the
  dataset, makes the split (published train/test; validation = a fixed stratified
  share of the training file, never subsampled), takes the nested fraction subset of
  the training pool, fits, predicts the validation and test sets and evaluates the
  three threshold protocols. It never raises: failures come back with a traceback.
- :class:`Runner` (driver side) owns the results store and the studies: it asks
  trials, tells their outcome, claims cells, records rows, drives the progress
  display and stops cleanly on Ctrl-C.

Every trial is trained with model seed = the split seed (fixed, so a resumed study
stays comparable) and also evaluated on the test set; the cell (best configuration,
that seed), when the suite has it, then reuses the best trial's result
instead of training the same model again. The test scores of the other trials are
never looked at, so this saves one fit per group without leaking test data into the
choice of hyperparameters.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import provenance
from benchmark.store import ResultsStore, _clean, cell_key, now_iso

# ----------------------------------------------------------------------------- worker side

_DATA_CACHE: dict[str, Any] = {}
_DATA_CACHE_SIZE = 2
_WORKER_DEVICE: str | None = None  # set by executors that pin a worker to one GPU


def set_worker_device(device: str | None) -> None:
    global _WORKER_DEVICE
    _WORKER_DEVICE = device


def _dataset_from_payload(payload: dict[str, Any], data_dir: str | None):
    from benchmark.datasource import DatasetSpec, load_dataset

    declaration = payload.get("declaration")
    if declaration:
        spec = DatasetSpec.from_dict(dict(declaration), Path("/"))  # paths are absolute already
        return load_dataset(spec, data_dir=data_dir)
    return load_dataset(payload["name"], data_dir=data_dir)


def prepare_data(job: dict[str, Any]):
    """Dataset, split and nested fraction subsets for a job (cached per process)."""
    from benchmark.splits import make_split, nested_fractions

    key = json.dumps(
        [job["dataset"], job.get("data_dir"), job["split_seed"], job["val_size"], job["fractions"]],
        sort_keys=True,
    )
    if key not in _DATA_CACHE:
        if len(_DATA_CACHE) >= _DATA_CACHE_SIZE:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        dataset = _dataset_from_payload(job["dataset"], job.get("data_dir"))
        split = make_split(dataset, seed=job["split_seed"], val_size=job["val_size"])
        subsets = nested_fractions(dataset.Y[split.train], job["fractions"], seed=job["split_seed"])
        _DATA_CACHE[key] = (dataset, split, subsets)
    return _DATA_CACHE[key]


def _subset_for(subsets: dict, fraction: float) -> np.ndarray:
    for f, idx in subsets.items():
        if abs(float(f) - fraction) < 1e-9:
            return idx
    raise KeyError(f"fraction {fraction} not among {sorted(subsets)}")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one configuration; never raises (except KeyboardInterrupt).

    ``job["kind"]`` is ``"trial"`` (reports per-epoch validation scores to a pruner)
    or ``"cell"``. Returns ``{"state": "complete"|"pruned"|"failed", "val_score",
    "intermediate", "record", "error"}``.
    """
    import optuna

    from benchmark.model_api import get_model
    from benchmark.thresholds import best_over_grid, evaluate_protocols
    from benchmark.tuning import EpochPruner

    pruner = None
    started_at = now_iso()
    try:
        dataset, split, subsets = prepare_data(job)
        train = split.train[_subset_for(subsets, job["fraction"])]
        X, Y = dataset.X, dataset.Y
        cls = get_model(job["model"])
        device = job["device"]
        if device.startswith("cuda") and _WORKER_DEVICE:
            device = _WORKER_DEVICE
        model = cls(seed=job["seed"], device=device, n_threads=job.get("n_threads"), **job["params"])
        if job["kind"] == "trial" and job.get("pruning") and cls.trains_in_epochs:
            pruner = EpochPruner(job["pruning"], job.get("finished_trials", []))
        started = time.perf_counter()
        model.fit(X[train], Y[train], X[split.val], Y[split.val], on_epoch=pruner)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        s_val = np.asarray(model.predict_proba(X[split.val]), dtype=np.float64)
        s_test = np.asarray(model.predict_proba(X[split.test]), dtype=np.float64)
        predict_seconds = time.perf_counter() - started
        val_grid = job.get("val_grid")
        oracle_grid = job.get("oracle_grid")
        grids = {}
        if val_grid is not None:
            grids["val_grid"] = val_grid
        if oracle_grid is not None:
            grids["oracle_grid"] = oracle_grid
        from benchmark.thresholds import VAL_GRID

        val_score, _ = best_over_grid(Y[split.val], s_val, "maF1", val_grid if val_grid is not None else VAL_GRID)
        protocols = evaluate_protocols(Y[split.val], s_val, Y[split.test], s_test, **grids)
        info = dict(model.fit_info)
        epoch_seconds = info.get("epoch_seconds") or []
        record = {
            "params": dict(model.params),
            "metrics": {p: v["metrics"] for p, v in protocols.items()},
            "thresholds": {p: v["thresholds"] for p, v in protocols.items()},
            "val_score": float(val_score),
            "best_epoch": info.get("best_epoch"),
            "n_epochs": info.get("n_epochs"),
            "fit_seconds": float(info.get("fit_seconds", fit_seconds)),
            "predict_seconds": predict_seconds,
            "seconds_per_epoch": float(np.mean(epoch_seconds)) if len(epoch_seconds) else None,
            "device": provenance.device_name(device),
            "versions": provenance.library_versions(),
            "n_train": int(len(train)),
            "n_val": int(len(split.val)),
            "n_test": int(len(split.test)),
        }
        return {
            "state": "complete",
            "val_score": float(val_score) if math.isfinite(val_score) else 0.0,
            "intermediate": dict(pruner.intermediate) if pruner else {},
            "record": _clean(record),
            "started_at": started_at,
        }
    except optuna.TrialPruned:
        return {"state": "pruned", "intermediate": dict(pruner.intermediate) if pruner else {}}
    except Exception:  # noqa: BLE001 - a failing model is a result, recorded with its traceback
        return {
            "state": "failed",
            "started_at": started_at,
            "error": traceback.format_exc(),
            "intermediate": dict(pruner.intermediate) if pruner else {},
        }


# ----------------------------------------------------------------------------- driver side


@dataclass
class Group:
    """The cells of one (dataset, model, fraction): a study (maybe) then one fit per seed."""

    dataset: Any  # suite.DatasetEntry
    model: str
    fraction: float
    seeds: list[int]  # seeds still to compute
    base_params: dict[str, Any]
    search_space: dict[str, Any]
    tuned: bool
    study: Any = None  # tuning.StudyDriver once started
    params: dict[str, Any] | None = None  # the configuration the seeds use
    reuse: dict[str, Any] | None = None  # best trial's record, for the first seed
    tuning_error: str | None = None  # why no configuration could be chosen
    last_trial_error: str | None = None
    pending_seeds: list[int] = field(default_factory=list)
    started: bool = False
    ready: bool = False  # the configuration is decided; pending_seeds are the cells left to submit
    skipped: bool = False

    @property
    def finished(self) -> bool:
        """Nothing left to submit (the caller checks that nothing is in flight)."""
        return self.skipped or (self.started and (not self.seeds or (self.ready and not self.pending_seeds)))

    @property
    def label(self) -> str:
        return f"{self.dataset.name}/{self.model}/{self.fraction:g}"


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
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


class Runner:
    """Drive one suite on one executor, writing one store."""

    HEARTBEAT_SECONDS = 60.0

    def __init__(self, suite, store: ResultsStore, executor, progress, data_dir: str | None = None,
                 device: str = "cpu", n_threads: int | None = None):
        self.suite = suite
        self.store = store
        self.executor = executor
        self.progress = progress
        self.data_dir = data_dir
        self.device = device
        self.n_threads = n_threads
        self.summary = RunSummary(notices=list(suite.notices))
        self.git_commit = provenance.git_commit()
        self.trial_seed = suite.split_seed  # trials train with a fixed model seed

    # ------------------------------------------------------------------ planning
    def groups(self, done: set) -> list[Group]:
        from benchmark.model_api import get_model

        groups = []
        for entry in self.suite.datasets:
            for config in self.suite.models:
                cls = get_model(config.name)
                base: dict[str, Any] = {}
                if self.suite.epochs is not None and "epochs" in cls.defaults:
                    base["epochs"] = self.suite.epochs
                if config.fixed:
                    base.update(config.params)
                space = {k: d for k, d in cls.search_space.items() if k not in base}
                tuned = not config.fixed and self.suite.trials > 0 and bool(space)
                for fraction in self.suite.fractions:
                    todo = [s for s in self.suite.seeds if cell_key(entry.name, config.name, fraction, s) not in done]
                    if todo:
                        groups.append(Group(entry, config.name, fraction, todo, base, space, tuned))
        return groups

    def _job(self, group: Group, kind: str, seed: int, params: dict[str, Any]) -> dict[str, Any]:
        suite = self.suite
        return {
            "kind": kind,
            "dataset": group.dataset.payload(),
            "data_dir": self.data_dir,
            "model": group.model,
            "params": params,
            "fraction": group.fraction,
            "fractions": suite.fractions,
            "seed": seed,
            "split_seed": suite.split_seed,
            "val_size": suite.val_size,
            "device": self.device,
            "n_threads": self.n_threads,
            "val_grid": suite.val_grid,
            "oracle_grid": suite.oracle_grid,
        }

    def _start(self, group: Group) -> bool:
        """Claim the group's study and cells; open its study. False: another run has them."""
        from benchmark.tuning import StudyDriver, study_name

        keys = [self.store.claim_key(group.dataset.name, group.model, group.fraction)]
        keys += [self.store.claim_key(group.dataset.name, group.model, group.fraction, s) for s in group.seeds]
        taken = []
        for key in keys:
            if not self.store.claim(key):
                for k in taken:
                    self.store.release(k)
                group.skipped = True
                self.summary.left_to_others.append(group.label)
                self.progress.notice(f"{group.label}: claimed by another run, left to it")
                return False
            taken.append(key)
        # a cell may have been finished by another run since we planned
        done = self.store.done_cells()
        group.seeds = [s for s in group.seeds if cell_key(group.dataset.name, group.model, group.fraction, s) not in done]
        group.started = True
        if group.tuned and group.seeds:
            name = study_name(group.dataset.name, group.model, group.fraction, self.suite.split_seed,
                              self.suite.val_size, self.suite.epochs)
            group.study = StudyDriver(self.store.url, name, group.search_space, self.suite.trials,
                                      seed=self.suite.split_seed)
        else:
            group.params = dict(group.base_params)
            group.pending_seeds = list(group.seeds)
            group.ready = True
        return True

    def _finish_tuning(self, group: Group) -> None:
        best = group.study.best()
        if best is None:
            group.tuning_error = "tuning produced no complete trial; last trial error:\n" + (
                group.last_trial_error or "none"
            )
            group.params = None
        else:
            group.params = {**group.base_params, **best.params}
            group.reuse = best.user_attrs.get("cell_record")
        group.pending_seeds = list(group.seeds)
        group.ready = True

    def _next_job(self, group: Group) -> tuple[str, Any, dict] | None:
        """The next job of a started group, or None when it has nothing to submit now."""
        if group.study is not None and not group.ready:
            if group.study.can_ask():
                number, sampled = group.study.ask()
                job = self._job(group, "trial", self.trial_seed, {**group.base_params, **sampled})
                job["pruning"] = {
                    "pruner": self.suite.pruner,
                    "startup": self.suite.pruner_startup_trials,
                    "warmup": self.suite.pruner_warmup_epochs,
                    "max_epochs": group.base_params.get("epochs"),
                }
                job["finished_trials"] = group.study.finished_dicts()
                return ("trial", number, job)
            if group.study.done():
                self._finish_tuning(group)
            else:
                return None
        while group.pending_seeds:
            seed = group.pending_seeds.pop(0)
            if group.params is None:  # tuning failed: every seed fails with its reason
                self._record(group, seed, {"state": "failed", "error": group.tuning_error})
                continue
            if group.reuse is not None and seed == self.trial_seed:
                self._record(group, seed, {"state": "complete", "record": group.reuse}, reused=True)
                continue
            return ("cell", seed, self._job(group, "cell", seed, dict(group.params)))
        return None

    # ------------------------------------------------------------------ results
    def _record(self, group: Group, seed: int, result: dict[str, Any], reused: bool = False) -> None:
        row = dict(result.get("record") or {})
        started_at = result.get("started_at") or row.pop("started_at", None)
        row.update(
            dataset=group.dataset.name, model=group.model, fraction=group.fraction, seed=seed,
            status="done" if result["state"] == "complete" else "failed",
            error=None if result["state"] == "complete" else result.get("error"),
            git_commit=self.git_commit, suite=self.suite.name, suite_hash=self.suite.hash,
            n_trials=group.study.counted() if group.study is not None else 0,
            started_at=started_at or now_iso(),
        )
        if row["status"] == "failed" and not row.get("params"):
            row["params"] = group.params or group.base_params
        self.store.record(row)
        if row["status"] == "done":
            self.summary.done += 1
        else:
            self.summary.failed.append(((group.dataset.name, group.model, group.fraction, seed), row["error"] or ""))
        self.progress.cell_finished(row, reused=reused)

    def _on_result(self, kind: str, group: Group, ident: Any, result: dict[str, Any]) -> None:
        if kind == "trial":
            attrs = {}
            if result["state"] == "complete":
                attrs["cell_record"] = {**result["record"], "started_at": result.get("started_at")}
            elif result["state"] == "failed":
                attrs["error"] = result.get("error", "")[-4000:]
                group.last_trial_error = result.get("error")
            group.study.tell(ident, result["state"], result.get("val_score"),
                             result.get("intermediate", {}), attrs)
            self.summary.trials += 1
            self.summary.fits += 1
            self.summary.pruned += result["state"] == "pruned"
            self.progress.trial_finished(group.label, ident, result)
        else:
            self.summary.fits += 1
            self._record(group, ident, result)

    # ------------------------------------------------------------------ main loop
    def fetch_datasets(self) -> None:
        """Download missing catalog files once, in the driver, before any cell runs.

        A missing file then stops the run with one clear error (how to get it)
        instead of failing every cell of the dataset, and workers never race to
        download the same file.
        """
        from benchmark.datasource import fetch_file, get_spec

        for entry in self.suite.datasets:
            if entry.declaration:
                continue
            spec = get_spec(entry.name)
            if not spec.is_available(self.data_dir):
                self.progress.notice(f"fetching {entry.name}")
                for ref in spec.files.values():
                    fetch_file(ref, self.data_dir, dataset=entry.name)

    def run(self) -> RunSummary:
        started = time.monotonic()
        self.fetch_datasets()
        cells = self.suite.cells()
        self.store.plan(cells, self.suite.name, self.suite.hash)
        done = self.store.done_cells()
        self.summary.planned = len(cells)
        self.summary.already_done = sum(cell_key(*c) in done for c in cells)
        groups = self.groups(done)
        todo = sum(len(g.seeds) for g in groups)
        self.progress.start(total=todo, already_done=self.summary.already_done, planned=len(cells),
                            notices=self.summary.notices)
        in_flight: dict[Any, tuple[str, Group, Any, str]] = {}
        heartbeat = self._start_heartbeat()
        try:
            while True:
                self._fill(groups, in_flight)
                if not in_flight:
                    if all(g.finished for g in groups):
                        break
                    stuck = [g.label for g in groups if not g.finished]
                    raise RuntimeError(f"runner made no progress on {stuck}")  # a bug, never expected
                for handle, result in self.executor.wait(timeout=self.HEARTBEAT_SECONDS / 2):
                    kind, group, ident, label = in_flight.pop(handle)
                    self.progress.job_finished(label)
                    self._on_result(kind, group, ident, result)
        except KeyboardInterrupt:
            self.summary.interrupted = True
            self._record_finished(in_flight)
            self.executor.shutdown(cancel=True)
            for group in groups:
                if group.study is not None:
                    group.study.abandon_in_flight()
        finally:
            heartbeat.set()
            self.store.release_all()
            self.summary.seconds = time.monotonic() - started
        return self.summary

    def _start_heartbeat(self) -> threading.Event:
        """Refresh this run's claims in a background thread, even during a long fit."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.HEARTBEAT_SECONDS):
                try:
                    self.store.refresh_claims()
                except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                    pass

        threading.Thread(target=beat, name="mlcbench-claims", daemon=True).start()
        return stop

    def _record_finished(self, in_flight: dict) -> None:
        """On Ctrl-C: keep the results workers already finished (trials and cells)."""
        try:
            for handle, result in self.executor.collect_finished():
                kind, group, ident, _label = in_flight.pop(handle)
                self._on_result(kind, group, ident, result)
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once
            pass

    def _fill(self, groups: list[Group], in_flight: dict) -> None:
        """Submit jobs until the executor is busy, earliest groups first."""
        for group in groups:
            if len(in_flight) >= self.executor.capacity:
                return
            if group.skipped:
                continue
            if not group.started and not self._start(group):
                continue
            while len(in_flight) < self.executor.capacity:
                nxt = self._next_job(group)
                if nxt is None:
                    break
                kind, ident, job = nxt
                label = f"{group.label}/" + (f"trial {ident}" if kind == "trial" else f"seed {ident}")
                handle = self.executor.submit(job)
                in_flight[handle] = (kind, group, ident, label)
                self.progress.job_started(label)


def dry_run_rows(suite, store: ResultsStore) -> list[tuple[str, str, float, int, str]]:
    """Every cell of the suite with its stored status (done, failed or todo)."""
    status = store.cell_status()
    return [(*cell, status.get(cell_key(*cell), "todo")) for cell in suite.cells()]


def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))
