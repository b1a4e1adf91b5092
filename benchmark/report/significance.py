"""Statistics: Friedman + Nemenyi across datasets, paired tests across seeds.

Across datasets (Demšar 2006): each dataset is a block, each model a treatment, the
value the model's mean over seeds at the full fraction. scipy's ``friedmanchisquare``
gives the omnibus test, scikit-posthocs the Nemenyi post-hoc p-values and the
critical-difference diagram (models joined by a bar are not significantly different).
Only complete blocks are used: a dataset where some model has no result is dropped
(or, if that would leave fewer than two datasets, the incomplete models are), and the
report says which.

Within a dataset, C-GMVAE is compared with each baseline over seeds, paired by seed. The
runner keeps the split and the training subsets fixed across model seeds (they follow
``split_seed``), so a seed only changes model randomness and the pairing is nominal; the
test stays valid (the per-seed differences are still independent draws with mean
mu_focus - mu_baseline), it just gains no power from the pairing. Deterministic
baselines (prior, br) score the same on every seed. The primary test is the paired
t-test (``scipy.stats.ttest_rel``): with the 3-5 seeds a benchmark affords, the exact
Wilcoxon signed-rank test cannot reach p < 0.05 at all (its smallest two-sided p-value
is 2 / 2**n: 0.25 for 3 seeds, 0.0625 for 5), so it could never flag a difference; the
t-test can, at the price of assuming roughly normal seed-to-seed differences. The
Wilcoxon p-value is reported beside it for readers with six or more seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.inputs import higher_is_better

ALPHA = 0.05


@dataclass
class FriedmanResult:
    metric: str
    computed: bool
    reason: str = ""
    datasets: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    statistic: float = float("nan")
    p_value: float = float("nan")
    average_ranks: pd.Series | None = None
    nemenyi: pd.DataFrame | None = None
    critical_difference: float = float("nan")
    dropped: list[str] = field(default_factory=list)


def complete_block_matrix(full: pd.DataFrame, metric: str, datasets, models) -> tuple[pd.DataFrame, list[str]]:
    """Datasets × models matrix of means without missing values, and what was dropped."""
    matrix = (
        full[full["metric"] == metric]
        .pivot_table(index="dataset", columns="model", values="mean")
        .reindex(index=list(datasets), columns=list(models))
    )
    dropped: list[str] = []
    empty_models = [m for m in matrix.columns if matrix[m].isna().all()]
    matrix = matrix.drop(columns=empty_models)
    dropped += [f"model {m} (no results)" for m in empty_models]
    complete_rows = matrix.dropna(axis=0)
    if len(complete_rows) >= 2 or matrix.shape[0] < 2:
        dropped += [f"dataset {d} (incomplete)" for d in matrix.index if d not in complete_rows.index]
        return complete_rows, dropped
    incomplete_models = [m for m in matrix.columns if matrix[m].isna().any()]
    dropped += [f"model {m} (missing on some dataset)" for m in incomplete_models]
    return matrix.drop(columns=incomplete_models).dropna(axis=0), dropped


def nemenyi_critical_difference(n_models: int, n_datasets: int, alpha: float = ALPHA) -> float:
    """Demšar's CD = q_alpha * sqrt(k (k + 1) / (6 N)), q from the studentized range."""
    from scipy.stats import studentized_range

    q_alpha = studentized_range.ppf(1 - alpha, n_models, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(n_models * (n_models + 1) / (6.0 * n_datasets)))


def friedman_nemenyi(full: pd.DataFrame, metric: str, datasets, models) -> FriedmanResult:
    """Friedman test across datasets and the Nemenyi post-hoc, or why it cannot be run."""
    import scikit_posthocs as sp
    from scipy.stats import friedmanchisquare

    matrix, dropped = complete_block_matrix(full, metric, datasets, models)
    result = FriedmanResult(metric, computed=False, dropped=dropped,
                            datasets=list(matrix.index), models=list(matrix.columns))
    if matrix.shape[0] < 2 or matrix.shape[1] < 3:
        result.reason = (
            f"cannot be computed: needs at least 2 datasets and 3 models with complete results, "
            f"have {matrix.shape[0]} dataset(s) and {matrix.shape[1]} model(s)"
        )
        return result
    oriented = matrix if higher_is_better(metric) else -matrix
    ranks = oriented.rank(axis=1, ascending=False, method="average")
    result.average_ranks = ranks.mean(axis=0).sort_values()
    result.critical_difference = nemenyi_critical_difference(matrix.shape[1], matrix.shape[0])
    if np.allclose(oriented.to_numpy(), oriented.to_numpy()[:, :1]):
        result.reason = "cannot be computed: every model scores the same on every dataset"
        return result
    statistic, p_value = friedmanchisquare(*[oriented[m].to_numpy() for m in oriented.columns])
    result.statistic, result.p_value = float(statistic), float(p_value)
    result.nemenyi = sp.posthoc_nemenyi_friedman(oriented.to_numpy())
    result.nemenyi.index = result.nemenyi.columns = list(oriented.columns)
    result.computed = True
    return result


def plot_cd_diagram(result: FriedmanResult, out_stem: Path, caption: str) -> list[Path]:
    """The critical-difference diagram (scikit-posthocs), PNG and PDF."""
    import matplotlib.pyplot as plt
    import scikit_posthocs as sp

    n_models = len(result.models)
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.32 * n_models))
    sp.critical_difference_diagram(
        result.average_ranks,
        result.nemenyi,
        ax=ax,
        alpha=ALPHA,
        label_fmt_left="{label} ({rank:.2f})",
        label_fmt_right="({rank:.2f}) {label}",
        marker_props={"marker": "o", "s": 30, "edgecolor": "black"},
        color_palette={m: "black" for m in result.average_ranks.index},
        elbow_props={"linewidth": 1.0},
        label_props={"fontsize": 9},
    )
    ax.set_title(
        f"{result.metric}: average rank over {len(result.datasets)} datasets (1 = best); "
        f"Friedman p = {result.p_value:.3g}; Nemenyi CD = {result.critical_difference:.2f}\n"
        f"bars join models not significantly different (alpha = {ALPHA}); {caption}",
        fontsize=9,
        pad=22,
    )
    fig.tight_layout()
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(fig)
    return paths


def paired_seed_tests(long_full: pd.DataFrame, focus: str, baselines: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per dataset and metric: focus − baseline over seeds, paired t-test and Wilcoxon.

    ``long_full`` holds per-seed values at each dataset's table fraction. A row with
    fewer than two paired seeds says so in ``note`` instead of carrying a p-value.
    """
    from scipy.stats import ttest_rel, wilcoxon

    rows = []
    for (dataset, metric), group in long_full[long_full["metric"].isin(metrics)].groupby(["dataset", "metric"]):
        by_model = group.pivot_table(index="seed", columns="model", values="value")
        if focus not in by_model.columns:
            continue
        for baseline in baselines:
            if baseline not in by_model.columns:
                continue
            pair = by_model[[focus, baseline]].dropna()
            diff = (pair[focus] - pair[baseline]).to_numpy()
            row = {"dataset": dataset, "metric": metric, "model": focus, "baseline": baseline,
                   "n_pairs": len(diff), "mean_diff": float(diff.mean()) if len(diff) else np.nan,
                   "t_p": np.nan, "wilcoxon_p": np.nan, "note": ""}
            if len(diff) < 2:
                row["note"] = "fewer than 2 paired seeds: no test"
            elif np.allclose(diff, diff[0]):
                row["note"] = "identical difference on every seed: no test (zero variance)"
            else:
                row["t_p"] = float(ttest_rel(pair[focus], pair[baseline]).pvalue)
                if np.any(diff != 0):
                    row["wilcoxon_p"] = float(wilcoxon(diff).pvalue)
            rows.append(row)
    columns = ["dataset", "metric", "model", "baseline", "n_pairs", "mean_diff", "t_p", "wilcoxon_p", "note"]
    return pd.DataFrame(rows, columns=columns)
