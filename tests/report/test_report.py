"""Reports built from a real results store: numbers, bold cells, LaTeX, figures, index.

A session fixture runs ``python -m benchmark run`` on a tiny suite (prior, br, mlp and a
deliberately failing test-only model on the bundled emotions and yeast datasets, two
fractions, two seeds, no tuning) and adds one planned-but-never-run cell, so the report
sees finished, failed and missing cells. Expected numbers are recomputed straight from
the SQLite file with ``sqlite3``/``json``/``statistics``, independently of the store and
report code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO_ROOT
from scipy.stats import rankdata, ttest_rel

from benchmark.cli import main as cli_main
from benchmark.report import ReportInputs, build_report, inputs_from_store
from benchmark.report.efficiency import fraction_to_reach

MAIN = ["ebF1", "miF1", "maF1", "P@1"]
MODELS = ["prior", "br", "mlp"]
DATASETS = ["emotions", "yeast"]
FOCUS = "mlp"  # stands in for cgmvae, which is too slow to train here
MISSING_CELL = ("emotions", "br", 0.25, 0)

SUITE = textwrap.dedent(
    """
    name = "report-test"
    datasets = ["emotions", "yeast"]
    models = ["prior", "br", "mlp", "broken_for_report"]
    fractions = [0.5, 1.0]
    seeds = [0, 1]
    trials = 0
    epochs = 3
    split_seed = 0
    device = "cpu"
    val_size = 0.15

    [model.mlp]  # small network: the report needs real numbers, not a good model
    trials = 0
    params = { width = 64, depth = 1 }
    """
)

BROKEN_MODEL = textwrap.dedent(
    '''
    """Test-only model that always fails, so the report has a failed cell to list."""
    from benchmark.modelapi.base import Model


    class BrokenForReport(Model):
        name = "broken_for_report"
        family = "test"
        defaults = {}
        search_space = {}

        def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
            raise RuntimeError("deliberate failure for the report tests\\nsecond line")

        def predict_proba(self, X):
            raise RuntimeError("never fitted")
    '''
)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory, mirror_dir) -> Path:
    """A results store filled by a real ``benchmark run`` on a tiny suite."""
    root = tmp_path_factory.mktemp("report_store")
    (root / "models").mkdir()
    (root / "models" / "broken_for_report.py").write_text(BROKEN_MODEL)
    (root / "tiny.toml").write_text(SUITE)
    env = dict(os.environ, MLCBENCH_MODELS_PATH=str(root / "models"), OMP_NUM_THREADS="1")
    results = root / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--suite", str(root / "tiny.toml"),
         "--results", str(results), "--quiet"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert (results / "mlcbench.sqlite").exists(), proc.stdout + proc.stderr
    from benchmark.store.results import ResultsStore

    store = ResultsStore(results)  # a cell some interrupted run planned but never wrote
    store.plan([MISSING_CELL], suite="report-test", suite_hash="planned-by-test")
    store.dispose()
    return results


@pytest.fixture(scope="session")
def stored_runs(store_dir) -> list[dict]:
    """The rows as sqlite3 and json see them: the independent source of truth."""
    with sqlite3.connect(store_dir / "mlcbench.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM mlcbench_runs")]
    for row in rows:
        row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return rows


@pytest.fixture(scope="session")
def report(store_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    return build_report(store_dir, out, protocol="val", focus=FOCUS)


def expected_cells(rows, metric, protocol="val", fraction=1.0):
    """{(dataset, model): [values over seeds]} at ``fraction`` from the raw rows."""
    cells: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["status"] == "done" and abs(row["fraction"] - fraction) < 1e-9:
            cells.setdefault((row["dataset"], row["model"]), []).append(row["metrics"][protocol][metric])
    return cells


# ---------------------------------------------------------------- the store itself


@pytest.mark.slow
def test_store_has_done_and_failed_cells(stored_runs):
    done = [r for r in stored_runs if r["status"] == "done"]
    failed = [r for r in stored_runs if r["status"] != "done"]
    assert {(r["dataset"], r["model"]) for r in done} == {(d, m) for d in DATASETS for m in MODELS}
    assert len(done) == len(DATASETS) * len(MODELS) * 2 * 2
    assert failed and all(r["model"] == "broken_for_report" for r in failed)


# ---------------------------------------------------------------- tables


@pytest.mark.slow
@pytest.mark.parametrize("metric", MAIN)
def test_table_numbers_match_the_stored_rows(report, stored_runs, metric):
    table = pd.read_csv(report.out_dir / "tables" / f"{metric.replace('@', '')}.csv")
    cells = table[table["column"].isin(MODELS) & table["Dataset"].isin(DATASETS)]
    expected = expected_cells(stored_runs, metric)
    assert len(cells) == len(expected) == len(DATASETS) * len(MODELS)
    for cell in cells.itertuples():
        values = expected[(cell.Dataset, cell.column)]
        mean, std = statistics.mean(values), statistics.stdev(values)
        assert cell.n == len(values) == 2
        assert cell.mean == pytest.approx(mean, abs=1e-12)
        assert cell.std == pytest.approx(std, abs=1e-12)
        assert cell.text == f"{mean:.3f} ± {std:.3f}"
    for dataset in DATASETS:
        row = cells[cells["Dataset"] == dataset]
        best_mean = max(statistics.mean(expected[(dataset, m)]) for m in MODELS)
        assert set(row.loc[row["best"] == 1, "column"]) == {
            m for m in MODELS if statistics.mean(expected[(dataset, m)]) == best_mean
        }


def _markdown_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


@pytest.mark.parametrize("metric", MAIN)
def test_markdown_table_layout_bold_and_average_rank(report, stored_runs, metric):
    rows = _markdown_rows((report.out_dir / "tables" / f"{metric.replace('@', '')}.md").read_text())
    header, body = rows[0], rows[2:]
    assert header == ["Dataset", "seeds"] + MODELS
    assert [r[0] for r in body] == DATASETS + ["Average rank"]
    expected = expected_cells(stored_runs, metric)
    means = {d: [statistics.mean(expected[(d, m)]) for m in MODELS] for d in DATASETS}
    for row in body[:-1]:
        assert row[1] == "2"  # seeds
        bold = [i for i, c in enumerate(row[2:]) if c.startswith("**")]
        assert bold == [i for i, v in enumerate(means[row[0]]) if v == max(means[row[0]])]
    # average rank recomputed with scipy: rank 1 = best, ties averaged
    ranks = [rankdata([-v for v in means[d]]) for d in DATASETS]
    avg = [statistics.mean(r[i] for r in ranks) for i in range(len(MODELS))]
    assert [c.strip("*") for c in body[-1][2:]] == [f"{a:.2f}" for a in avg]


def _strip_escaped_braces(tex: str) -> str:
    return tex.replace(r"\{", "").replace(r"\}", "")


@pytest.mark.parametrize("metric", MAIN + ["HA"])
def test_latex_table_is_compiling_ready(report, metric):
    tex = (report.out_dir / "tables" / f"{metric.replace('@', '')}.tex").read_text()
    depth = 0
    for ch in _strip_escaped_braces(tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", tex).group(1)
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(rows) == 1 + len(DATASETS) + 1  # header, one per dataset, average rank
    assert all(line.count("&") == len(spec) - 1 for line in rows)
    assert [line.split("&")[0].strip() for line in rows[1:-1]] == DATASETS
    assert r"\textbf{" in tex and "$\\pm$" in tex
    # no unescaped specials in the body (underscores, percent, ampersands outside column breaks)
    assert not re.search(r"(?<!\\)[_%#]", tex)
    assert "±" not in tex and "—" not in tex


def test_standalone_latex_document_inputs_every_table(report):
    doc = (report.out_dir / "tables" / "tables.tex").read_text()
    assert r"\usepackage{booktabs}" in doc and r"\begin{document}" in doc
    for name in re.findall(r"\\input\{([^}]+)\}", doc):
        assert (report.out_dir / "tables" / name).exists()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (structure is checked above)")
def test_latex_tables_compile_with_pdflatex(report, tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(report.out_dir / "tables", tables)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
                          cwd=tables, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tables / "tables.pdf").read_bytes().startswith(b"%PDF-")


# ---------------------------------------------------------------- figures and index


def test_every_figure_is_a_valid_nonempty_png_or_pdf(report):
    figures = [p for p in report.files if p.suffix in (".png", ".pdf")]
    pngs = [p for p in figures if p.suffix == ".png"]
    # one main + one "other metrics" learning curve per dataset, one CD diagram per paper metric
    assert {p.name for p in pngs} >= {f"curve_{d}_main.png" for d in DATASETS} | {"cd_ebF1.png", "cd_P1.png"}
    for path in figures:
        data = path.read_bytes()
        assert len(data) > 2000, path
        magic = b"\x89PNG\r\n\x1a\n" if path.suffix == ".png" else b"%PDF-"
        assert data.startswith(magic), path
        assert path.with_suffix(".pdf" if path.suffix == ".png" else ".png").exists()


def test_index_links_resolve_and_state_provenance(report, stored_runs):
    md = (report.out_dir / "index.md").read_text()
    page = (report.out_dir / "index.html").read_text()
    targets = re.findall(r"\]\(([^)#][^)]*)\)", md)
    html_targets = re.findall(r'(?:href|src)="([^"#][^"]*)"', page)
    assert len(targets) >= 20 and set(html_targets) == set(targets)
    for target in targets:
        assert (report.out_dir / target).is_file(), target
    linked = set(targets)
    for path in report.files:
        rel = path.relative_to(report.out_dir).as_posix()
        assert rel in linked or rel in ("index.md", "index.html"), f"{rel} is not linked from the index"
    commit = next(r["git_commit"] for r in stored_runs if r["git_commit"])
    for fact in ("report-test", "**val**", commit, "cpu"):
        assert fact in md


def test_failed_and_missing_cells_are_listed(report, stored_runs):
    md = (report.out_dir / "index.md").read_text()
    failed = [r for r in stored_runs if r["status"] != "done"]
    assert f"Failed cells ({len(failed)})" in md
    assert "deliberate failure for the report tests" in md and "second line" not in md
    assert "Missing cells (1)" in md
    assert "| emotions | br | 0.25 | 0 | report-test |" in md
    assert report.n_failed == len(failed) and report.n_missing == 1


def test_run_csvs_hold_every_stored_value_and_failure(report, stored_runs):
    done = pd.read_csv(report.out_dir / "runs_long.csv")
    n_values = sum(len(v) for r in stored_runs if r["status"] == "done" for v in r["metrics"].values())
    assert len(done) == n_values
    assert set(done["protocol"]) == {"val", "fixed", "oracle"}
    row = next(r for r in stored_runs if r["status"] == "done")
    got = done[(done["dataset"] == row["dataset"]) & (done["model"] == row["model"])
               & (done["fraction"] == row["fraction"]) & (done["seed"] == row["seed"])
               & (done["protocol"] == "oracle") & (done["metric"] == "maF1")]
    assert got["value"].item() == pytest.approx(row["metrics"]["oracle"]["maF1"], abs=1e-12)
    runs = pd.read_csv(report.out_dir / "runs.csv", keep_default_na=False)
    assert len(runs) == len(stored_runs)
    failed = runs[runs["status"] == "failed"]
    assert len(failed) == sum(r["status"] == "failed" for r in stored_runs)
    assert all(e == "RuntimeError: deliberate failure for the report tests" for e in failed["error"])


# ---------------------------------------------------------------- statistics


def test_paired_tests_pair_by_seed(report, stored_runs):
    tests = pd.read_csv(report.out_dir / "significance" / "paired_seed_tests.csv")
    for dataset in DATASETS:
        by_seed = {}
        for r in stored_runs:
            if r["status"] == "done" and r["dataset"] == dataset and r["fraction"] == 1.0:
                by_seed.setdefault(r["model"], {})[r["seed"]] = r["metrics"]["val"]["maF1"]
        row = tests[(tests["dataset"] == dataset) & (tests["metric"] == "maF1") & (tests["baseline"] == "br")]
        seeds = sorted(by_seed[FOCUS])
        focus, base = [by_seed[FOCUS][s] for s in seeds], [by_seed["br"][s] for s in seeds]
        assert row["n_pairs"].item() == 2
        assert row["mean_diff"].item() == pytest.approx(statistics.mean(f - b for f, b in zip(focus, base)))
        if pd.isna(row["t_p"].item()):
            assert row["note"].item()
        else:
            assert row["t_p"].item() == pytest.approx(ttest_rel(focus, base).pvalue)


def test_friedman_runs_on_two_datasets_and_three_models(report):
    friedman = pd.read_csv(report.out_dir / "significance" / "friedman.csv").set_index("metric")
    assert friedman.loc["ebF1", "n_datasets"] == 2 and friedman.loc["ebF1", "n_models"] == 3
    ranks = json.loads(friedman.loc["ebF1", "average_ranks"])
    assert sorted(ranks) == sorted(MODELS) and sum(ranks.values()) == pytest.approx(6.0)


def test_fraction_to_reach_interpolates_along_the_curve():
    fractions, means = [0.1, 0.5, 1.0], [0.2, 0.4, 0.6]
    assert fraction_to_reach(fractions, means, 0.5) == (pytest.approx(0.75), "interpolated")
    assert fraction_to_reach(fractions, means, 0.1) == (0.1, "at_first")
    frac, status = fraction_to_reach(fractions, means, 0.61)
    assert status == "not_reached" and frac != frac
    # lower is better (ranking loss): reaching means going below the target
    assert fraction_to_reach(fractions, [0.6, 0.4, 0.2], 0.3, higher=False) == (pytest.approx(0.75), "interpolated")


def test_data_efficiency_uses_the_best_baselines_full_data_mean(report, stored_runs):
    eff = pd.read_csv(report.out_dir / "efficiency" / "data_efficiency.csv")
    expected = expected_cells(stored_runs, "ebF1")
    target_model = max((m for m in MODELS if m != FOCUS), key=lambda m: statistics.mean(expected[("emotions", m)]))
    rows = eff[(eff["dataset"] == "emotions") & (eff["metric"] == "ebF1")]
    assert set(rows["target_model"]) == {target_model}
    assert rows["target"].iloc[0] == pytest.approx(statistics.mean(expected[("emotions", target_model)]))
    own = rows[rows["model"] == target_model]
    assert own["status"].item() in ("interpolated", "at_first") and own["fraction_needed"].item() <= 1.0


# ---------------------------------------------------------------- degraded stores


def test_one_seed_one_dataset_still_reports_and_says_what_is_missing(store_dir, tmp_path):
    inputs = inputs_from_store(store_dir)
    runs = inputs.runs[(inputs.runs["seed"] == 0) & (inputs.runs["dataset"] == "yeast")]
    result = build_report(ReportInputs(runs=runs, planned=inputs.planned), tmp_path, focus=FOCUS,
                          metrics=["ebF1", "maF1"])
    md = (tmp_path / "index.md").read_text()
    assert "± —" in md
    assert "cannot be computed: needs at least 2 datasets" in md
    assert "fewer than 2 paired seeds" in (tmp_path / "significance" / "paired_seed_tests.csv").read_text()
    assert (tmp_path / "figures" / "curve_yeast_main.png").exists()
    assert result.n_missing > 0 and f"Missing cells ({result.n_missing})" in md
    assert r"\textemdash" not in (tmp_path / "tables" / "ebF1.tex").read_text()


def test_oracle_report_is_labelled_optimistic(store_dir, tmp_path, stored_runs):
    build_report(store_dir, tmp_path, protocol="oracle", focus=FOCUS, metrics=["maF1"])
    md = (tmp_path / "index.md").read_text()
    assert "ORACLE protocol" in md and "optimistic" in md
    tex = (tmp_path / "tables" / "maF1.tex").read_text()
    assert "ORACLE" in tex and "optimistic" in tex
    table = pd.read_csv(tmp_path / "tables" / "maF1.csv")
    cell = table[(table["Dataset"] == "yeast") & (table["column"] == "br")]
    assert cell["mean"].item() == pytest.approx(statistics.mean(expected_cells(stored_runs, "maF1", "oracle")[("yeast", "br")]))


def test_cli_report_succeeds_on_the_store(store_dir, tmp_path, capsys):
    assert cli_main(["report", "--results", str(store_dir), "--out", str(tmp_path), "--metrics", "P@1",
                     "--focus", FOCUS]) == 0
    assert "finished" in capsys.readouterr().out
    assert (tmp_path / "index.html").exists() and (tmp_path / "tables" / "P1.tex").exists()


def test_missing_or_empty_store_exits_nonzero_with_a_message(tmp_path, capsys):
    assert cli_main(["report", "--results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) != 0
    assert "no results store" in capsys.readouterr().err
    from benchmark.store.results import ResultsStore

    ResultsStore(tmp_path / "empty").dispose()  # creates the tables, stores nothing
    assert cli_main(["report", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) != 0
    assert "no finished runs" in capsys.readouterr().err
    assert not (tmp_path / "o" / "index.md").exists()


def test_unknown_metric_is_a_clear_error(store_dir, tmp_path, capsys):
    assert cli_main(["report", "--results", str(store_dir), "--out", str(tmp_path), "--metrics", "F2"]) == 2
    assert "unknown metric 'F2'" in capsys.readouterr().err


# ---------------------------------------------------------------- styles and the committed example


def test_every_model_gets_a_distinct_marker_and_line_style():
    from benchmark.report.curves import model_styles

    models = ["prior", "br", "cc", "ecc", "mlknn", "mlp", "mpvae", "cgmvae"]
    styles = model_styles(models)
    for key in ("marker", "linestyle", "color"):
        values = [repr(styles[m][key]) for m in models]
        assert len(set(values)) == len(models), key


def test_committed_example_matches_its_committed_store():
    """reports/example must be what `report` makes of reports/example/store (no stale numbers)."""
    example = REPO_ROOT / "reports" / "example"
    if not (example / "store" / "mlcbench.sqlite").exists():
        pytest.skip("no committed example report")
    with sqlite3.connect(example / "store" / "mlcbench.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM mlcbench_runs")]
    for row in rows:
        row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    expected = expected_cells(rows, "ebF1")
    table = pd.read_csv(example / "tables" / "ebF1.csv")
    cells = table[table["column"] != "seeds"]
    cells = cells[cells["Dataset"] != "Average rank"]
    assert len(cells) == len(expected)
    for cell in cells.itertuples():
        assert cell.mean == pytest.approx(statistics.mean(expected[(cell.Dataset, cell.column)]), abs=1e-12)


@pytest.mark.slow
def test_regenerating_removes_only_the_previous_reports_stale_files(store_dir, tmp_path):
    inputs = inputs_from_store(store_dir)
    build_report(inputs, tmp_path, focus=FOCUS, metrics=["ebF1"])
    (tmp_path / "notes.txt").write_text("the user's own file")
    assert (tmp_path / "figures" / "curve_emotions_main.png").exists()
    only_yeast = ReportInputs(runs=inputs.runs[inputs.runs["dataset"] == "yeast"], planned=inputs.planned)
    build_report(only_yeast, tmp_path, focus=FOCUS, metrics=["ebF1"])
    assert not (tmp_path / "figures" / "curve_emotions_main.png").exists()
    assert (tmp_path / "figures" / "curve_yeast_main.png").exists()
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"
