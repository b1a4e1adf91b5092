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

PROTOCOLS = ("val", "fixed", "oracle")
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

    def __post_init__(self) -> None:
        missing = [c for c in CELL_KEY + ["status", "metrics"] if c not in self.runs.columns]
        if missing:
            raise ReportError(f"runs frame lacks column(s) {', '.join(missing)}")
        self.runs = self.runs.copy()
        self.runs["fraction"] = self.runs["fraction"].astype(float)
        self.runs["seed"] = self.runs["seed"].astype(int)

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


def inputs_from_store(results: str | Path, suite: str | None = None) -> ReportInputs:
    """Read a results store (a directory or an SQLAlchemy URL) without creating one."""
    location = str(results)
    if "://" not in location:
        directory = Path(location)
        if not (directory / "mlcbench.sqlite").exists():
            raise ReportError(
                f"no results store at {directory}/ (expected {directory / 'mlcbench.sqlite'}); "
                "run `python -m benchmark run --suite smoke` first"
            )
    from benchmark.store import ResultsStore  # imported late: the CLI's --help stays fast

    store = ResultsStore(location)
    runs = store.runs_frame()
    try:
        planned = store.planned_frame()
    except (AttributeError, NotImplementedError):
        planned = None
    if suite is not None:
        runs = runs[runs["suite"] == suite]
        if planned is not None and "suite" in planned.columns:
            planned = planned[planned["suite"] == suite]
    return ReportInputs(runs=runs.reset_index(drop=True), planned=planned, source=location)
