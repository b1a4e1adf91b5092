"""``report --published``: published figures beside the harness's, from a store built here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO_ROOT

from benchmark.cli import main as cli_main
from benchmark.report import ReportError, build_report
from benchmark.report.published import NO_MATCH, compare, load_published
from benchmark.store.results import ResultsStore

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


@pytest.mark.slow
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


@pytest.mark.slow
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


# ---------------------------------------------------------------- other protocols (issue 22)

STUDY = REPO_ROOT / "reports" / "published" / "bogatinovski2022.csv"
QUICK = REPO_ROOT / "reports" / "quick" / "store"


def test_study_file_loads_with_other_protocol_and_its_stated_protocol():
    pub = load_published(STUDY)
    assert len(pub) == 3013 and set(pub["protocol"]) == {"other"}
    assert pub["model"].nunique() == 28 and "RFPCT" in set(pub["model"])  # methods the harness lacks are fine
    notes = set(pub["protocol_note"])
    assert len(notes) == 1 and "3-fold cross-validation" in notes.pop()


def test_other_protocol_needs_its_protocol_stated(tmp_path):
    bad = tmp_path / "study.csv"
    bad.write_text("dataset,model,metric,protocol,value,source\nyeast,BR,ebF1,other,0.5,x\n")
    with pytest.raises(ReportError, match="data row 1: protocol 'other' needs the source's protocol stated"):
        load_published(bad)
    (tmp_path / "study.protocol.md").write_text("5-fold CV, threshold 0.5.\n")
    assert load_published(bad)["protocol_note"].tolist() == ["5-fold CV, threshold 0.5."]
    with_column = tmp_path / "inline.csv"
    with_column.write_text("dataset,model,metric,protocol,value,source,protocol_note,same_family_as\n"
                           "yeast,MyBR,ebF1,other,0.5,x,their own split,br\n")
    pub = load_published(with_column)
    assert pub["protocol_note"].item() == "their own split" and pub["same_family_as"].item() == "br"


@pytest.mark.slow
@pytest.mark.skipif(not (QUICK / "mlcbench.sqlite").exists(), reason="no committed quick store")
def test_quick_store_beside_the_study_as_a_separate_unranked_block(tmp_path):
    import json
    import sqlite3

    out = tmp_path / "report"
    build_report(QUICK, out, protocol="val", focus="cgmvae", metrics=["ebF1", "P@1"], published=STUDY)
    index = (out / "index.md").read_text()
    assert "## Published figures under other protocols" in index
    assert "## Published figures\n" not in index  # no figure under our protocols: no same-protocol section
    section = index.split("## Published figures under other protocols", 1)[1].split("\n## ", 1)[0]
    assert "**Protocol difference.** Bogatinovski et al. 2022's protocol: the published train/test split" in section
    assert "not ranked with them" in section and "no significance is claimed across protocols" in section
    with sqlite3.connect(QUICK / "mlcbench.sqlite") as conn:
        rows = conn.execute("SELECT dataset, model, metrics FROM mlcbench_runs WHERE status = 'done' "
                            "AND fraction = 1.0").fetchall()
    br = [json.loads(m)["val"]["ebF1"] for d, model, m in rows if d == "emotions" and model == "br"]
    rf = [json.loads(m)["val"]["ebF1"] for d, model, m in rows if d == "scene" and model == "rf"]
    other = pd.read_csv(out / "published_other.csv")
    cell = other[(other["dataset"] == "emotions") & (other["method"] == "BR") & (other["metric"] == "ebF1")]
    assert cell["published"].item() == 0.650 and cell["harness_model"].item() == "br"
    assert cell["difference"].item() == pytest.approx(np.mean(br) - 0.650, abs=1e-12)
    pct = other[(other["dataset"] == "scene") & (other["method"] == "RFPCT") & (other["metric"] == "ebF1")]
    assert pct["difference"].item() == pytest.approx(np.mean(rf) - 0.757, abs=1e-12)
    rakel = other[(other["dataset"] == "yeast") & (other["method"] == "RAkEL2") & (other["metric"] == "ebF1")]
    assert rakel["harness_model"].tolist() == ["rakeld", "rakelo"]
    assert set(other["dataset"]) == {"emotions", "scene", "yeast"}  # the study's other 11 datasets are left out
    assert "| BR (family: br) | 0.650 | br +0.005 |" in section
    assert "| TREMLCnew | 0.693 |  |" in section  # a method without a harness family: value, no difference
    # nothing of the study enters the harness's tables, ranks or tests
    assert "TREMLC" not in (out / "tables" / "ebF1.md").read_text()
    assert "TREMLC" not in (out / "significance" / "friedman.csv").read_text()
    assert "TREMLC" not in (out / "significance" / "paired_seed_tests.csv").read_text()
