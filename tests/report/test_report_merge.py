"""``report --results A --results B``: a new model beside the committed quick store's baselines.

Two tiny real runs (a one-file ridge model, trials 0) make the second stores: one with the
quick suite's split (comparable), one with another split seed (refused in one line).
Expected numbers come from the SQLite files through sqlite3/json/statistics.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO_ROOT

from benchmark.cli import main as cli_main
from benchmark.report.inputs import inputs_from_stores

QUICK = REPO_ROOT / "reports" / "quick" / "store"

MODEL = textwrap.dedent(
    '''
    """Test model: one ridge regression per label, scores squashed to [0, 1]."""
    import time

    import numpy as np
    from optuna.distributions import FloatDistribution

    from benchmark.modelapi.base import Model
    from benchmark.modelapi.sklearn_utils import check_features, check_xy


    class RidgeBR(Model):
        name = "ridge_br"
        family = "classic"
        defaults = {"alpha": 1.0}
        search_space = {"alpha": FloatDistribution(0.01, 100.0, log=True)}

        def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
            from sklearn.linear_model import Ridge

            start = time.perf_counter()
            X, Y = check_xy(X, Y)
            self.ridge_ = Ridge(alpha=self.params["alpha"]).fit(X, Y.astype(np.float64))
            self.fit_info = {"fit_seconds": time.perf_counter() - start}
            return self

        def predict_proba(self, X):
            scores = np.asarray(self.ridge_.predict(check_features(X))).reshape(X.shape[0], -1)
            return 1.0 / (1.0 + np.exp(-4.0 * (scores - 0.5)))
    '''
)

SUITE = textwrap.dedent(
    """
    name = "mine"
    datasets = {datasets}
    models = ["ridge_br"]
    fractions = {fractions}
    seeds = {seeds}
    trials = 0
    split_seed = {split_seed}
    val_size = 0.15
    device = "cpu"
    """
)

pytestmark = [pytest.mark.skipif(not (QUICK / "mlcbench.sqlite").exists(), reason="no committed quick store"), pytest.mark.slow]  # slow: runs real suites into new stores


def _run(root: Path, name: str, **suite) -> Path:
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "ridge_br.py").write_text(MODEL)
    (root / f"{name}.toml").write_text(SUITE.format(**{k: json.dumps(v) for k, v in suite.items()}))
    results = root / name
    env = dict(os.environ, MLCBENCH_MODELS_PATH=str(root / "models"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "benchmark", "run", "--suite", str(root / f"{name}.toml"),
                           "--results", str(results), "--quiet"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return results


@pytest.fixture(scope="module")
def stores(tmp_path_factory, mirror_dir):
    root = tmp_path_factory.mktemp("merge")
    mine = _run(root, "mine", datasets=["emotions", "yeast", "scene"], fractions=[0.5, 1.0], seeds=[0, 1, 2],
                split_seed=0)
    other_split = _run(root, "other_split", datasets=["emotions"], fractions=[1.0], seeds=[0], split_seed=1)
    return mine, other_split


def _values(store: Path, protocol="val") -> list[tuple]:
    with sqlite3.connect(store / "mlcbench.sqlite") as conn:
        rows = conn.execute("SELECT dataset, model, fraction, seed, metrics FROM mlcbench_runs "
                            "WHERE status = 'done'").fetchall()
    return [(d, m, f, s, json.loads(metrics)[protocol]) for d, m, f, s, metrics in rows]


def test_a_comparable_store_joins_every_table(stores, tmp_path):
    mine, _ = stores
    out = tmp_path / "report"
    assert cli_main(["report", "--results", str(QUICK), "--results", str(mine), "--out", str(out),
                     "--metrics", "ebF1,maF1"]) == 0
    index = (out / "index.md").read_text()
    assert f"- {QUICK}: 576 cell(s) used" in index and f"- {mine}: 18 cell(s) used (ridge_br), 0 left out" in index
    assert "Left out: none." in index
    ours = _values(mine)
    table = pd.read_csv(out / "tables" / "ebF1.csv")
    for dataset in ("emotions", "yeast", "scene"):
        expected = statistics.mean(v["ebF1"] for d, m, f, s, v in ours if d == dataset and f == 1.0)
        cell = table[(table["Model"] == "ridge_br") & table["column"].str.startswith(dataset)]
        assert cell["mean"].item() == pytest.approx(expected, abs=1e-12)
    # a shipped baseline's numbers are untouched by the merge
    br = statistics.mean(v["ebF1"] for d, m, f, s, v in _values(QUICK) if (d, m, f) == ("scene", "br", 1.0))
    assert table[(table["Model"] == "br") & table["column"].str.startswith("scene")]["mean"].item() == \
        pytest.approx(br, abs=1e-12)
    # the new model is in the Friedman ranks (all three datasets), the CD diagram and the paired tests
    friedman = pd.read_csv(out / "significance" / "friedman.csv")
    assert friedman.loc[friedman["metric"] == "ebF1", "n_models"].item() == 17
    assert "ridge_br" in json.loads(friedman.loc[friedman["metric"] == "ebF1", "average_ranks"].item())
    paired = pd.read_csv(out / "significance" / "paired_seed_tests.csv")
    assert set(paired.loc[paired["baseline"] == "ridge_br", "dataset"]) == {"emotions", "yeast", "scene"}
    per = pd.read_csv(out / "efficiency" / "per_baseline.csv")
    assert "ridge_br" in set(per["baseline"])


def test_a_store_with_another_split_seed_is_refused_in_one_line(stores, tmp_path):
    mine, other_split = stores
    inputs = inputs_from_stores([QUICK, mine, other_split])
    assert inputs.merge_notes == [
        f"{other_split}: 1 cell(s) of emotions (ridge_br) at fraction(s) 1, seed(s) 0 left out: "
        f"split seed 1 here, 0 in {QUICK}"]
    assert len(inputs.done) == 576 + 18  # the seed-1 cell is in none of the tables
    out = tmp_path / "report"
    assert cli_main(["report", "--results", str(QUICK), "--results", str(mine), "--results", str(other_split),
                     "--out", str(out), "--metrics", "ebF1"]) == 0
    index = (out / "index.md").read_text()
    assert f"- {other_split}: 0 cell(s) used (none), 1 left out" in index
    assert f"left out: split seed 1 here, 0 in {QUICK}" in index


def test_cells_at_a_fraction_the_reference_lacks_or_already_stored_are_left_out(stores):
    mine, _ = stores
    # with mine as the reference, the quick store's 0.1 and 0.25 fractions have no counterpart
    inputs = inputs_from_stores([mine, QUICK])
    assert [line.split(" (")[0] for line in inputs.merge_notes] == [
        f"{QUICK}: 96 cell(s) of {d}" for d in ("emotions", "scene", "yeast")]
    assert all(line.endswith(f"at fraction(s) 0.1, 0.25, seed(s) 0, 1, 2 left out: {mine} has no cell of this "
                             "dataset at their (fraction, seed)") for line in inputs.merge_notes)
    assert set(inputs.done["fraction"]) == {0.5, 1.0}
    # the same store twice: the second copy's cells are duplicates, the first listed wins
    twice = inputs_from_stores([mine, mine])
    assert len(twice.done) == 18
    assert twice.merge_notes and all("already in an earlier store" in line for line in twice.merge_notes)
