"""The ablation table: a model's named variants beside the full model, in the paper's layout.

Variants are models declared in a suite with ``base = "<model>"`` (their rows carry the
base in ``settings.model.base``). Rows are the full model and its variants, columns are
datasets x metrics (ebF1, miF1, maF1, P@1), cells mean ± std over seeds at each
dataset's table fraction, with a paired t-test over seeds against the full model
(``*`` p < 0.05, ``†`` p < 0.01).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.report.formatting import Cell, TextTable, format_mean_std

ABLATION_METRICS = ("ebF1", "miF1", "maF1", "P@1")


def variants_of(runs: pd.DataFrame, base: str) -> list[str]:
    """Models whose stored settings name ``base`` as the code they run (the base itself excluded)."""
    names = set()
    for model, settings in zip(runs["model"], runs.get("settings", pd.Series([None] * len(runs)))):
        declared = (settings or {}).get("model", {}).get("base") if isinstance(settings, dict) else None
        if declared == base and model != base:
            names.add(model)
    return sorted(names)


def ablation_table(long_full: pd.DataFrame, base: str, variants: list[str], datasets: list[str],
                   protocol: str) -> TextTable | None:
    """``long_full``: per-seed values at each dataset's table fraction (metrics_long layout)."""
    from scipy.stats import ttest_rel

    models = [base] + variants
    metrics = [m for m in ABLATION_METRICS if m in set(long_full["metric"])]
    data = long_full[long_full["model"].isin(models) & long_full["metric"].isin(metrics)]
    if data.empty or base not in set(data["model"]):
        return None
    header = ["Variant"] + [f"{d} {m}" for d in datasets for m in metrics]
    rows = []
    for model in models:
        row = [Cell(model if model != base else f"{base} (full)")]
        for dataset in datasets:
            for metric in metrics:
                cell = data[(data["dataset"] == dataset) & (data["metric"] == metric)]
                mine = cell[cell["model"] == model].set_index("seed")["value"]
                if mine.empty:
                    row.append(Cell("n/a"))
                    continue
                std = mine.std(ddof=1) if len(mine) > 1 else None
                text = format_mean_std(mine.mean(), std)
                if model != base:
                    full = cell[cell["model"] == base].set_index("seed")["value"]
                    pair = pd.concat([mine, full], axis=1, join="inner").dropna()
                    if len(pair) >= 2 and not np.allclose(pair.iloc[:, 0] - pair.iloc[:, 1], 0):
                        p = ttest_rel(pair.iloc[:, 0], pair.iloc[:, 1]).pvalue
                        text += "†" if p < 0.01 else "*" if p < 0.05 else ""
                row.append(Cell(text, mean=float(mine.mean()), std=std, n=len(mine)))
        rows.append(row)
    return TextTable(
        title=f"Ablation of {base} ({protocol} protocol)", header=header, rows=rows,
        notes=[f"Mean ± std over seeds at each dataset's table fraction; paired t-test over seeds against "
               f"{base} (full): * p < 0.05, † p < 0.01."],
        label=f"tab:ablation-{base}")
