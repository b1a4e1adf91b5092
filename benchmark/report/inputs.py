"""What a report is built from: the runs frame (one row per cell) and the planned cells.

Everything downstream works on plain pandas DataFrames in the results store's
``runs_frame`` layout, so reports can be built (and tested) from frames without a
database, and the store is read in exactly one place (:func:`inputs_from_store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.evaluation.metrics import LOWER_IS_BETTER
from benchmark.vocabulary import THRESHOLD_PROTOCOLS as PROTOCOLS  # noqa: F401 - the report's name for it

CELL_COORDINATES = ["dataset", "model", "fraction", "seed"]

# Paper metrics first; the rest follow in this order when present.
MAIN_METRICS = ("ebF1", "miF1", "maF1", "P@1")
METRIC_ORDER = MAIN_METRICS + ("HA", "ACC", "P@3", "P@5", "LRAP", "RL")
# Losses: a smaller value is better. Every other metric is a score (larger is better).

METRIC_TITLES = {
    "ebF1": "example-based F1",
    "miF1": "micro-F1",
    "maF1": "macro-F1",
    "P@1": "precision@1",
    "P@3": "precision@3",
    "P@5": "precision@5",
    "HA": "Hamming accuracy",
    "ACC": "subset accuracy",
    "LRAP": "label ranking average precision",
    "RL": "ranking loss (lower is better)",
}

# The model under study: data efficiency and the paired tests compare it with the rest.
FOCUS_MODEL = "cgmvae"
# Columns in the paper's spirit: simple baselines first, the model under study last.
MODEL_ORDER = ("prior", "br", "cc", "ecc", "mlknn", "mlp", "mpvae", FOCUS_MODEL)


class ReportError(BenchmarkError):
    """The results cannot be turned into a report (no store, no finished runs, ...)."""


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def order_metrics(metrics) -> list[str]:
    """Known metrics in the paper's order, unknown ones alphabetically after them."""
    present = set(metrics)
    known = [m for m in METRIC_ORDER if m in present]
    return known + sorted(present - set(known))


def order_models(models, focus: str = FOCUS_MODEL) -> list[str]:
    """Baselines in a fixed order, unknown models alphabetically, the focus model last."""
    present = set(models)
    known = [m for m in MODEL_ORDER if m in present and m != focus]
    others = sorted(present - set(MODEL_ORDER) - {focus})
    return known + others + ([focus] if focus in present else [])


@dataclass
class ReportInputs:
    """The runs (done and failed) and, when the store knows them, the planned cells."""

    runs: pd.DataFrame
    planned: pd.DataFrame | None = None
    source: str = "frames"
    notes: list[str] = field(default_factory=list)
    store: object = None  # the ResultsStore read, when there is one (artifacts)
    # Several stores merged (``merge_inputs``): one line per store, one per left-out group.
    store_summary: list[str] = field(default_factory=list)
    merge_notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        missing = [c for c in CELL_COORDINATES + ["status", "metrics"] if c not in self.runs.columns]
        if missing:
            raise ReportError(f"runs frame lacks column(s) {', '.join(missing)}")
        self.runs = self.runs.copy()
        self.runs["fraction"] = self.runs["fraction"].astype(float)
        self.runs["seed"] = self.runs["seed"].astype(int)

    def select_models(self, models: list[str]) -> "ReportInputs":
        """Only these models (``report --models``); an unknown name is an error naming the stored ones."""
        stored = set(self.runs["model"])
        unknown = sorted(set(models) - stored)
        if unknown:
            raise ReportError(f"no runs of model(s) {', '.join(unknown)} in the store; stored: {', '.join(sorted(stored))}")
        planned = self.planned
        if planned is not None and not planned.empty:
            planned = planned[planned["model"].isin(models)]
        return ReportInputs(runs=self.runs[self.runs["model"].isin(models)], planned=planned, source=self.source,
                            notes=self.notes, store=self.store, store_summary=self.store_summary,
                            merge_notes=self.merge_notes)

    @property
    def done(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "done"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != "done"]

    def missing_cells(self) -> pd.DataFrame:
        """Planned cells that have no row at all (neither done nor failed) in the store."""
        if self.planned is None or self.planned.empty:
            return pd.DataFrame(columns=CELL_COORDINATES + ["suite"])
        planned = self.planned.copy()
        planned["fraction"] = planned["fraction"].astype(float)
        planned["seed"] = planned["seed"].astype(int)
        planned = planned.drop_duplicates(CELL_COORDINATES)
        have = self.runs[CELL_COORDINATES].drop_duplicates()
        merged = planned.merge(have, on=CELL_COORDINATES, how="left", indicator=True)
        missing = merged[merged["_merge"] == "left_only"].drop(columns="_merge")
        return missing.sort_values(CELL_COORDINATES).reset_index(drop=True)


def metrics_long(runs: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """One row per (finished cell, metric) under ``protocol``: the frame every table uses.

    Read from the runs frame's ``metrics`` column (protocol -> metric -> value) so that
    the tables, the long CSV and the statistics all see the same numbers.
    """
    rows = []
    for run in runs[runs["status"] == "done"].itertuples(index=False):
        by_protocol = run.metrics if isinstance(run.metrics, dict) else {}
        for metric, value in (by_protocol.get(protocol) or {}).items():
            if value is None or not np.isfinite(value):
                continue
            rows.append((run.dataset, run.model, float(run.fraction), int(run.seed), metric, float(value)))
    return pd.DataFrame(rows, columns=CELL_COORDINATES + ["metric", "value"])


def full_fraction(long: pd.DataFrame) -> dict[str, float]:
    """Per dataset, the fraction the tables use: 1.0, or the largest one with results."""
    return {name: float(group["fraction"].max()) for name, group in long.groupby("dataset")}


def select_configurations(runs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Per (suite, dataset, model), the rows of the latest configuration only.

    A store may hold cells of several configurations (another budget, another search
    space); mixing them in one mean would be wrong. The latest one (by finish time) is
    kept and the others are listed in ``notes``. Rows without a config (frames built by
    hand) are kept as they are.
    """
    if "config" not in runs.columns or runs.empty:
        return runs
    keep = []
    # Rows migrated from a v1 store carry legacy-<suite hash>; v1 treated them all as one
    # configuration (its cells were keyed without one), so they are selected together.
    family = runs["config"].where(~runs["config"].astype(str).str.startswith("legacy-"), "legacy")
    for (suite, dataset, model), rows in runs.assign(_family=family).groupby(["suite", "dataset", "model"],
                                                                           dropna=False, sort=True):
        stamps = rows["finished_at"].fillna("") if "finished_at" in rows.columns else pd.Series("", index=rows.index)
        latest = rows.loc[stamps.idxmax(), "_family"] if len(rows) else None
        chosen = rows[rows["_family"] == latest].drop(columns="_family")
        dropped = len(rows) - len(chosen)
        if dropped:
            notes.append(f"{suite}/{dataset}/{model}: {dropped} row(s) of older configuration(s) "
                         f"{', '.join(sorted(set(rows['_family']) - {latest}))} not shown (latest: {latest})")
        keep.append(chosen)
    selected = pd.concat(keep) if keep else runs.iloc[:0]
    _note_mixed_settings(selected, notes)
    return selected.sort_values(CELL_COORDINATES).reset_index(drop=True)


def _note_mixed_settings(runs: pd.DataFrame, notes: list[str]) -> None:
    """Say so when the tables combine cells of different budgets or protocols."""
    if "settings" not in runs.columns:
        return
    budgets = set()
    for settings in runs["settings"]:
        if isinstance(settings, dict) and settings:
            tuning, split = settings.get("tuning", {}), settings.get("split", {})
            budgets.add((tuning.get("trials"), tuning.get("objective"), split.get("resample"), split.get("protocol")))
    tuned_budgets = {b for b in budgets if b[0]}  # untuned models (trials 0) do not make a mix
    if len(tuned_budgets) > 1:
        shown = "; ".join(f"trials={t}, objective={o}, resample={r}, protocol={p}" for t, o, r, p in sorted(tuned_budgets, key=str))
        notes.append(f"these tables mix configurations: {shown}")


def store_location(results: str | Path) -> str:
    """The store a report reads: a URL, a ``.sqlite`` file, or a directory holding one."""
    location = str(results)
    if "://" in location:
        return location
    path = Path(location)
    file = path if path.suffix in (".sqlite", ".db", ".sqlite3") else path / "mlcbench.sqlite"
    if not file.is_file():
        raise ReportError(f"no results store at {file}; run `python -m benchmark run --suite smoke` first "
                          "(or pass --results DIR|FILE.sqlite|URL)")
    return str(file) if file is path else location


def inputs_from_store(results: str | Path, suite: str | None = None, all_configs: bool = False) -> ReportInputs:
    """Read a results store (a directory, an SQLite file or an SQLAlchemy URL) without creating one."""
    location = store_location(results)
    from benchmark.store.results import (
        ResultsStore,  # imported late: the CLI's --help stays fast
    )

    store = ResultsStore(location, create=False)
    runs = store.runs_frame()
    planned = store.planned_frame()
    if suite is not None:
        runs = runs[runs["suite"] == suite]
        planned = planned[planned["suite"] == suite]
    notes: list[str] = []
    if not all_configs:
        runs = select_configurations(runs, notes)
        if "config" in planned.columns and not runs.empty:
            keep = planned["config"].isin(set(runs["config"])) | (planned["config"] == "")
            planned = planned[keep | ~planned["suite"].isin(set(runs["suite"]))]
    return ReportInputs(runs=runs.reset_index(drop=True), planned=planned, source=location, notes=notes, store=store)


# ---------------------------------------------------------------- several stores, one report

# What makes two stores' cells of a dataset comparable: the same data, split and thresholds.
# Budgets and search spaces may differ (a new model brings its own); the header notes a mix.
COMPARABLE = (
    ("dataset files", lambda s: s["dataset"]["files"]),
    ("split seed", lambda s: s["split"]["split_seed"]),
    ("validation share", lambda s: s["split"]["val_size"]),
    ("resample mode", lambda s: s["split"]["resample"]),
    ("split protocol", lambda s: s["split"].get("protocol")),
    ("threshold grids", lambda s: s["grids"]),
)


def comparability(settings) -> dict | None:
    """The settings two cells must share to sit in one table; None when the store did not record them."""
    if not isinstance(settings, dict):
        return None
    try:
        return {name: get(settings) for name, get in COMPARABLE}
    except (KeyError, TypeError):
        return None


def _short_value(name: str, value) -> str:
    if name == "dataset files" and isinstance(value, dict):
        return "sha256 " + ", ".join(f"{k} {str(v)[:8]}" for k, v in sorted(value.items()))
    if name == "threshold grids" and isinstance(value, dict):
        return "; ".join(f"{k} {min(v):g}..{max(v):g} ({len(v)} points)" for k, v in sorted(value.items()) if v)
    return str(value)


def _differences(mine: dict, reference: dict, where: str) -> str:
    """``split seed 1 here, 0 in <reference store>``; several differences joined by ``;``."""
    return "; ".join(f"{name} {_short_value(name, mine[name])} here, {_short_value(name, reference[name])} in {where}"
                     for name, _ in COMPARABLE if mine[name] != reference[name])


class _Stores:
    """Artifacts of a merged report: each relative path is read from the first store that has it."""

    def __init__(self, stores):
        self.stores = [s for s in stores if s is not None]

    def load_artifacts(self, relative: str) -> dict:
        for store in self.stores:
            if (Path(store.artifacts_dir) / relative).is_file():
                return store.load_artifacts(relative)
        raise KeyError(relative)


def merge_inputs(parts: list[ReportInputs]) -> ReportInputs:
    """One report's inputs from several stores' (the first listed is the reference).

    Per dataset, the reference is the first store with finished cells of it: its most common
    comparability settings and its (fraction, seed) pairs. A later store's cell joins only if
    it has the same settings, a (fraction, seed) the reference has, and a (dataset, model,
    fraction, seed) no earlier store has; every other cell is left out, and ``notes`` get one
    line per (store, dataset, reason) saying which and why.
    """
    import json

    references: dict[str, tuple[dict, set, str]] = {}
    kept_runs, kept_planned, notes, left_out, summary = [], [], [], [], []
    seen: set[tuple] = set()
    for part in parts:
        runs = part.runs.copy()
        signatures = [comparability(s) for s in runs.get("settings", pd.Series([None] * len(runs), index=runs.index))]
        keys = [json.dumps(s, sort_keys=True, default=str) if s is not None else None for s in signatures]
        runs["_signature"] = keys
        done = runs[runs["status"] == "done"]
        for dataset, rows in done.groupby("dataset"):
            if dataset in references or rows["_signature"].isna().all():
                continue
            common = rows["_signature"].dropna().value_counts().index[0]
            pairs = set(zip(rows["fraction"].round(9), rows["seed"]))
            references[dataset] = (json.loads(common), pairs, part.source)
        reasons = []
        for row, signature in zip(runs.itertuples(index=False), signatures):
            reference = references.get(row.dataset)
            reason = None
            if reference is not None and reference[2] != part.source:
                if signature is None:
                    reason = "no comparability settings recorded (a store written before cell identities)"
                elif signature != reference[0]:
                    reason = _differences(signature, reference[0], reference[2])
                elif (round(row.fraction, 9), row.seed) not in reference[1]:
                    reason = f"{reference[2]} has no cell of this dataset at their (fraction, seed)"
            key = (row.dataset, row.model, round(row.fraction, 9), row.seed)
            if reason is None and key in seen:
                reason = "the same cell is already in an earlier store (the first listed wins)"
            reasons.append(reason)
        runs["_reason"] = reasons
        kept = runs[runs["_reason"].isna()]
        seen |= set(zip(kept["dataset"], kept["model"], kept["fraction"].round(9), kept["seed"]))
        left = runs[runs["_reason"].notna()]
        for (dataset, reason), rows in left.groupby(["dataset", "_reason"], sort=True):
            models = ", ".join(sorted(set(rows["model"])))
            at = (f" at fraction(s) {', '.join(f'{f:g}' for f in sorted(set(rows['fraction'])))}, "
                  f"seed(s) {', '.join(str(x) for x in sorted(set(rows['seed'])))}")
            left_out.append(f"{part.source}: {len(rows)} cell(s) of {dataset} ({models}){at} left out: {reason}")
        summary.append(f"{part.source}: {len(kept)} cell(s) used ({', '.join(sorted(set(kept['model']))) or 'none'}), "
                       f"{len(left)} left out")
        kept_runs.append(kept.drop(columns=["_signature", "_reason"]))
        planned = part.planned
        if planned is not None and not planned.empty and not left.empty:
            dropped = set(zip(left["dataset"], left["model"], left["fraction"].round(9), left["seed"]))
            mask = [(d, m, round(float(f), 9), int(s)) not in dropped
                    for d, m, f, s in zip(planned["dataset"], planned["model"], planned["fraction"], planned["seed"])]
            planned = planned[mask]
        if planned is not None:
            kept_planned.append(planned)
        notes += [f"{part.source}: {note}" for note in part.notes]
    runs = pd.concat(kept_runs, ignore_index=True) if kept_runs else parts[0].runs.iloc[:0]
    planned = pd.concat(kept_planned, ignore_index=True) if kept_planned else None
    _note_mixed_settings(runs, notes)
    merged = ReportInputs(runs=runs.sort_values(CELL_COORDINATES).reset_index(drop=True), planned=planned,
                          source=" + ".join(p.source for p in parts), notes=notes,
                          store=_Stores([p.store for p in parts]), store_summary=summary, merge_notes=left_out)
    return merged


def inputs_from_stores(locations, suite: str | None = None, all_configs: bool = False) -> ReportInputs:
    """Several stores (``report --results A --results B``) merged where their cells are comparable."""
    locations = list(locations)
    if len(locations) == 1:
        return inputs_from_store(locations[0], suite=suite, all_configs=all_configs)
    return merge_inputs([inputs_from_store(loc, suite=suite, all_configs=all_configs) for loc in locations])
