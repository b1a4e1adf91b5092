"""``report --published``: published figures beside the harness's, from a store built here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main as cli_main
from benchmark.report import ReportError, build_report
from benchmark.report.published import NO_MATCH, compare, load_published
from benchmark.store.results import ResultsStore

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = REPO_ROOT / "reports" / "published.csv"
METRICS = ("ebF1", "miF1", "maF1", "P@1")
# Three seeds of cgmvae on mirflickr under the oracle protocol, chosen against the shipped
# figures (ebF1 0.531, miF1 0.573, maF1 0.441, P@1 0.727): ebF1 and P@1 within 2 sd,
# miF1 and maF1 outside.
SEEDS = {
    "ebF1": [0.520, 0.530, 0.540],  # mean 0.530, sd 0.010: diff -0.001, within
    "miF1": [0.600, 0.602, 0.604],  # mean 0.602, sd 0.002: diff +0.029, outside
    "maF1": [0.400, 0.410, 0.420],  # mean 0.410, sd 0.010: diff -0.031, outside
    "P@1": [0.700, 0.730, 0.760],   # mean 0.730, sd 0.030: diff +0.003, within
}


def _row(dataset, model, seed, values: dict, fraction=1.0) -> dict:
    metrics = {p: dict(values) for p in ("val", "fixed")}
    metrics["oracle"] = {m: v + 0.0 for m, v in values.items()}
    metrics["val"] = {m: v - 0.05 for m, v in values.items()}  # so a protocol mix-up shows
    return {"dataset": dataset, "model": model, "fraction": fraction, "seed": seed, "status": "done",
            "metrics": metrics, "params": {}, "suite": "published-test"}


def _store(root: Path, with_mirflickr: bool) -> Path:
    store = ResultsStore(root)
    for seed in range(3):
        if with_mirflickr:
            store.record(_row("mirflickr", "cgmvae", seed, {m: SEEDS[m][seed] for m in METRICS}))
            store.record(_row("mirflickr", "cgmvae", seed, {m: 0.1 for m in METRICS}, fraction=0.5))
            store.record(_row("mirflickr", "br", seed, {m: 0.45 + 0.01 * seed for m in METRICS}))
        store.record(_row("yeast", "cgmvae", seed, {m: 0.6 + 0.01 * seed for m in METRICS}))
    store.dispose()
    return root


def test_shipped_file_holds_the_reference_rerun():
    pub = load_published(SHIPPED)
    assert set(pub["dataset"]) == {"mirflickr"} and set(pub["model"]) == {"cgmvae"}
    assert set(pub["protocol"]) == {"oracle"}
    assert dict(zip(pub["metric"], pub["value"])) == {"ebF1": 0.531, "miF1": 0.573, "maF1": 0.441, "P@1": 0.727}


def test_comparison_numbers_on_a_matching_store(tmp_path):
    from benchmark.report.inputs import inputs_from_store

    runs = inputs_from_store(_store(tmp_path / "results", True)).runs
    cmp = compare(runs, load_published(SHIPPED)).set_index("metric")
    for metric in METRICS:
        assert cmp.loc[metric, "n_seeds"] == 3  # fraction 0.5 and other models are not mixed in
        assert cmp.loc[metric, "ours_mean"] == pytest.approx(np.mean(SEEDS[metric]), abs=1e-12)
        assert cmp.loc[metric, "ours_std"] == pytest.approx(np.std(SEEDS[metric], ddof=1), abs=1e-12)
    assert cmp.loc["ebF1", "difference"] == pytest.approx(0.530 - 0.531, abs=1e-12)
    assert cmp.loc["miF1", "difference"] == pytest.approx(0.602 - 0.573, abs=1e-12)
    assert cmp["within_2sd"].to_dict() == {"ebF1": True, "miF1": False, "maF1": False, "P@1": True}


def test_report_with_published_on_a_matching_store(tmp_path):
    results = _store(tmp_path / "results", True)
    out = tmp_path / "report"
    rc = cli_main(["report", "--results", str(results), "--out", str(out), "--protocol", "oracle",
                   "--focus", "cgmvae", "--published", str(SHIPPED)])
    assert rc == 0
    index = (out / "index.md").read_text()
    assert "## Published figures" in index
    assert "4 published figure(s), 4 with matching harness runs" in index and "2 of them within two" in index
    section = index.split("## Published figures", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\| mirflickr \| cgmvae \| ebF1 \| oracle \| 0\.531 \| 0\.530 ± 0\.010 \| 3 \| "
                     r"Δ -0\.001, within 2 sd \|", section)
    assert "Δ +0.029, outside 2 sd" in section and "Δ -0.031, outside 2 sd" in section
    # the oracle table has a published row under mirflickr, in the cgmvae column only
    table = (out / "tables" / "ebF1.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Dataset"))
    row = next(line for line in table.splitlines() if line.startswith("| mirflickr (published)"))
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    assert cells["cgmvae"] == "0.531 (Δ -0.001, within 2 sd)" and cells["br"] == ""
    assert "(published) rows" in table
    assert r"$\Delta$ -0.001" in (out / "tables" / "ebF1.tex").read_text()
    csv = pd.read_csv(out / "published_comparison.csv")
    assert len(csv) == 4 and csv["n_seeds"].tolist() == [3, 3, 3, 3]


def test_val_report_compares_published_under_their_own_protocol(tmp_path):
    results = _store(tmp_path / "results", True)
    out = tmp_path / "report"
    build_report(results, out, protocol="val", focus="cgmvae", published=SHIPPED)
    section = (out / "index.md").read_text().split("## Published figures", 1)[1]
    assert "0.530 ± 0.010" in section  # oracle values (val ones are 0.05 lower)
    assert "(published)" not in (out / "tables" / "ebF1.md").read_text()  # tables show val numbers only


def test_report_with_published_on_a_store_without_the_pairs(tmp_path):
    results = _store(tmp_path / "results", False)
    out = tmp_path / "report"
    build_report(results, out, protocol="oracle", focus="cgmvae", published=SHIPPED)
    index = (out / "index.md").read_text()
    assert "4 published figure(s), 0 with matching harness runs" in index
    section = index.split("## Published figures", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| mirflickr")]
    assert len(rows) == 4 and all(f"| {NO_MATCH} |" in line for line in rows)
    assert "(published)" not in (out / "tables" / "ebF1.md").read_text()


def test_bad_published_files_are_clear_errors(tmp_path):
    results = _store(tmp_path / "results", True)
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,model,metric,value\nmirflickr,cgmvae,ebF1,0.5\n")
    with pytest.raises(ReportError, match="lacks column.*protocol"):
        build_report(results, tmp_path / "r1", published=bad)
    bad.write_text("dataset,model,metric,protocol,value,source\nmirflickr,cgmvae,ebF1,test,0.5,x\n")
    with pytest.raises(ReportError, match="data row 1: protocol 'test'"):
        build_report(results, tmp_path / "r2", published=bad)
    bad.write_text("dataset,model,metric,protocol,value,source\nmirflickr,cgmvae,F1,oracle,high,x\n")
    with pytest.raises(ReportError, match="data row 1: value 'high' is not a number"):
        build_report(results, tmp_path / "r3", published=bad)
    with pytest.raises(ReportError, match="does not exist"):
        build_report(results, tmp_path / "r4", published=tmp_path / "nope.csv")
