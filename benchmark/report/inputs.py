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
from benchmark.vocabulary import THRESHOLD_PROTOCOLS as PROTOCOLS  # noqa: F401 - the report's name for it

CELL_KEY = ["dataset", "model", "fraction", "seed"]

# Paper metrics first; the rest follow in this order when present.
MAIN_METRICS = ("ebF1", "miF1", "maF1", "P@1")
METRIC_ORDER = MAIN_METRICS + ("HA", "ACC", "P@3", "P@5", "LRAP", "RL")
# Losses: a smaller value is better. Every other metric is a score (larger is better).
LOWER_IS_BETTER = frozenset({"RL", "HL", "one_error", "coverage"})

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

    def __post_init__(self) -> None:
        missing = [c for c in CELL_KEY + ["status", "metrics"] if c not in self.runs.columns]
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
                            notes=self.notes, store=self.store)

    @property
    def done(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "done"]

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != "done"]

    def missing_cells(self) -> pd.DataFrame:
        """Planned cells that have no row at all (neither done nor failed) in the store."""
        if self.planned is None or self.planned.empty:
            return pd.DataFrame(columns=CELL_KEY + ["suite"])
        planned = self.planned.copy()
        planned["fraction"] = planned["fraction"].astype(float)
        planned["seed"] = planned["seed"].astype(int)
        planned = planned.drop_duplicates(CELL_KEY)
        have = self.runs[CELL_KEY].drop_duplicates()
        merged = planned.merge(have, on=CELL_KEY, how="left", indicator=True)
        missing = merged[merged["_merge"] == "left_only"].drop(columns="_merge")
        return missing.sort_values(CELL_KEY).reset_index(drop=True)


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
    return pd.DataFrame(rows, columns=CELL_KEY + ["metric", "value"])


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
    return selected.sort_values(CELL_KEY).reset_index(drop=True)


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
    from benchmark.store.results import ResultsStore  # imported late: the CLI's --help stays fast

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
