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


def _full_data_baselines(group: pd.DataFrame, focus: str, full_fraction: float, higher: bool):
    """The other models' rows at the table's (full-data) fraction, and the best of them
    (None when there is no other model)."""
    full = group[np.isclose(group["fraction"], full_fraction)]
    baselines = full[full["model"] != focus]
    if baselines.empty:
        return baselines, None
    return baselines, baselines.loc[baselines["mean"].idxmax() if higher else baselines["mean"].idxmin()]


def data_efficiency(summary: pd.DataFrame, focus: str, metrics: list[str], table_fractions: dict[str, float]) -> pd.DataFrame:
    """One row per (dataset, metric, model): the target, its source and the fraction needed."""
    rows = []
    for (dataset, metric), group in summary[summary["metric"].isin(metrics)].groupby(["dataset", "metric"]):
        higher = higher_is_better(metric)
        _, best = _full_data_baselines(group, focus, table_fractions[dataset], higher)
        if best is None:
            continue
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


# ---------------------------------------------------------------- per baseline

CLAIM_FRACTION = 0.5  # the paper's claim: full-data performance of other models with half the data
BEST_BASELINE = "best baseline"  # the row comparing with the best non-focus model per dataset


def _seed_curves(long: pd.DataFrame, dataset: str, metric: str, model: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{seed: (fractions, values)}`` of one model's learning curve on one dataset."""
    rows = long[(long["dataset"] == dataset) & (long["metric"] == metric) & (long["model"] == model)]
    return {int(seed): (g["fraction"].to_numpy(float), g["value"].to_numpy(float))
            for seed, g in rows.groupby("seed")}


def per_baseline(long: pd.DataFrame, summary: pd.DataFrame, focus: str, metrics: list[str],
                 table_fractions: dict[str, float]) -> pd.DataFrame:
    """The fraction the focus model needs to reach each other model's full-data mean.

    One row per (dataset, metric, baseline), plus one per (dataset, metric) for the best
    baseline (``baseline = "best baseline"``, ``target_model`` naming it). ``fraction_needed``
    and ``status`` come from the focus model's mean curve (as :func:`fraction_to_reach`);
    ``seed_fractions`` / ``seed_statuses`` from each seed's own curve against the same target,
    so their spread shows how much the answer depends on which training subset a seed drew.
    """
    rows = []
    focus_summary = summary[summary["model"] == focus]
    for (dataset, metric), group in summary[summary["metric"].isin(metrics)].groupby(["dataset", "metric"]):
        curve = focus_summary[(focus_summary["dataset"] == dataset) & (focus_summary["metric"] == metric)]
        if curve.empty:
            continue
        higher = higher_is_better(metric)
        baselines, best = _full_data_baselines(group, focus, table_fractions[dataset], higher)
        if best is None:
            continue
        focus_full = curve[np.isclose(curve["fraction"], table_fractions[dataset])]["mean"]
        seeds = _seed_curves(long, dataset, metric, focus)
        targets = [(BEST_BASELINE, best)] + [(row["model"], row) for _, row in baselines.iterrows()]
        for name, target_row in targets:
            target = float(target_row["mean"])
            fraction, status = fraction_to_reach(curve["fraction"].to_numpy(), curve["mean"].to_numpy(), target, higher)
            per_seed = {s: fraction_to_reach(x, y, target, higher) for s, (x, y) in sorted(seeds.items())}
            rows.append({
                "dataset": dataset, "metric": metric, "focus": focus, "baseline": name,
                "target_model": target_row["model"], "target": target,
                "focus_full": float(focus_full.iloc[0]) if len(focus_full) else np.nan,
                "fraction_needed": fraction, "status": status,
                "n_seeds": len(per_seed),
                "seed_fractions": ";".join("" if np.isnan(f) else f"{f:.6g}" for f, _ in per_seed.values()),
                "seed_statuses": ";".join(st for _, st in per_seed.values()),
                "seeds": ";".join(str(s) for s in per_seed),
                "fractions_measured": ",".join(f"{f:g}" for f in sorted(curve["fraction"])),
            })
    columns = ["dataset", "metric", "focus", "baseline", "target_model", "target", "focus_full", "fraction_needed",
               "status", "n_seeds", "seed_fractions", "seed_statuses", "seeds", "fractions_measured"]
    return pd.DataFrame(rows, columns=columns)


def reached_within(row, limit: float = CLAIM_FRACTION) -> bool:
    """Whether the mean curve reaches the target at a fraction <= ``limit`` (an at-first bound counts)."""
    return row["status"] != "not_reached" and row["fraction_needed"] <= limit + 1e-9


def _short(fraction: float, status: str) -> str:
    if status == "not_reached":
        return "n.r."
    return f"≤{fraction:.2f}" if status == "at_first" else f"{fraction:.2f}"


def seed_spread(row) -> str:
    """``lowest–highest`` of the per-seed fractions (``n.r.``: some seed's curve never reaches it)."""
    statuses = [s for s in str(row["seed_statuses"]).split(";") if s]
    if len(statuses) < 2:
        return ""
    values = [float(v) if v else np.inf for v in str(row["seed_fractions"]).split(";")]
    order = np.argsort(values, kind="stable")
    low = _short(values[order[0]], statuses[order[0]])
    high = _short(values[order[-1]], statuses[order[-1]])
    return "" if low == high else f"{low}–{high}"  # every seed agrees: the cell says it already


def describe_with_spread(row, spread: bool) -> str:
    """Table cell: the mean curve's fraction, then the seeds' range when ``spread``."""
    text = describe(row)
    extra = seed_spread(row) if spread else ""
    return f"{text} ({extra})" if extra else text


def verdicts(frame: pd.DataFrame, metrics: list[str], focus: str, limit: float = CLAIM_FRACTION) -> dict[str, str]:
    """Per dataset one sentence: of how many models the focus reaches the full-data mean with <= limit."""
    out = {}
    rows = frame[frame["baseline"] != BEST_BASELINE]
    for dataset, group in rows.groupby("dataset"):
        parts = []
        for metric in metrics:
            sub = group[group["metric"] == metric]
            if sub.empty:
                continue
            hits = int(sum(reached_within(r, limit) for r in sub.to_dict("records")))
            parts.append(f"{hits} of {len(sub)}{' models' if not parts else ''} on {metric}")
        if parts:
            out[dataset] = (f"with ≤ {limit:.0%} of the training data {focus} reaches the full-data "
                            f"score of {', '.join(parts)}")
    return out


def plot_heatmap(frame: pd.DataFrame, metrics: list[str], datasets: list[str], baselines: list[str],
                 focus: str, out_stem, caption: str):
    """Datasets × baselines, one panel per metric: the fraction the focus model needs (grey: not reached)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    columns = [BEST_BASELINE] + list(baselines)
    n = len(metrics)
    width = max(6.0, 0.62 * len(columns) + 2.0)
    height = 1.6 + n * (0.42 * len(datasets) + 0.55)
    fig, axes = plt.subplots(n, 1, figsize=(width, height), squeeze=False)
    cmap = plt.get_cmap("viridis_r").with_extremes(bad="0.88")
    norm = Normalize(0.0, 1.0)
    image = None
    for k, (ax, metric) in enumerate(zip(axes[:, 0], metrics)):
        sub = frame[frame["metric"] == metric].set_index(["dataset", "baseline"])
        grid = np.full((len(datasets), len(columns)), np.nan)
        for i, dataset in enumerate(datasets):
            for j, baseline in enumerate(columns):
                if (dataset, baseline) not in sub.index:
                    continue
                row = sub.loc[(dataset, baseline)]
                text = "n.r." if row["status"] == "not_reached" else _short(row["fraction_needed"], row["status"])
                if row["status"] != "not_reached":
                    grid[i, j] = row["fraction_needed"]
                value = grid[i, j]
                colour = "black" if np.isnan(value) or value < 0.55 else "white"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        ax.set_yticks(range(len(datasets)), datasets, fontsize=8)
        last = k == n - 1  # baseline names once, under the bottom panel
        ax.set_xticks(range(len(columns)), columns if last else [], rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{metric}: fraction {focus} needs to reach each model's full-data mean", fontsize=9)
        ax.axvline(0.5, color="white", linewidth=2)
    fig.suptitle(f"Data efficiency of {focus} ({caption}); grey n.r. = not reached", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    if image is not None:
        bar = fig.add_axes((0.94, 0.15, 0.015, 0.7))
        fig.colorbar(image, cax=bar, label="training fraction")
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})
    plt.close(fig)
    return paths
