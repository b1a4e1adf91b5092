"""Reports select each suite's latest configuration and say what they left out or mixed."""

from __future__ import annotations

import pytest

from benchmark.report.inputs import ReportError, inputs_from_store
from benchmark.store.results import ResultsStore


def _row(config, value, finished, seed=0, suite="quick", trials=10, model="br"):
    return {
        "dataset": "emotions", "model": model, "fraction": 1.0, "seed": seed, "config": config, "status": "done",
        "suite": suite, "finished_at": finished, "metrics": {"val": {"maF1": value}},
        "settings": {"tuning": {"trials": trials, "objective": "mean_f1"}, "split": {"resample": "subset",
                                                                                     "protocol": "harness"}},
    }


def test_latest_configuration_per_suite_is_selected_and_the_rest_noted(tmp_path):
    store = ResultsStore(tmp_path)
    for seed in (0, 1):
        store.record(_row("old", 0.1, "2026-01-01T00:00:00", seed=seed, trials=2))
        store.record(_row("new", 0.6, "2026-02-01T00:00:00", seed=seed))
    inputs = inputs_from_store(tmp_path)
    assert set(inputs.runs["config"]) == {"new"} and len(inputs.runs) == 2
    assert any("2 row(s) of older configuration(s) old" in note for note in inputs.notes)
    everything = inputs_from_store(tmp_path, all_configs=True)
    assert len(everything.runs) == 4


def test_a_table_mixing_budgets_says_so(tmp_path):
    store = ResultsStore(tmp_path)
    store.record(_row("a", 0.5, "2026-01-01T00:00:00", trials=2, model="br"))
    store.record(_row("b", 0.5, "2026-01-01T00:00:00", trials=30, model="mlp", suite="paper"))
    notes = inputs_from_store(tmp_path).notes
    assert any("mix configurations" in note and "trials=2" in note and "trials=30" in note for note in notes)


def test_report_reads_an_sqlite_file_path_and_refuses_a_missing_one(tmp_path):
    store = ResultsStore(tmp_path / "x.sqlite")
    store.record(_row("a", 0.5, "2026-01-01T00:00:00"))
    assert len(inputs_from_store(tmp_path / "x.sqlite").runs) == 1
    with pytest.raises(ReportError, match="no results store"):
        inputs_from_store(tmp_path / "nothere.sqlite")
