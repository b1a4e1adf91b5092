"""Per-baseline data efficiency on the committed quick store (reports/quick/store).

Expected numbers are recomputed from the SQLite file with sqlite3/json/statistics and a
hand-written interpolation, independently of the report code.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import defaultdict

import pandas as pd
import pytest
from helpers import REPO_ROOT

from benchmark.report import build_report

QUICK = REPO_ROOT / "reports" / "quick" / "store"
MAIN = ("ebF1", "miF1", "maF1", "P@1")

pytestmark = [pytest.mark.skipif(not (QUICK / "mlcbench.sqlite").exists(), reason="no committed quick store"), pytest.mark.slow]  # slow: reads the whole committed quick store


@pytest.fixture(scope="module")
def values():
    """{(dataset, model, metric): {fraction: {seed: value}}} under the val protocol, from sqlite."""
    with sqlite3.connect(QUICK / "mlcbench.sqlite") as conn:
        rows = conn.execute("SELECT dataset, model, fraction, seed, metrics FROM mlcbench_runs "
                            "WHERE status = 'done'").fetchall()
    out: dict = defaultdict(lambda: defaultdict(dict))
    for dataset, model, fraction, seed, metrics in rows:
        for metric, value in json.loads(metrics)["val"].items():
            out[(dataset, model, metric)][fraction][seed] = value
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick_eff")
    build_report(QUICK, out, protocol="val", focus="cgmvae", metrics=list(MAIN))
    return out


def reach(points, target):
    """Hand-written: first fraction whose value reaches target, interpolated from the previous one."""
    points = sorted(points)
    for i, (f, v) in enumerate(points):
        if v >= target:
            if i == 0:
                return f, "at_first"
            f0, v0 = points[i - 1]
            return f0 + (target - v0) * (f - f0) / (v - v0), "interpolated"
    return None, "not_reached"


def test_every_baseline_has_its_own_target_and_fraction(report, values):
    per = pd.read_csv(report / "efficiency" / "per_baseline.csv")
    rows = per[per["baseline"] != "best baseline"]
    assert len(rows) == 3 * 4 * 15  # datasets x main metrics x the 15 other models
    for row in rows.itertuples():
        target = statistics.mean(values[(row.dataset, row.baseline, row.metric)][1.0].values())
        assert row.target == pytest.approx(target, abs=1e-12)
        curve = values[(row.dataset, "cgmvae", row.metric)]
        fraction, status = reach([(f, statistics.mean(s.values())) for f, s in curve.items()], target)
        assert row.status == status, (row.dataset, row.metric, row.baseline)
        if fraction is not None:
            assert row.fraction_needed == pytest.approx(fraction, abs=1e-9)
        for seed, text, seed_status in zip(str(row.seeds).split(";"), str(row.seed_fractions).split(";"),
                                           str(row.seed_statuses).split(";")):
            f_seed, st_seed = reach([(f, s[int(seed)]) for f, s in curve.items()], target)
            assert seed_status == st_seed
            assert (text == "") == (f_seed is None)
            if f_seed is not None:
                assert float(text) == pytest.approx(f_seed, rel=1e-5)


def test_known_cells_on_the_quick_store(report):
    per = pd.read_csv(report / "efficiency" / "per_baseline.csv").set_index(["dataset", "metric", "baseline"])
    # scene ebF1: cgmvae passes br's full-data 0.682 between fractions 0.1 and 0.25
    assert per.loc[("scene", "ebF1", "br"), "fraction_needed"] == pytest.approx(0.196, abs=0.005)
    # cgmvae's full-data mean stays below the best baseline's on every dataset and main metric
    best = per.xs("best baseline", level="baseline")
    assert set(best["status"]) == {"not_reached"}
    assert best.loc[("emotions", "ebF1"), "target_model"] == "asl"
    assert best.loc[("yeast", "maF1"), "target_model"] == "mlp"


def test_verdict_lines_count_baselines_reached_with_half_the_data(report):
    per = pd.read_csv(report / "efficiency" / "per_baseline.csv")
    per = per[per["baseline"] != "best baseline"]
    md = (report / "index.md").read_text()
    for dataset in ("emotions", "scene", "yeast"):
        sub = per[per["dataset"] == dataset]
        counts = {m: int(((sub["metric"] == m) & (sub["status"] != "not_reached")
                          & (sub["fraction_needed"] <= 0.5)).sum()) for m in MAIN}
        line = (f"- **{dataset}**: with ≤ 50% of the training data cgmvae reaches the full-data score of "
                f"{counts['ebF1']} of 15 models on ebF1, {counts['miF1']} of 15 on miF1, "
                f"{counts['maF1']} of 15 on maF1, {counts['P@1']} of 15 on P@1")
        assert line in md
    # the yeast maF1 claim holds for 12 of the 15 models, the emotions one for 1
    assert "**yeast**: with ≤ 50% of the training data cgmvae reaches the full-data score of 4 of 15 models " \
           "on ebF1, 4 of 15 on miF1, 12 of 15 on maF1, 7 of 15 on P@1" in md


def test_tables_show_the_seed_range_and_the_best_baseline_row(report):
    md = (report / "index.md").read_text()
    section = md.split("## Data efficiency", 1)[1].split("\n## ", 1)[0]
    assert "`resample = subset`" in section
    assert "| best baseline | not reached · asl | not reached · mlp | not reached · rfp |" in section
    assert "| br | 0.82 (0.71–0.87) | 0.20 (0.16–0.29) | not reached |" in section
    assert "| reached with ≤ 50% | 2 of 15 | 6 of 15 | 4 of 15 |" in section
    assert (report / "figures" / "efficiency_per_baseline.png").stat().st_size > 10_000
