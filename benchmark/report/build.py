"""Assemble the whole report (tables, curves, statistics, data efficiency, index).

``build_report`` takes a results store location, a store object or ready-made
:class:`ReportInputs` and writes everything under ``out_dir``; it never trains.
Whatever cannot be computed (one seed, one dataset, too few models, missing cells) is
skipped with a sentence in the index saying why, never silently.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report import curves, efficiency, significance, tables
from benchmark.report import published as published_figures
from benchmark.report.formatting import (
    WIDE_TABLE_MODELS,
    Cell,
    TextTable,
    latex_document,
    to_csv,
    to_latex,
    to_markdown,
    transposed,
)
from benchmark.report.index import (
    Bullets,
    Heading,
    Image,
    Links,
    Paragraph,
    Raw,
    Table,
    linked_paths,
    write_index,
)
from benchmark.report.inputs import (
    CELL_COORDINATES,
    FOCUS_MODEL,
    MAIN_METRICS,
    METRIC_TITLES,
    PROTOCOLS,
    ReportError,
    ReportInputs,
    full_fraction,
    inputs_from_store,
    inputs_from_stores,
    metrics_long,
    order_metrics,
    order_models,
)

MANIFEST = ".report-files"  # what the last report wrote in its output directory


@dataclass
class ReportResult:
    out_dir: Path
    protocol: str
    files: list[Path] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    n_done: int = 0
    n_failed: int = 0
    n_missing: int = 0


def safe_name(metric: str) -> str:
    """File-name form of a metric (``P@1`` -> ``P1``)."""
    return "".join(ch for ch in metric if ch.isalnum() or ch in "-_")


def _as_inputs(source, suite: str | None, all_configs: bool = False) -> ReportInputs:
    if isinstance(source, ReportInputs):
        return source
    if isinstance(source, pd.DataFrame):
        return ReportInputs(runs=source)
    if isinstance(source, (list, tuple)):
        return inputs_from_stores(source, suite=suite, all_configs=all_configs)
    if hasattr(source, "runs_frame"):
        planned = source.planned_frame() if hasattr(source, "planned_frame") else None
        return ReportInputs(runs=source.runs_frame(), planned=planned, source=type(source).__name__)
    return inputs_from_store(source, suite=suite, all_configs=all_configs)


def build_report(
    source,
    out_dir,
    protocol: str = "val",
    focus: str = FOCUS_MODEL,
    suite: str | None = None,
    metrics: list[str] | None = None,
    all_configs: bool = False,
    models: list[str] | None = None,
    published=None,
    highlight: list[str] | None = None,
) -> ReportResult:
    """Write the report for ``protocol`` under ``out_dir`` and return what was written.

    ``source``: a results directory or URL, a list of them (merged where comparable, see
    ``inputs.merge_inputs``), a ``ResultsStore``, :class:`ReportInputs` or a runs frame. ``metrics`` restricts the report to these metrics (default: all stored).
    ``published``: a CSV path or frame of published figures (``report.published``) shown
    beside the harness's in the tables and in their own section. ``highlight``: models drawn
    strong, beside the focus model, over muted others in the learning curves.
    """
    import matplotlib

    matplotlib.use("Agg")
    if protocol not in PROTOCOLS:
        raise ReportError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    inputs = _as_inputs(source, suite, all_configs)
    if models:
        inputs = inputs.select_models(models)
    _require_results(inputs, protocol)
    figures = published_figures.load_published(published) if published is not None else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _Builder(inputs, out_dir, protocol, focus, metrics, figures, highlight).build()


def _require_results(inputs: ReportInputs, protocol: str) -> None:
    if inputs.done.empty:
        failed = inputs.failed
        detail = ""
        if not failed.empty:
            detail = f"; {len(failed)} failed cell(s), first error: {_first_line(failed.iloc[0].get('error'))}"
        raise ReportError(f"no finished runs in the results store {inputs.source}{detail}")
    if metrics_long(inputs.runs, protocol).empty:
        raise ReportError(f"the finished runs store no metrics under the {protocol!r} protocol")


VARIANCE_TEXT = {
    "model": "seeds vary the model only (one split, one training subset per fraction; `resample = model`)",
    "subset": "seeds vary the model and, for fractions < 1, the training subset (`resample = subset`); "
              "the split is fixed",
    "split": "seeds vary the model, the validation split (and the test split of datasets without a "
             "published one) and the training subset (`resample = split`)",
}


def _variance_text(runs: pd.DataFrame) -> str:
    """Which variance the ± and bands show: from the stored settings' resample mode."""
    modes = set()
    for settings in runs.get("settings", pd.Series(dtype=object)):
        if isinstance(settings, dict) and settings.get("split"):
            modes.add(settings["split"].get("resample"))
    if not modes:
        return "seeds vary the model only (stores written before resample modes existed)"
    return "; ".join(VARIANCE_TEXT.get(m, str(m)) for m in sorted(modes, key=str))


def _halving_text(runs: pd.DataFrame) -> str | None:
    """Which (dataset, model) were tuned by successive halving over training rows, and how;
    None when none was (then the report says nothing: every trial trained on all rows)."""
    used: dict[str, set[str]] = {}
    for row in runs[["dataset", "model", "settings"]].itertuples() if "settings" in runs.columns else ():
        settings = row.settings
        halving = settings.get("tuning", {}).get("halving") if isinstance(settings, dict) else None
        if isinstance(halving, dict):
            how = (f"min_rows = {halving.get('min_rows')}, factor = {halving.get('factor'):g}, "
                   f"startup = {halving.get('startup')}")
            used.setdefault(how, set()).add(f"{row.dataset}/{row.model}")
    if not used:
        return None
    parts = [f"{', '.join(sorted(pairs))} ({how})" for how, pairs in sorted(used.items())]
    return ("successive halving over training rows: trials started on a stratified subset of the training "
            "rows and only the better ones were refitted on more, up to all rows, for " + "; ".join(parts)
            + "; the seeds of the chosen configuration trained on all rows; all other tuning used all rows")


def _resample_modes(runs: pd.DataFrame) -> set[str]:
    """The resample modes recorded in these runs' settings (empty for stores without them)."""
    modes = set()
    for settings in runs.get("settings", pd.Series(dtype=object)):
        if isinstance(settings, dict) and isinstance(settings.get("split"), dict) and settings["split"].get("resample"):
            modes.add(str(settings["split"]["resample"]))
    return modes


def _first_line(error) -> str:
    """The line that names the error: a traceback's final exception line, else the first line."""
    text = "" if error is None or (isinstance(error, float) and np.isnan(error)) else str(error).strip()
    if not text:
        return "(no error message stored)"
    lines = [line for line in text.splitlines() if line.strip()]
    if "Traceback (most recent call last)" in text:
        for line in reversed(lines):  # "module.ErrorType: message" after the last frame
            if re.match(r"[A-Za-z_][\w.]*(:|$)", line):
                return line.strip()
    return lines[0].strip()


class _Builder:
    def __init__(self, inputs: ReportInputs, out_dir: Path, protocol: str, focus: str, metrics, published=None,
                 highlight=None):
        self.inputs, self.out, self.protocol, self.focus = inputs, out_dir, protocol, focus
        self.highlight = list(highlight or [])
        self.store = inputs.store  # for artifacts (label embeddings); None for frames built by hand
        ours = None if published is None else published[published["protocol"].isin(PROTOCOLS)]
        self.published = None if ours is None or ours.empty else published_figures.compare(inputs.runs, ours)
        self.published_other = None if published is None else published[published["protocol"] == published_figures.OTHER]
        self.result = ReportResult(out_dir=out_dir, protocol=protocol)
        self.long = metrics_long(inputs.runs, protocol)
        if metrics:
            unknown = sorted(set(metrics) - set(self.long["metric"]))
            if unknown:
                raise ReportError(f"no stored values for metric(s) {', '.join(unknown)}; "
                                  f"stored: {', '.join(order_metrics(self.long['metric'].unique()))}")
            self.long = self.long[self.long["metric"].isin(metrics)]
        self.summary = tables.summarise(self.long)
        self.fractions = full_fraction(self.long)
        self.full = tables.at_full_fraction(self.summary, self.fractions)
        self.datasets = sorted(self.long["dataset"].unique())
        self.models = order_models(self.long["model"].unique(), focus)
        self.metrics = order_metrics(self.long["metric"].unique())
        self.main_metrics = [m for m in self.metrics if m in MAIN_METRICS]
        self.blocks: list = []

    # -------------------------------------------------------------- helpers

    def _write(self, relative: str, text: str) -> str:
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.result.files.append(path)
        return relative

    def _rel(self, path: Path) -> str:
        self.result.files.append(path)
        return path.relative_to(self.out).as_posix()

    @property
    def caption(self) -> str:
        return tables.PROTOCOL_LABELS[self.protocol] if self.protocol != "oracle" else "ORACLE thresholds (optimistic)"

    # -------------------------------------------------------------- sections

    def build(self) -> ReportResult:
        self._header()
        self._tables()
        self._ablation()
        self._embeddings()
        self._published()
        self._published_other()
        self._curves()
        self._significance()
        self._efficiency()
        self._failures_and_missing()
        self._warnings()
        self._runs_csv()
        title = f"mlc-bench report ({self.protocol} protocol)"
        self.result.files += write_index(self.blocks, self.out, title)
        self.result.links = linked_paths(self.blocks)
        self.result.files = list(dict.fromkeys(self.result.files))
        self._replace_manifest()
        return self.result

    def _replace_manifest(self) -> None:
        """Delete files an earlier report wrote here and this one did not (no stale figures).

        Only paths listed in the previous manifest are touched, so pointing ``--out`` at a
        directory with other files in it never deletes them.
        """
        manifest = self.out / MANIFEST
        written = {p.relative_to(self.out).as_posix() for p in self.result.files}
        if manifest.exists():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                stale = self.out / line
                if line and line not in written and ".." not in Path(line).parts and stale.is_file():
                    stale.unlink()
        manifest.write_text("\n".join(sorted(written)) + "\n", encoding="utf-8")

    def _header(self) -> None:
        runs, done = self.inputs.runs, self.inputs.done
        self.result.n_done, self.result.n_failed = len(done), len(self.inputs.failed)
        missing = self.inputs.missing_cells()
        self.result.n_missing = len(missing)

        def distinct(column: str) -> str:
            if column not in runs.columns:
                return "(not recorded)"
            values = sorted({str(v) for v in runs[column].dropna() if str(v)})
            return ", ".join(f"`{v}`" for v in values) if values else "(not recorded)"

        dates = "(not recorded)"
        if "finished_at" in runs.columns and runs["finished_at"].notna().any():
            stamps = sorted(str(v) for v in runs["finished_at"].dropna())
            dates = stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"
        self.blocks += [Heading("mlc-bench report", 1)]
        if self.protocol == "oracle":
            self.blocks.append(Paragraph(
                "**Warning: ORACLE protocol.** Every thresholded metric uses the best threshold on the "
                "test set itself (as the C-GMVAE and MPVAE reference code report). These numbers are "
                "optimistic and only meant for comparison with published results; use the `val` "
                "protocol for honest comparisons."))
        self.blocks.append(Bullets([
            f"Protocol: **{self.protocol}**: {tables.PROTOCOL_LABELS[self.protocol]}",
            f"Suite(s): {distinct('suite')}",
            f"Commit(s): {distinct('git_commit')}",
            f"Device(s): {distinct('device')}",
            f"Runs finished: {dates}",
            f"Results store: `{self.inputs.source}`; report generated "
            f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `python -m benchmark report`",
            f"Cells: {len(done)} finished, {len(self.inputs.failed)} failed, {len(missing)} planned but missing "
            f"(see [failed and missing cells](#failed-and-missing-cells))",
            f"Datasets ({len(self.datasets)}): {', '.join(self.datasets)}; models ({len(self.models)}): "
            f"{', '.join(self.models)}; fractions: {', '.join(f'{f:g}' for f in sorted(self.long['fraction'].unique()))}; "
            f"seeds: {', '.join(str(s) for s in sorted(self.long['seed'].unique()))}",
            f"Variance: {_variance_text(runs)}",
            f"Configurations: {distinct('config')} (one per suite, dataset and model: the latest unless "
            "`--all-configs`)",
        ] + [f"Tuning: {text}" for text in [_halving_text(runs)] if text]
          + [f"Note: {note}" for note in self.inputs.notes]))
        if self.inputs.store_summary:
            self.blocks.append(Heading("Stores", 3))
            self.blocks.append(Paragraph(
                "Cells of several stores are merged only where comparable: the same dataset files (sha256), "
                "split seed, validation share, resample mode, split protocol and threshold grids as the first "
                "store with that dataset, at a (fraction, seed) it has, and not already in an earlier store."))
            self.blocks.append(Bullets(self.inputs.store_summary))
            self.blocks.append(Paragraph("Left out: none." if not self.inputs.merge_notes else "Left out, and why:"))
            if self.inputs.merge_notes:
                self.blocks.append(Bullets(self.inputs.merge_notes))

    def _tables(self) -> None:
        self.blocks.append(Heading("Tables"))
        tex_files = []
        for metric in self.metrics:
            cells = None if self.published is None else published_figures.table_cells(self.published, metric, self.protocol)
            table = tables.paper_table(self.full, metric, self.datasets, self.models, self.protocol, self.fractions,
                                       published=cells)
            if len(self.models) > WIDE_TABLE_MODELS:  # 14+ models: one row per model reads better
                table = transposed(table)
            stem = f"tables/{safe_name(metric)}"
            links = [("Markdown", self._write(stem + ".md", f"**{table.title}**\n\n" + to_markdown(table)
                                               + "".join(f"\n_{n}_\n" for n in table.notes))),
                     ("LaTeX", self._write(stem + ".tex", to_latex(table))),
                     ("CSV", self._write(stem + ".csv", to_csv(table)))]
            tex_files.append(f"{safe_name(metric)}.tex")
            if metric in MAIN_METRICS:
                self.blocks.append(Table(table))
                self.blocks.append(Links(f"{metric} table as", links))
            else:
                self.blocks.append(Links(f"{metric} ({METRIC_TITLES.get(metric, metric)}) table as", links))
        self.blocks.append(Links("All tables in one LaTeX document (needs booktabs):",
                                 [("tables.tex", self._write("tables/tables.tex", latex_document(tex_files)))]))

    def _ablation(self) -> None:
        """The focus model's named variants (suite ``base = focus``) beside it, if the store has any."""
        from benchmark.report.ablation import ablation_table, variants_of

        variants = [v for v in variants_of(self.inputs.done, self.focus) if v in self.models]
        if not variants:
            return
        long_full = self.long[np.isclose(self.long["fraction"], self.long["dataset"].map(self.fractions))]
        table = ablation_table(long_full, self.focus, variants, self.datasets, self.protocol)
        if table is None:
            return
        self.blocks.append(Heading(f"Ablation of {self.focus}"))
        self.blocks.append(Table(table))
        stem = f"tables/ablation_{safe_name(self.focus)}"
        self.blocks.append(Links("Ablation table as", [
            ("Markdown", self._write(stem + ".md", f"**{table.title}**\n\n" + to_markdown(table)
                                     + "".join(f"\n_{n}_\n" for n in table.notes))),
            ("LaTeX", self._write(stem + ".tex", to_latex(table))), ("CSV", self._write(stem + ".csv", to_csv(table)))]))

    def _embeddings(self) -> None:
        """Learnt label-label similarity beside the data's label PMI, per model with embeddings."""
        from benchmark.report.embeddings import embedding_insights

        if self.store is None:
            return
        selected = self.inputs.done[self.inputs.done["model"].isin(self.models)]
        found = embedding_insights(selected, self.store.load_artifacts, self.out / "figures")
        if not found:
            return
        self.blocks.append(Heading("Label embeddings"))
        self.blocks.append(Paragraph(
            "For each model that learns label embeddings: the cosine similarity of the learnt embeddings "
            "beside the pointwise mutual information of label co-occurrence in the same training rows, in "
            "one order (average-linkage clustering of the PMI), from the lowest seed at the largest "
            "fraction. Spearman's rho compares their off-diagonal entries: positive means labels that "
            "co-occur get similar embeddings."))
        rows = [[Cell(i.dataset), Cell(i.model), Cell(str(i.n_labels)), Cell(f"{i.spearman:.3f}"),
                 Cell(f"{i.p_value:.2g}")] for i in found]
        self.blocks.append(Table(TextTable("Label-embedding insight", ["Dataset", "Model", "labels", "Spearman rho", "p"],
                                           rows), show_title=False))
        csv = "dataset,model,labels,spearman,p\n" + "".join(
            f"{i.dataset},{i.model},{i.n_labels},{i.spearman:.6f},{i.p_value:.6g}\n" for i in found)
        self.blocks.append(Links("As CSV:", [("embeddings.csv", self._write("tables/embeddings.csv", csv))]))
        for item in found:
            png, pdf = item.figure
            self.blocks.append(Image(self._rel(png), f"label embeddings of {item.model} on {item.dataset}"))
            self.blocks.append(Links(f"{item.model} on {item.dataset}:", [("PDF", self._rel(pdf))]))

    def _published(self) -> None:
        if self.published is None:
            return
        comparison = self.published
        self.blocks.append(Heading("Published figures"))
        matched = int((comparison["n_seeds"] > 0).sum())
        within = int((comparison["within_2sd"] == True).sum())  # noqa: E712 (None is neither)
        self.blocks.append(Paragraph(
            f"{len(comparison)} published figure(s), {matched} with matching harness runs (same dataset, model "
            f"and threshold protocol, training fraction 1), {within} of them within two sample standard "
            "deviations of the harness's seeds. Each figure is compared under its own protocol, whatever "
            f"protocol this report shows (here: {self.protocol}); difference = harness mean − published."))
        self.blocks.append(Table(published_figures.comparison_table(comparison), show_title=False))
        self.blocks.append(Links("As CSV:", [("published_comparison.csv",
                                             self._write("published_comparison.csv", comparison.to_csv(index=False)))]))

    def _published_other(self) -> None:
        """Figures of other protocols: a labelled block beside the harness's rows, never ranked with them."""
        other = self.published_other
        if other is None or other.empty:
            return
        self.blocks.append(Heading("Published figures under other protocols"))
        shown = other[other["dataset"].isin(self.datasets)]
        left = sorted(set(other["dataset"]) - set(self.datasets))
        block = published_figures.other_protocol(other, self.full, self.datasets, self.models, self.metrics)
        self.blocks.append(Paragraph(
            f"{len(other)} published figure(s) under a protocol that is not this harness's (`protocol = other`), "
            f"{len(shown)} of them on this report's datasets"
            + (f" (the rest, on {', '.join(left)}, are not shown: this report has no runs there)" if left else "")
            + ". They are shown beside the harness's rows as a separate block: not ranked with them, not in the "
            "average ranks, the CD diagrams or the paired tests, and no significance is claimed across protocols. "
            f"The harness's rows are this report's: {self.protocol} protocol, mean ± sample sd over seeds at the "
            "table fraction."))
        for source, group in shown.groupby("source", sort=True):
            self.blocks.append(Heading(source, 3))
            for note in dict.fromkeys(group["protocol_note"]):
                self.blocks.append(Paragraph(
                    f"**Protocol difference.** {source}'s protocol: {note} This report's: each dataset's published "
                    "train/test split (where it has one) with a seeded, stratified validation share of the training "
                    "part, hyperparameters tuned by Optuna on that validation share, "
                    f"{tables.PROTOCOL_LABELS[self.protocol]}, mean over seeds (see the header)."))
            mine = block[block["source"] == source]
            families = mine[mine["harness_model"] != ""][["method", "harness_model"]].drop_duplicates()
            if not families.empty:
                pairs = ", ".join(f"{m} ~ {', '.join(g['harness_model'])}" for m, g in families.groupby("method", sort=False))
                self.blocks.append(Paragraph(f"Same family as a harness model (Δ column): {pairs}. Same family is "
                                             "not same implementation: base learners and settings differ."))
            for metric in self.main_metrics:
                if (mine["metric"] == metric).any():
                    self.blocks.append(Table(published_figures.other_protocol_table(
                        mine, self.full, source, metric, self.datasets, self.models, self.protocol)))
        if not block.empty:
            self.blocks.append(Links("Every metric as CSV:", [("published_other.csv",
                                                               self._write("published_other.csv", block.to_csv(index=False)))]))

    def _curves(self) -> None:
        self.blocks.append(Heading("Learning curves"))
        if self.summary["fraction"].nunique() < 2:
            self.blocks.append(Paragraph("Only one training fraction has results: learning curves show single points."))
        strong = [self.focus] + [m for m in self.highlight if m != self.focus]
        figures = curves.learning_curves(self.summary, self.models, self.out / "figures", self.caption, strong)
        muted = len(self.models) > curves.MUTE_ABOVE and any(m in self.models for m in strong)
        self.blocks.append(Paragraph(
            "Mean over seeds; the band is ± one sample standard deviation (no band with one seed)."
            + (f" With {len(self.models)} models, {', '.join(m for m in strong if m in self.models)} "
               "are drawn strong with their bands over the others, muted (`--highlight a,b` adds models)."
               if muted else "")))
        self._interactive(strong)
        for dataset, kinds in figures.items():
            self.blocks.append(Heading(dataset, 3))
            if "main" in kinds:
                png, pdf = kinds["main"]
                self.blocks.append(Image(self._rel(png), f"learning curves on {dataset}"))
            links = []
            for kind, (png, pdf) in kinds.items():
                links += [(f"{kind} metrics PNG", self._rel(png)), (f"{kind} metrics PDF", self._rel(pdf))]
            self.blocks.append(Links("Files:", links))

    def _interactive(self, strong: list[str]) -> None:
        """index.html only: learning curves to explore (dataset, metric, protocol, models)."""
        from matplotlib.colors import to_hex

        from benchmark.report.interactive import curves_data, explorer_html

        styles = curves.emphasised(curves.model_styles(self.models), [m for m in strong if m in self.models])
        colours = {m: to_hex(style["color"]) for m, style in styles.items()}
        data = curves_data(self.inputs.runs, self.models, [m for m in strong if m in self.models], colours,
                           self.protocol, self.metrics)
        if not data["points"]:
            return
        self.blocks.append(Heading("Interactive learning curves", 3))
        self.blocks.append(Raw(explorer_html(data), "In `index.html`: the same curves to explore (dataset, metric, "
                                                   "threshold protocol; toggle and highlight models; hover for "
                                                   "mean ± std), offline."))

    def _significance(self) -> None:
        self.blocks += [Heading("Significance"), Heading("Friedman test and Nemenyi post-hoc across datasets", 3)]
        self.blocks.append(Paragraph(
            "Blocks are datasets, values each model's mean over seeds at the table fraction; "
            "scipy's Friedman test, scikit-posthocs' Nemenyi post-hoc (alpha = 0.05). In a "
            "critical-difference diagram (drawn for the paper's metrics), models joined by a bar are "
            "not significantly different."))
        rows, cd_blocks = [], []
        for metric in self.metrics:
            res = significance.friedman_nemenyi(self.full, metric, self.datasets, self.models)
            rows.append(res)
            if res.computed and metric in MAIN_METRICS:
                png, pdf = significance.plot_cd_diagram(res, self.out / "figures" / f"cd_{safe_name(metric)}", self.caption)
                png_rel, pdf_rel = self._rel(png), self._rel(pdf)
                cd_blocks.append(Image(png_rel, f"critical-difference diagram for {metric}"))
                cd_blocks.append(Links(f"{metric} CD diagram:", [("PNG", png_rel), ("PDF", pdf_rel)]))
        table = _friedman_table(rows)
        self.blocks.append(Table(table, show_title=False))
        self.blocks.append(Links("As CSV:", [("friedman.csv", self._write("significance/friedman.csv", _friedman_csv(rows)))]))
        self.blocks += cd_blocks
        self._paired_tests()

    def _paired_tests(self) -> None:
        self.blocks.append(Heading(f"Paired tests over seeds: {self.focus} vs each baseline", 3))
        if self.focus not in self.models:
            self.blocks.append(Paragraph(f"Cannot be computed: no finished `{self.focus}` runs in the store."))
            return
        self.blocks.append(Paragraph(
            f"Per dataset at the table fraction, {self.focus} − baseline paired by seed (a seed fixes the same "
            f"data for every model: {_variance_text(self.inputs.runs)}). Primary: paired "
            "t-test (`p_t`); with 3-5 seeds the exact Wilcoxon signed-rank test cannot reach p < 0.05 "
            "(smallest two-sided p = 2/2^n), so its p-value (`p_w`) is shown for reference only. "
            "`*` marks p_t < 0.05 (no multiple-comparison correction)."))
        long_full = self.long[np.isclose(self.long["fraction"], self.long["dataset"].map(self.fractions))]
        baselines = [m for m in self.models if m != self.focus]
        tests = significance.paired_seed_tests(long_full, self.focus, baselines, self.metrics)
        csv_link = self._write("significance/paired_seed_tests.csv", tests.to_csv(index=False))
        for metric in self.main_metrics:
            self.blocks.append(Table(_paired_table(tests[tests["metric"] == metric], metric, self.datasets, baselines, self.focus)))
        self.blocks.append(Links("All metrics as CSV:", [("paired_seed_tests.csv", csv_link)]))

    def _efficiency(self) -> None:
        self.blocks.append(Heading("Data efficiency"))
        frame = efficiency.data_efficiency(self.summary, self.focus, self.metrics, self.fractions)
        csv_link = self._write("efficiency/data_efficiency.csv", frame.to_csv(index=False))
        if self.focus not in self.models:
            self.blocks.append(Paragraph(f"Per-baseline data efficiency cannot be computed: no finished "
                                         f"`{self.focus}` runs in the store."))
            self.blocks.append(Links("Every model against the best baseline, as CSV:", [("data_efficiency.csv", csv_link)]))
            return
        modes = _resample_modes(self.inputs.runs[self.inputs.runs["model"] == self.focus])
        spread = bool(modes) and modes <= {"subset", "split"}
        per = efficiency.per_baseline(self.long, self.summary, self.focus, self.metrics, self.fractions)
        per_link = self._write("efficiency/per_baseline.csv", per.to_csv(index=False))
        baselines = [m for m in self.models if m != self.focus]
        spread_text = (
            "In parentheses, the lowest–highest of the same fraction read off each seed's own curve: the seeds "
            f"redraw the training subsets (`resample = {', '.join(sorted(modes))}`), so the range shows how much "
            "the answer depends on the subset drawn; `n.r.`: some seed never reaches it."
            if spread else
            "No spread over seeds is shown: the seeds do not redraw the training subsets ("
            + (f"`resample = {', '.join(sorted(modes))}`" if modes else "no resample mode recorded")
            + "), so every seed's curve runs over the same examples; per-seed values are in the CSV.")
        self.blocks.append(Paragraph(
            f"For each other model B: the smallest training fraction at which {self.focus}'s mean learning curve "
            f"(mean over seeds per fraction) reaches B's mean score at the table fraction, linearly interpolated "
            "between measured fractions; `≤ f`: already reached at the smallest measured fraction f; `not reached`: "
            f"never within the measured fractions (not even at full data). The `{efficiency.BEST_BASELINE}` row "
            f"compares with the best model other than {self.focus} on each dataset. " + spread_text))
        if self.summary["fraction"].nunique() < 2:
            self.blocks.append(Paragraph("Only one training fraction has results: the fractions below are not informative."))
        verdicts = efficiency.verdicts(per, self.main_metrics, self.focus)
        if verdicts:
            self.blocks.append(Bullets([f"**{d}**: {text}" for d, text in verdicts.items()]))
        if not per.empty and self.main_metrics:
            png, pdf = efficiency.plot_heatmap(per, self.main_metrics, self.datasets, baselines, self.focus,
                                               self.out / "figures" / "efficiency_per_baseline", self.caption)
            self.blocks.append(Image(self._rel(png), f"fraction of the training data {self.focus} needs per baseline"))
            self.blocks.append(Links("Heatmap:", [("PNG", self._rel(png)), ("PDF", self._rel(pdf))]))
        for metric in self.main_metrics:
            self.blocks.append(Table(_per_baseline_table(per[per["metric"] == metric], metric, self.datasets,
                                                         baselines, self.focus, spread)))
        self.blocks.append(Links("All metrics as CSV:", [("per_baseline.csv", per_link),
                                                          ("data_efficiency.csv (every model against the best "
                                                           "baseline)", csv_link)]))

    def _warnings(self) -> None:
        """What the run warned about its numbers (a tiny test set, labels never seen in
        training, imputed features), once per dataset and warning, with the cells it touches.
        Stores written before warnings were recorded have none, and nothing is shown."""
        if "warnings" not in self.inputs.runs.columns:
            return
        seen: dict[tuple[str, str], int] = {}
        for dataset, warnings in zip(self.inputs.runs["dataset"], self.inputs.runs["warnings"]):
            for text in warnings or ():
                seen[(dataset, text)] = seen.get((dataset, text), 0) + 1
        if not seen:
            return
        self.blocks.append(Heading("Warnings about the numbers"))
        rows = [[Cell(dataset), Cell(text), Cell(str(count))] for (dataset, text), count in sorted(seen.items())]
        self.blocks.append(Table(TextTable("What the runs warned about: read these cells' scores with it in mind",
                                           ["dataset", "warning", "cells"], rows)))

    def _failures_and_missing(self) -> None:
        self.blocks.append(Heading("Failed and missing cells"))
        failed = self.inputs.failed.sort_values(CELL_COORDINATES)
        if failed.empty:
            self.blocks.append(Paragraph("Failed cells: none."))
        else:
            rows = [[Cell(r.dataset), Cell(r.model), Cell(f"{r.fraction:g}"), Cell(str(r.seed)),
                     Cell(_first_line(getattr(r, "error", None)))] for r in failed.itertuples(index=False)]
            self.blocks.append(Table(TextTable(f"Failed cells ({len(rows)}): the error (for a traceback, its final exception line)",
                                               ["dataset", "model", "fraction", "seed", "error"], rows)))
        missing = self.inputs.missing_cells()
        if self.inputs.planned is None:
            self.blocks.append(Paragraph("Missing cells: the store records no planned cells, so none can be listed."))
        elif missing.empty:
            self.blocks.append(Paragraph("Missing cells (planned but not in the store): none."))
        else:
            rows = [[Cell(r.dataset), Cell(r.model), Cell(f"{r.fraction:g}"), Cell(str(r.seed)),
                     Cell(str(getattr(r, "suite", "")))] for r in missing.itertuples(index=False)]
            self.blocks.append(Table(TextTable(f"Missing cells ({len(rows)}): planned by a run but not in the store",
                                               ["dataset", "model", "fraction", "seed", "suite"], rows)))
        links = []
        if not failed.empty:
            cols = [c for c in CELL_COORDINATES + ["error", "suite", "finished_at"] if c in failed.columns]
            links.append(("failed_cells.csv", self._write("failed_cells.csv", failed[cols].to_csv(index=False))))
        if not missing.empty:
            links.append(("missing_cells.csv", self._write("missing_cells.csv", missing.to_csv(index=False))))
        if links:
            self.blocks.append(Links("As CSV:", links))

    def _runs_csv(self) -> None:
        self.blocks.append(Heading("Every run"))
        self.blocks.append(Paragraph(
            "`runs.csv`: one row per stored cell (done or failed) with timings, device, commit, "
            "hyperparameters and the error line of a failed cell. `runs_long.csv`: every stored value, "
            "one row per (cell, protocol, metric) with the threshold used, under all three protocols; "
            "join the two on (dataset, model, fraction, seed)."))
        self.blocks.append(Links("CSV:", [("runs.csv", self._write("runs.csv", runs_csv(self.inputs.runs))),
                                          ("runs_long.csv", self._write("runs_long.csv", runs_long_csv(self.inputs.runs)))]))


RUN_META = ("status", "fit_seconds", "predict_seconds", "seconds_per_epoch", "best_epoch", "n_epochs",
            "n_trials", "val_score", "n_train", "n_val", "n_test", "device", "git_commit", "suite", "finished_at")


def runs_csv(runs: pd.DataFrame) -> str:
    """One row per run (done or failed): timings, provenance, hyperparameters, error line."""
    cols = CELL_COORDINATES + [c for c in RUN_META if c in runs.columns]
    frame = runs[cols].copy()
    frame["params"] = [json.dumps(p if isinstance(p, dict) else {}, sort_keys=True, default=str) for p in runs["params"]] \
        if "params" in runs.columns else "{}"
    errors = runs["error"] if "error" in runs.columns else pd.Series([None] * len(runs), index=runs.index)
    frame["error"] = [_first_line(e) if st != "done" else "" for e, st in zip(errors, runs["status"])]
    return frame.sort_values(CELL_COORDINATES).to_csv(index=False)


def runs_long_csv(runs: pd.DataFrame) -> str:
    """Every stored value in long format: cell, protocol, metric, value, threshold.

    All protocols, not only the report's; join with runs.csv on the cell key for timings,
    provenance and hyperparameters.
    """
    rows = []
    for run in runs[runs["status"] == "done"].to_dict("records"):
        metrics = run.get("metrics") if isinstance(run.get("metrics"), dict) else {}
        thresholds = run.get("thresholds") if isinstance(run.get("thresholds"), dict) else {}
        for protocol, values in metrics.items():
            for metric, value in (values or {}).items():
                threshold = (thresholds.get(protocol) or {}).get(metric, np.nan)
                rows.append([run["dataset"], run["model"], run["fraction"], run["seed"], protocol, metric, value, threshold])
    frame = pd.DataFrame(rows, columns=CELL_COORDINATES + ["protocol", "metric", "value", "threshold"])
    return frame.sort_values(CELL_COORDINATES + ["protocol", "metric"]).to_csv(index=False)


def _friedman_table(results) -> TextTable:
    rows = []
    for r in results:
        if r.computed:
            cells = [f"{len(r.datasets)}", f"{len(r.models)}", f"{r.statistic:.3f}", f"{r.p_value:.3g}",
                     f"{r.critical_difference:.2f}",
                     ", ".join(f"{m} {v:.2f}" for m, v in r.average_ranks.items())]
        else:
            cells = [f"{len(r.datasets)}", f"{len(r.models)}", "", "", "", r.reason]
        if r.dropped:
            cells[-1] += f" (left out: {'; '.join(r.dropped)})"
        rows.append([Cell(r.metric)] + [Cell(c) for c in cells])
    return TextTable("Friedman test across datasets",
                     ["metric", "datasets", "models", "chi²", "p", "CD (Nemenyi)", "average ranks (1 = best) / note"], rows)


def _friedman_csv(results) -> str:
    rows = [{"metric": r.metric, "computed": r.computed, "n_datasets": len(r.datasets), "n_models": len(r.models),
             "statistic": r.statistic, "p_value": r.p_value, "critical_difference": r.critical_difference,
             "average_ranks": json.dumps({} if r.average_ranks is None else r.average_ranks.round(6).to_dict()),
             "dropped": "; ".join(r.dropped), "reason": r.reason} for r in results]
    return pd.DataFrame(rows).to_csv(index=False)


def _paired_table(tests: pd.DataFrame, metric: str, datasets, baselines, focus) -> TextTable:
    rows = []
    index = tests.set_index(["dataset", "baseline"]) if not tests.empty else None
    pair_counts = set(tests["n_pairs"]) if not tests.empty else set()
    same_n = len(pair_counts) == 1
    for dataset in datasets:
        row = [Cell(dataset)]
        for baseline in baselines:
            if index is None or (dataset, baseline) not in index.index:
                row.append(Cell("n/a"))
                continue
            t = index.loc[(dataset, baseline)]
            n_text = "" if same_n else f", n={t['n_pairs']}"
            if t["note"]:
                row.append(Cell(f"{t['mean_diff']:+.3f} (no test{n_text})"))
                continue
            star = "*" if t["t_p"] < significance.ALPHA else ""
            p_w = "n/a" if np.isnan(t["wilcoxon_p"]) else f"{t['wilcoxon_p']:.2g}"
            row.append(Cell(f"{t['mean_diff']:+.3f}{star} (p_t={t['t_p']:.2g}, p_w={p_w}{n_text})"))
        rows.append(row)
    seeds = f"{next(iter(pair_counts))} paired seeds" if same_n else "n = paired seeds"
    return TextTable(f"{metric}: {focus} − baseline, mean over {seeds}", ["Dataset"] + list(baselines), rows)


def _per_baseline_table(frame: pd.DataFrame, metric: str, datasets, baselines, focus, spread: bool) -> TextTable:
    """Baselines as rows (the best baseline first), datasets as columns, then the <= 50% count."""
    index = frame.set_index(["dataset", "baseline"]) if not frame.empty else None
    rows = []
    for baseline in [efficiency.BEST_BASELINE] + list(baselines):
        row = [Cell(baseline)]
        for dataset in datasets:
            if index is None or (dataset, baseline) not in index.index:
                row.append(Cell("n/a"))
                continue
            r = index.loc[(dataset, baseline)]
            text = efficiency.describe_with_spread(r, spread)
            if baseline == efficiency.BEST_BASELINE:
                text += f" · {r['target_model']}"
            row.append(Cell(text, mean=None if np.isnan(r["fraction_needed"]) else float(r["fraction_needed"])))
        rows.append(row)
    n_body = len(rows)
    count = [Cell(f"reached with ≤ {efficiency.CLAIM_FRACTION:.0%}")]
    for dataset in datasets:
        sub = frame[(frame["dataset"] == dataset) & (frame["baseline"] != efficiency.BEST_BASELINE)]
        hits = sum(efficiency.reached_within(r) for r in sub.to_dict("records"))
        count.append(Cell(f"{hits} of {len(sub)}" if len(sub) else "n/a"))
    rows.append(count)
    seeds = "; in parentheses the range over seeds" if spread else ""
    return TextTable(f"{metric}: training fraction {focus} needs to reach each model's full-data mean{seeds}",
                     ["Baseline"] + list(datasets), rows, n_body_rows=n_body)
