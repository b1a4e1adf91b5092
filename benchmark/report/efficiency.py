"""Data efficiency: how much training data each model needs to match the best baseline.

The paper claims C-GMVAE matches other models' full-data performance with half the
data. Made measurable: for each dataset and metric the target is the best baseline's
(best non-focus model's) mean score at the full fraction; for each model, walk its mean
learning curve (mean over seeds per fraction, fractions ascending) to the first
fraction whose mean reaches the target and interpolate linearly between that point and
the previous one. A model whose smallest fraction already reaches the target gets
"≤ f" (the curve says nothing below its first point); one that never reaches it gets
"not reached".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report.inputs import higher_is_better


def fraction_to_reach(fractions: np.ndarray, means: np.ndarray, target: float, higher: bool = True) -> tuple[float, str]:
    """Smallest fraction at which the linear interpolation of the curve reaches ``target``.

    Returns ``(fraction, status)`` with status ``"interpolated"``, ``"at_first"`` (the
    first point already reaches it: an upper bound) or ``"not_reached"`` (NaN fraction).
    """
    order = np.argsort(fractions)
    x, y = np.asarray(fractions, float)[order], np.asarray(means, float)[order]
    if not higher:
        y, target = -y, -target
    reached = np.flatnonzero(y >= target - 1e-12)
    if reached.size == 0:
        return float("nan"), "not_reached"
    i = int(reached[0])
    if i == 0:
        return float(x[0]), "at_first"
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0)), "interpolated"


def data_efficiency(summary: pd.DataFrame, focus: str, metrics: list[str], table_fractions: dict[str, float]) -> pd.DataFrame:
    """One row per (dataset, metric, model): the target, its source and the fraction needed."""
    rows = []
    for (dataset, metric), group in summary[summary["metric"].isin(metrics)].groupby(["dataset", "metric"]):
        higher = higher_is_better(metric)
        full = group[np.isclose(group["fraction"], table_fractions[dataset])]
        baselines = full[full["model"] != focus]
        if baselines.empty:
            continue
        best = baselines.loc[baselines["mean"].idxmax() if higher else baselines["mean"].idxmin()]
        for model, curve in group.groupby("model"):
            fraction, status = fraction_to_reach(curve["fraction"].to_numpy(), curve["mean"].to_numpy(), best["mean"], higher)
            rows.append({
                "dataset": dataset, "metric": metric, "model": model,
                "target": float(best["mean"]), "target_model": best["model"],
                "target_fraction": float(best["fraction"]),
                "fraction_needed": fraction, "status": status,
                "fractions_measured": ",".join(f"{f:g}" for f in sorted(curve["fraction"])),
            })
    columns = ["dataset", "metric", "model", "target", "target_model", "target_fraction",
               "fraction_needed", "status", "fractions_measured"]
    return pd.DataFrame(rows, columns=columns)


def describe(row) -> str:
    """The cell text for the efficiency table."""
    if row["status"] == "not_reached":
        return "not reached"
    if row["status"] == "at_first":
        return f"≤ {row['fraction_needed']:.2f}"
    return f"{row['fraction_needed']:.2f}"
