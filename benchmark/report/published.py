"""Published figures beside the harness's own (``report --published FILE.csv``).

The file has one row per published number: ``dataset, model, metric, protocol, value,
source`` (model = the harness's model name, protocol = the threshold protocol the number
was computed under, source = where it comes from). Each row is compared with the
harness's runs of the same dataset, model and protocol at training fraction 1 (published
numbers are full-data numbers): difference = harness mean - published value, and whether
it lies within two sample standard deviations of the harness's seeds. A row with no such
runs says so ("no matching runs") instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.evaluation.metrics import METRICS
from benchmark.report.formatting import Cell, TextTable
from benchmark.report.inputs import PROTOCOLS, ReportError, metrics_long

COLUMNS = ("dataset", "model", "metric", "protocol", "value", "source")
NO_MATCH = "no matching runs"


def load_published(source) -> pd.DataFrame:
    """Read and check a published-figures CSV (a path or a DataFrame); errors name the row."""
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), "published figures"
    else:
        path = Path(source)
        if not path.is_file():
            raise ReportError(f"published figures file {path} does not exist")
        frame, where = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True), str(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ReportError(f"{where} lacks column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    frame = frame[list(COLUMNS)].copy()
    for column in ("dataset", "model", "metric", "protocol", "source"):
        frame[column] = frame[column].astype(str).str.strip()
    values = pd.to_numeric(frame["value"], errors="coerce")
    for i, row in frame.iterrows():
        line = f"{where}, data row {i + 1}"
        if not np.isfinite(values[i]):
            raise ReportError(f"{line}: value {row['value']!r} is not a number")
        if row["protocol"] not in PROTOCOLS:
            raise ReportError(f"{line}: protocol {row['protocol']!r} is not one of {', '.join(PROTOCOLS)}")
        if row["metric"] not in METRICS:
            raise ReportError(f"{line}: metric {row['metric']!r} is not one of {', '.join(METRICS)}")
        if not row["dataset"] or not row["model"]:
            raise ReportError(f"{line}: dataset and model must not be empty")
    frame["value"] = values.astype(float)
    return frame.reset_index(drop=True)


def compare(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per published figure with the harness's mean, std, seeds, difference, verdict.

    ``within_2sd`` is True/False, or None when it cannot be judged (no runs, or one seed:
    no standard deviation).
    """
    longs = {p: metrics_long(runs, p) for p in set(published["protocol"])}
    rows = []
    for pub in published.itertuples(index=False):
        long = longs[pub.protocol]
        values = long[(long["dataset"] == pub.dataset) & (long["model"] == pub.model)
                      & (long["metric"] == pub.metric) & np.isclose(long["fraction"], 1.0)]["value"]
        n = len(values)
        mean = float(values.mean()) if n else np.nan
        std = float(values.std(ddof=1)) if n > 1 else np.nan
        diff = mean - pub.value if n else np.nan
        within = None if not np.isfinite(std) else bool(abs(diff) <= 2.0 * std + 1e-12)
        rows.append({**pub._asdict(), "published": pub.value, "ours_mean": mean, "ours_std": std, "n_seeds": n,
                     "difference": diff, "within_2sd": within})
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + ["published", "ours_mean", "ours_std", "n_seeds",
                                                          "difference", "within_2sd"])
    return frame.drop(columns="value")


def verdict(row) -> str:
    """Short text for one comparison: the difference and whether it lies within 2 sd."""
    if not row["n_seeds"]:
        return NO_MATCH
    judged = {True: "within 2 sd", False: "outside 2 sd", None: "one seed: no sd"}[row["within_2sd"]]
    return f"Δ {row['difference']:+.3f}, {judged}"


def comparison_table(comparison: pd.DataFrame) -> TextTable:
    """The index section's table: every published figure, matched or not."""
    rows = []
    for row in comparison.to_dict("records"):
        matched = row["n_seeds"] > 0
        ours = "" if not matched else (f"{row['ours_mean']:.3f} ± {row['ours_std']:.3f}" if row["n_seeds"] > 1
                                       else f"{row['ours_mean']:.3f} ± —")
        rows.append([Cell(row["dataset"]), Cell(row["model"]), Cell(row["metric"]), Cell(row["protocol"]),
                     Cell(f"{row['published']:.3f}", mean=row["published"]),
                     Cell(ours if matched else NO_MATCH, mean=row["ours_mean"] if matched else None,
                          std=row["ours_std"] if matched else None, n=int(row["n_seeds"])),
                     Cell(str(row["n_seeds"])), Cell(verdict(row)), Cell(row["source"])])
    return TextTable("Published figures beside the harness's (training fraction 1, same protocol)",
                     ["dataset", "model", "metric", "protocol", "published", "harness mean ± sd", "seeds",
                      "difference (harness − published)", "source"], rows)


def table_cells(comparison: pd.DataFrame, metric: str, protocol: str) -> dict[str, dict[str, str]]:
    """``{dataset: {model: text}}`` of the published figures for one paper table."""
    out: dict[str, dict[str, str]] = {}
    sub = comparison[(comparison["metric"] == metric) & (comparison["protocol"] == protocol)]
    for row in sub.to_dict("records"):
        out.setdefault(row["dataset"], {})[row["model"]] = f"{row['published']:.3f} ({verdict(row)})"
    return out
