"""Learning curves: each metric against the training fraction, one line per model.

The line is the mean over seeds, the band mean ± sample std. Each model keeps the same
colour (seaborn's colour-blind palette), marker and line style in every figure, so the
curves stay distinguishable in grayscale and for colour-blind readers. With more than
``MUTE_ABOVE`` models, the focus model and any ``--highlight`` models are drawn strong
(thick, with their band) over the others, muted (thin, pale, no band), so 15 curves stay
readable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.inputs import MAIN_METRICS, higher_is_better, order_metrics

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h"]
# Trivial references (the label-frequency predictor) do not set the y range: drawn far
# below the learned models they would flatten every curve that matters.
REFERENCE_MODELS = frozenset({"prior"})
MUTE_ABOVE = 8  # more models than this: only the strong ones keep full colour and bands
# Strong models' colours when the others are muted (tab20 would give the 15th model grey).
STRONG_COLOURS = ["#d62728", "#1f4e9c", "#2ca02c", "#8c2dbf", "#e07b00", "#111111"]


def emphasised(styles: dict, strong) -> dict:
    """``styles`` with each strong model in one of ``STRONG_COLOURS`` (focus first)."""
    out = {m: dict(style) for m, style in styles.items()}
    for i, model in enumerate(m for m in strong if m in out):
        out[model]["color"] = matplotlib_colour(STRONG_COLOURS[i % len(STRONG_COLOURS)])
    return out


def matplotlib_colour(hex_colour: str) -> tuple:
    from matplotlib.colors import to_rgb

    return to_rgb(hex_colour)
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2, 2, 2))]


def model_styles(models: list[str]) -> dict[str, dict]:
    """A fixed (colour, marker, line style) per model, identical across figures."""
    import seaborn as sns

    # colour-blind palette up to 10 models; beyond, tab20 keeps every colour distinct
    palette = "colorblind" if len(models) <= 10 else "tab20"
    colours = sns.color_palette(palette, n_colors=max(len(models), 1))
    return {
        model: {
            "color": colours[i % len(colours)],
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
        }
        for i, model in enumerate(models)
    }


def _muted(colour) -> tuple:
    """A pale version of ``colour``: half-way to light grey."""
    r, g, b = colour[:3]
    return (0.5 * r + 0.4, 0.5 * g + 0.4, 0.5 * b + 0.4)


def _panel(ax, summary: pd.DataFrame, metric: str, models: list[str], styles: dict, strong=frozenset()) -> None:
    fractions = sorted(summary["fraction"].unique())
    span: list[float] = []  # y values of the learned models, which set the axis range
    off_scale: list[str] = []
    for model in models:
        rows = summary[(summary["model"] == model) & (summary["metric"] == metric)].sort_values("fraction")
        if rows.empty:
            continue
        x, mean = rows["fraction"].to_numpy(), rows["mean"].to_numpy()
        std = np.nan_to_num(rows["std"].to_numpy(dtype=float))
        style = styles[model]
        muted = bool(strong) and model not in strong
        ax.plot(x, mean, label=model, color=_muted(style["color"]) if muted else style["color"], marker=style["marker"],
                linestyle=style["linestyle"], linewidth=0.9 if muted else (2.6 if strong else 1.6),
                markersize=4 if muted else 6, markeredgecolor="0.55" if muted else "black",
                markeredgewidth=0.5, zorder=2 if muted else 3)
        if np.any(std > 0) and not muted:
            ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.18, linewidth=0)
        if model in REFERENCE_MODELS:
            off_scale.append(f"{model}: {np.mean(mean):.3f}")
        else:
            span += list(mean - std) + list(mean + std)
    if span:
        low, high = min(span), max(span)
        margin = max(0.08 * (high - low), 0.005)
        ax.set_ylim(low - margin, high + margin)
        low, high = ax.get_ylim()
        hidden = [text for text in off_scale if not low <= float(text.split(": ")[1]) <= high]
        if hidden:  # a trivial reference far below would squash the curves that matter
            ax.text(0.02, 0.02, "off scale: " + ", ".join(hidden), transform=ax.transAxes,
                    fontsize=7, color="0.3", va="bottom")
    ax.set_title(metric if higher_is_better(metric) else f"{metric} (lower is better)")
    ax.set_xlabel("training fraction")
    ax.set_xticks(fractions)
    ax.set_xticklabels([f"{f:g}" for f in fractions], rotation=45 if len(fractions) > 6 else 0)
    ax.grid(True, alpha=0.3)


def plot_dataset(
    summary: pd.DataFrame,
    dataset: str,
    metrics: list[str],
    models: list[str],
    styles: dict,
    out_stem: Path,
    caption: str,
    strong=frozenset(),
) -> list[Path]:
    """One figure (PNG and PDF) with a panel per metric for ``dataset``."""
    import matplotlib.pyplot as plt

    data = summary[summary["dataset"] == dataset]
    present = [m for m in models if (data["model"] == m).any()]
    n = len(metrics)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    width = max(3.4 * ncols, 6.8)
    legend_cols = min(len(present), max(2, int(width / 1.7)))
    legend_rows = int(np.ceil(len(present) / max(legend_cols, 1)))
    legend_height = 0.25 + 0.3 * legend_rows  # inches below the panels
    height = 3.0 * nrows + 0.5 + legend_height
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        _panel(ax, data, metric, present, styles, strong)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("mean ± std over seeds")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=legend_cols, frameon=False,
               bbox_to_anchor=(0.5, 0.0), handlelength=3.2)
    fig.suptitle(f"{dataset}: {caption}", fontsize=11)
    fig.tight_layout(rect=(0, legend_height / height, 1, 1))
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # same bytes on regeneration
    plt.close(fig)
    return paths


def learning_curves(
    summary: pd.DataFrame, models: list[str], out_dir: Path, caption: str, strong=()
) -> dict[str, dict[str, list[Path]]]:
    """Per dataset a main figure (paper metrics) and, when present, one with the others.

    ``strong``: models drawn strong over muted others when there are more than ``MUTE_ABOVE``.

    Returns ``{dataset: {"main": [png, pdf], "other": [png, pdf]}}``.
    """
    styles = model_styles(models)
    ordered = [m for m in dict.fromkeys(strong) if m in models] if len(models) > MUTE_ABOVE else []
    styles = emphasised(styles, ordered)
    strong = frozenset(ordered)
    all_metrics = order_metrics(summary["metric"].unique())
    main = [m for m in all_metrics if m in MAIN_METRICS]
    other = [m for m in all_metrics if m not in MAIN_METRICS]
    figures: dict[str, dict[str, list[Path]]] = {}
    for dataset in sorted(summary["dataset"].unique()):
        figures[dataset] = {}
        for kind, metrics in (("main", main), ("other", other)):
            if metrics:
                stem = out_dir / f"curve_{dataset}_{kind}"
                figures[dataset][kind] = plot_dataset(summary, dataset, metrics, models, styles, stem, caption, strong)
    return figures
