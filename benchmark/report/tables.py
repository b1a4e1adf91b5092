"""The paper's tables: datasets as rows, methods as columns, one table per metric.

Each cell is the mean ± sample standard deviation (ddof = 1) over seeds at the dataset's
full training fraction (1.0, or the largest fraction with results); the best mean per
dataset is bold; a ``seeds`` column gives the number of seeds; the last row is each
method's average rank over datasets (rank 1 = best, ties share the average rank).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report.formatting import MISSING, Cell, TextTable, format_mean_std
from benchmark.report.inputs import METRIC_TITLES, higher_is_better

PROTOCOL_LABELS = {
    "val": "val protocol (thresholds chosen on the validation set)",
    "fixed": "fixed protocol (threshold 0.5)",
    "oracle": "ORACLE protocol (thresholds tuned on the test set: optimistic, for comparison with published numbers only)",
}


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and seed count per (dataset, model, fraction, metric)."""
    grouped = long.groupby(["dataset", "model", "fraction", "metric"])["value"]
    summary = grouped.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan, n="count")
    return summary.reset_index()


def at_full_fraction(summary: pd.DataFrame, fractions: dict[str, float]) -> pd.DataFrame:
    """Rows of ``summary`` at each dataset's table fraction."""
    wanted = summary["dataset"].map(fractions)
    return summary[np.isclose(summary["fraction"], wanted)]


def best_models(means: pd.Series, metric: str) -> set[str]:
    """Models whose mean equals the best one for ``metric`` (ties are all best)."""
    means = means.dropna()
    if means.empty:
        return set()
    best = means.max() if higher_is_better(metric) else means.min()
    return {m for m, v in means.items() if np.isclose(v, best, rtol=0, atol=1e-12)}


def average_ranks(full: pd.DataFrame, metric: str, models: list[str]) -> tuple[pd.Series, pd.Series]:
    """Average rank of each model over datasets (1 = best) and how many datasets it ranks on.

    A model missing on a dataset is ranked among the models present there; the second
    series says on how many datasets each model was ranked, so a reader sees when the
    averages rest on different sets of datasets.
    """
    table = full[full["metric"] == metric].pivot_table(index="dataset", columns="model", values="mean")
    table = table.reindex(columns=models)
    ranks = table.rank(axis=1, ascending=not higher_is_better(metric), method="average")
    return ranks.mean(axis=0), ranks.notna().sum(axis=0)


def paper_table(
    full: pd.DataFrame,
    metric: str,
    datasets: list[str],
    models: list[str],
    protocol: str,
    fractions: dict[str, float],
    published: dict[str, dict[str, str]] | None = None,
) -> TextTable:
    """One metric's table in the paper layout, with the average-rank row.

    ``published`` (``{dataset: {model: text}}``, see ``report.published.table_cells``) adds a
    "<dataset> (published)" row under a dataset's row, so published figures sit beside ours.
    """
    published = published or {}
    rows: list[list[Cell]] = []
    this = full[full["metric"] == metric].set_index(["dataset", "model"])
    for dataset in datasets:
        counts = [int(this.loc[(dataset, m), "n"]) for m in models if (dataset, m) in this.index]
        means = pd.Series({m: this.loc[(dataset, m), "mean"] for m in models if (dataset, m) in this.index})
        best = best_models(means, metric)
        max_n = max(counts, default=0)
        seeds_text = "0" if not counts else (str(max_n) if min(counts) == max_n else f"{min(counts)}–{max_n}")
        row = [Cell(dataset), Cell(seeds_text)]
        for model in models:
            if (dataset, model) not in this.index:
                row.append(Cell(MISSING))
                continue
            mean, std, n = this.loc[(dataset, model), ["mean", "std", "n"]]
            text = format_mean_std(mean, std)
            if n != max_n:
                text += f" (n={int(n)})"
            row.append(Cell(text, bold=model in best, mean=float(mean), std=float(std), n=int(n)))
        rows.append(row)
        if any(m in published.get(dataset, {}) for m in models):
            rows.append([Cell(f"{dataset} (published)"), Cell("")]
                        + [Cell(published[dataset].get(m, "")) for m in models])
    n_body = len(rows)
    rows.append(_rank_row(full, metric, models, len(datasets)))

    distinct = sorted(set(fractions[d] for d in datasets))
    fraction_text = ", ".join(f"{f:g}" for f in distinct)
    title = f"{METRIC_TITLES.get(metric, metric)} ({metric}), {PROTOCOL_LABELS.get(protocol, protocol)}"
    notes = [
        f"Mean ± sample std (ddof=1) over seeds at training fraction {fraction_text}"
        + ("" if distinct == [1.0] else " (the largest fraction with results; 1.0 is absent)")
        + f"; best mean per dataset in bold; `{MISSING}` = no finished run; "
        f"`± {chr(0x2014)}` = a single seed; (n=k) = fewer seeds than the row's others.",
    ]
    if n_body > len(datasets):
        notes.append("(published) rows: the published figure, Δ = harness mean − published, and whether Δ "
                     "lies within two sample standard deviations of the harness's seeds (see the index's "
                     "Published figures section for sources).")
    if len(distinct) > 1:
        notes.append("Per-dataset fractions: " + ", ".join(f"{d}: {fractions[d]:g}" for d in datasets) + ".")
    return TextTable(
        title=title,
        header=["Dataset", "seeds"] + models,
        rows=rows,
        notes=notes,
        label=f"tab:{metric.replace('@', '')}-{protocol}",
        n_body_rows=n_body,
    )


def _rank_row(full: pd.DataFrame, metric: str, models: list[str], n_datasets: int) -> list[Cell]:
    ranks, counts = average_ranks(full, metric, models)
    finite = ranks.dropna()
    best = set(finite.index[np.isclose(finite, finite.min())]) if not finite.empty else set()
    row = [Cell("Average rank"), Cell("")]
    for model in models:
        rank = ranks.get(model, np.nan)
        if rank != rank:
            row.append(Cell(MISSING))
            continue
        text = f"{rank:.2f}"
        if counts[model] != n_datasets:
            text += f" ({int(counts[model])} ds)"
        row.append(Cell(text, bold=model in best, mean=float(rank), n=int(counts[model])))
    return row
