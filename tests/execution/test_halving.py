"""Successive halving over training rows (issue 21, item 4): rungs, nested stratified rows,
the promotion rule, the suite option and its identity, and halving studies run for real
(pruned trials stop early, the best trial trained on all rows, deterministic, resumable)."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import assert_same, fit_lines, published_split, start_run, wait_until
from optuna.trial import TrialState

from benchmark.data.refs import DatasetRef
from benchmark.execution.halving import (
    INDEPENDENT_SCORES,
    SAMPLER_DRIFT,
    SAMPLER_SPREAD,
    SCORE_CORRELATION,
    Halving,
    applies,
    expected_rung_counts,
    promoted,
    rung_rows,
    rung_subsets,
)
from benchmark.execution.plan import build_plan
from benchmark.execution.resources import make_plan
from benchmark.execution.suite import SuiteError, load_suite
from benchmark.execution.worker import Job, run_job
from benchmark.store.results import ResultsStore

# ----------------------------------------------------------------------------- rungs


def test_rungs_grow_by_the_factor_and_end_on_all_rows():
    assert rung_rows(10_000, Halving(1000, 3)) == [1000, 3000, 10_000]  # 9000 is too close to 10000
    assert rung_rows(12_000, Halving(1000, 3)) == [1000, 3000, 12_000]
    assert rung_rows(16_000, Halving(1000, 3)) == [1000, 3000, 9000, 16_000]
    assert rung_rows(332, Halving(60, 2)) == [60, 120, 332]
    assert rung_rows(4148, Halving(1000, 2.5)) == [1000, 2500, 4148]
    assert rung_rows(1500, Halving(1000, 3)) == [1500], "min_rows * sqrt(factor) > n: one rung"
    assert rung_rows(500, Halving(1000, 3)) == [500]
    previous = False
    for n in range(1, 20_000, 37):
        rows = rung_rows(n, Halving(700, 3))
        assert rows[-1] == n and rows == sorted(set(rows))
        assert all(b / a >= 3 ** 0.5 - 1e-9 for a, b in zip(rows, rows[1:]))
        assert applies(n, Halving(700, 3)) == (len(rows) > 1)
        assert applies(n, Halving(700, 3)) >= previous, "once it applies, it applies to every larger pool"
        previous = applies(n, Halving(700, 3))
    assert not applies(10_000, None)


@pytest.mark.parametrize("name, halving", [("yeast", Halving(100, 3)), ("scene", Halving(100, 3)),
                                           ("bibtex", Halving(300, 3))])
def test_rung_rows_are_nested_label_stratified_prefixes(mirror_dir, name, halving):
    """Every rung lies inside the next; every label expected at least once in a rung is there;
    label frequencies deviate from the pool's 2-4 times less than in random subsets
    (measured: yeast 100 rows 0.014 vs 0.029, bibtex 300 rows 0.0018 vs 0.0051)."""
    _, Y, split = published_split(name)
    Y = Y[split.train]
    Y = Y.toarray() if hasattr(Y, "toarray") else np.asarray(Y)
    rows = rung_rows(len(Y), halving)
    assert len(rows) == 3
    subsets = rung_subsets(Y, rows, seed=0)
    assert [len(s) for s in subsets] == rows
    assert np.array_equal(subsets[-1], np.arange(len(Y))), "the last rung: every row, in its own order"
    for small, large in zip(subsets, subsets[1:]):
        assert np.all(np.diff(small) > 0) and set(small) <= set(large)
    again = rung_subsets(Y, rows, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(subsets, again)), "deterministic"
    assert not np.array_equal(rung_subsets(Y, rows, seed=1)[0], subsets[0]), "the seed draws the order"
    counts, full = Y.sum(axis=0), Y.mean(axis=0)
    rng = np.random.default_rng(1)
    for r, subset in zip(rows[:-1], subsets[:-1]):
        expected_once = counts * r / len(Y) >= 1
        assert not np.any((Y[subset].sum(axis=0) == 0) & expected_once), f"a label missing from {r} rows"
        deviation = np.abs(Y[subset].mean(axis=0) - full).mean()
        random = np.mean([np.abs(Y[rng.choice(len(Y), r, replace=False)].mean(axis=0) - full).mean()
                          for _ in range(20)])
        assert deviation < random / 1.5, (r, deviation, random)


# ----------------------------------------------------------------------------- promotion


def _history(*rung_scores: list[float]) -> list[dict]:
    return [{"intermediate": dict(enumerate(scores))} for scores in rung_scores]


def test_a_trial_is_promoted_when_in_the_top_share_of_its_rung():
    halving = Halving(100, factor=3, startup=2)
    assert promoted(0.0, 0, _history([0.9]), halving), "fewer than startup peers: promoted"
    peers = _history([0.9, 0.9], [0.8], [0.7, 0.6], [0.6], [0.5])  # 5 at rung 0: keep floor(6/3) = 2
    assert promoted(0.95, 0, peers, halving) and promoted(0.85, 0, peers, halving)
    assert not promoted(0.75, 0, peers, halving)
    assert promoted(0.8, 0, peers, halving), "a tie goes the trial's way"
    # rung 1: 2 peers (< startup 3) promote anything; with startup 2, keep max(1, floor(3/3)) = 1
    assert promoted(0.1, 1, peers, Halving(100, 3, startup=3))
    assert promoted(0.95, 1, peers, halving) and not promoted(0.7, 1, peers, halving)
    assert promoted(0.5, 0, [{"intermediate": {"0": 0.4}}] * 3, halving), "JSON keys read too"


def test_expected_rung_counts_thin_out_by_the_factor_on_independent_scores():
    counts = expected_rung_counts(200, 3, Halving(100, 3, startup=3), **INDEPENDENT_SCORES)
    assert counts[0] == 200 and counts[0] > counts[1] > counts[2]
    assert counts[1] / counts[0] == pytest.approx(1 / 3, rel=0.2) and counts[2] / counts[1] == pytest.approx(1 / 3, rel=0.3)
    small = expected_rung_counts(10, 3, Halving(100, 3, startup=3))
    assert small[2] >= 7, "startup and lag: trials 0..6 see fewer than 3 finished trials and run every rung"
    assert expected_rung_counts(10, 3, Halving(100, 3, startup=3)) == small, "a pure function"
    assert expected_rung_counts(0, 2, Halving(100)) == (0.0, 0.0)


def test_correlated_scores_and_a_better_sampler_keep_more_trials_going():
    """A trial good on few rows stays good on more, and TPE's trials beat the random start-up
    ones: measured studies promoted 17 of 30 to all rows where independent scores say 9."""
    halving = Halving(1000, 3, startup=3)
    independent = expected_rung_counts(30, 3, halving, **INDEPENDENT_SCORES)
    correlated = expected_rung_counts(30, 3, halving, correlation=0.9, drift=0.0, spread=1.0)
    drifting = expected_rung_counts(30, 3, halving, correlation=0.9, drift=1.0, spread=0.5)
    assert independent[2] < correlated[2] < drifting[2]
    assert independent[1] == pytest.approx(correlated[1], abs=1.0), "rung 0 -> 1 is one draw either way"
    assert drifting[1] > independent[1] + 3
    assert expected_rung_counts(30, 3, halving) == expected_rung_counts(30, 3, halving, correlation=SCORE_CORRELATION,
                                                                        drift=SAMPLER_DRIFT, spread=SAMPLER_SPREAD)


# ----------------------------------------------------------------------------- suite and identity


def _suite(tmp_path, body: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text('name = "s"\ndatasets = ["emotions"]\nfractions = [0.5, 1.0]\nseeds = [0, 1]\n' + body)
    return load_suite(str(path))


GOLDEN = 'models = ["br", "mlp"]\ntrials = 3\n[model.mlp]\ntune = ["lr"]\n'


def test_suites_without_halving_keep_their_identity(tmp_path):
    """Hashes computed on main before halving existed: committed stores' cells are still found."""
    suite = _suite(tmp_path, GOLDEN)
    assert suite.hash == "f6e0b79920aced86"
    models = {g.model.name: g.model for g in build_plan(suite, make_plan("cpu", 1)).groups}
    assert (models["br"].config, models["br"].study) == ("18ee0d9eacc9b57a", "5a71592573dd58ea")
    assert (models["mlp"].config, models["mlp"].study) == ("88fa1a30e2f05d4c", "f1f1533c09946f97")
    assert models["br"].halving is None and "halving" not in models["br"].settings["tuning"]


def test_halving_is_part_of_the_identity_where_it_applies(tmp_path):
    plain = {g.model.name: g.model for g in build_plan(_suite(tmp_path, GOLDEN), make_plan("cpu", 1)).groups}
    suite = _suite(tmp_path, 'halving = { min_rows = 60, factor = 2 }\n' + GOLDEN.replace(
        '[model.mlp]\n', '[model.mlp]\nhalving = { min_rows = 100, factor = 3, startup = 1 }\n'), "h.toml")
    plan = build_plan(suite, make_plan("cpu", 1))
    models = {g.model.name: g.model for g in plan.groups}
    assert models["br"].halving == Halving(60, 2.0, 3) and models["mlp"].halving == Halving(100, 3.0, 1)
    assert models["br"].settings["tuning"]["halving"] == {"min_rows": 60, "factor": 2.0, "startup": 3}
    for name in ("br", "mlp"):
        assert models[name].config != plain[name].config and models[name].study != plain[name].study
    group = next(g for g in plan.groups if g.model.name == "br")
    assert plan.job(group, "trial", 0, {}).halving == Halving(60, 2.0, 3)
    assert plan.job(group, "cell", 1, {}).halving is None, "cells always train on all rows"

    # does not apply: a model that opts out, a pool too small for two rungs, an untuned model
    off = _suite(tmp_path, 'halving = { min_rows = 60 }\n' + GOLDEN.replace('[model.mlp]\n', '[model.mlp]\nhalving = false\n')
                 + '[model.br]\nhalving = { min_rows = 1000 }\n', "off.toml")
    models = {g.model.name: g.model for g in build_plan(off, make_plan("cpu", 1)).groups}
    assert models["mlp"].halving is None and models["br"].halving is None, "emotions has 332 training rows"
    assert {n: m.config for n, m in models.items()} == {n: m.config for n, m in plain.items()}
    fixed = _suite(tmp_path, 'models = ["br"]\ntrials = 0\nhalving = { min_rows = 60 }\n', "fixed.toml")
    assert build_plan(fixed, make_plan("cpu", 1)).groups[0].model.halving is None


@pytest.mark.parametrize("table, message", [
    ('halving = 3', "halving must be a table such as { min_rows = 1000, factor = 3 }, not 3"),
    ('halving = {}', "halving needs min_rows, the training rows of the first rung: { min_rows = 1000, factor = 3 }"),
    ('halving = { min_rows = 0 }', "halving: min_rows must be >= 1, not 0"),
    ('halving = { min_rows = "many" }', "halving: min_rows must be an integer, not 'many'"),
    ('halving = { min_rows = 100, factor = 1 }', "halving: factor must be a number > 1, not 1"),
    ('halving = { min_rows = 100, factor = true }', "halving: factor must be a number > 1, not True"),
    ('halving = { min_rows = 100, startup = -1 }', "halving: startup must be >= 0, not -1"),
    ('halving = { min_rows = 100, eta = 3 }', "halving: unknown keys ['eta'] (allowed: factor, min_rows, startup)"),
    ('halving = false', "halving must be a table such as { min_rows = 1000, factor = 3 }, not False"),
    ('models = ["br"]\n[model.br]\nhalving = true',
     "[model.br] halving must be a table such as { min_rows = 1000, factor = 3 } or false, not True"),
])
def test_a_bad_halving_table_is_one_line(tmp_path, table, message):
    with pytest.raises(SuiteError) as error:
        _suite(tmp_path, table + "\n")
    assert str(error.value) == message and "\n" not in str(error.value)


# ----------------------------------------------------------------------------- the worker

EMOTIONS_TRAIN = 300  # of the bundled emotions' 593 rows: rungs 60, 120, 300 at factor 2


def _trial(history=(), halving=Halving(60, 2.0, startup=2), **params):
    index = np.arange(593)
    return Job(kind="trial", dataset=DatasetRef("emotions"), model="br", params={"C": 1.0, **params}, seed=0,
               train=index[:EMOTIONS_TRAIN], val=index[400:500], test=index[500:], val_grid=(0.3, 0.5),
               oracle_grid=(0.5,), history=tuple(history), halving=halving)


def test_a_halving_trial_fits_each_rung_and_its_last_fit_is_the_plain_trial(mirror_dir):
    plain = run_job(_trial(halving=None))
    full = run_job(_trial())
    assert plain.state == full.state == "complete", (plain.error, full.error)
    assert sorted(full.intermediate) == [0, 1, 2] and full.attrs == {"halving_rows": [60, 120, EMOTIONS_TRAIN]}
    assert full.intermediate[2] == full.val_score == plain.val_score
    assert full.record.n_train == EMOTIONS_TRAIN
    assert_same(plain.record.metrics, full.record.metrics, ("metrics",))
    # a history whose rung-0 scores all beat this trial's: pruned after rung 0, no test scores
    beaten = [{"intermediate": {0: full.intermediate[0] + 0.01 * (i + 1)}} for i in range(3)]
    pruned = run_job(_trial(history=beaten))
    assert pruned.state == "pruned" and pruned.record is None
    assert pruned.intermediate == {0: full.intermediate[0]} and pruned.attrs == full.attrs
    # a pool too small for two rungs: the trial is the plain one
    small = run_job(_trial(halving=Halving(1000)))
    assert small.state == "complete" and small.intermediate == {} and small.val_score == plain.val_score


# ----------------------------------------------------------------------------- studies, run for real

HALVING_SUITE = """
name = "halving"
datasets = ["emotions"]
models = ["{model}"]
fractions = [1.0]
seeds = [0, 1]
trials = {trials}
epochs = 4
pruner_startup_trials = 1
pruner_warmup_epochs = 0
halving = {{ min_rows = 60, factor = 2, startup = 2 }}
{extra}
"""


def _studies(results: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = optuna.storages.RDBStorage(ResultsStore(results).url)
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
            for s in optuna.get_all_study_summaries(storage)}


def _comparable(trials) -> list[tuple]:
    """What a study decided, trial by trial (not timings)."""
    out = []
    for t in sorted(trials, key=lambda t: t.user_attrs["mlcbench_index"]):
        if t.state == TrialState.FAIL and t.user_attrs.get("mlcbench_interrupted"):
            continue
        out.append((t.user_attrs["mlcbench_index"], t.state.name, t.params, t.value, dict(t.intermediate_values)))
    return out


def _cells(results: Path) -> dict:
    frame = ResultsStore(results).runs_frame()
    assert not frame.duplicated(["dataset", "model", "fraction", "seed", "config"]).any(), "a cell twice"
    return {(r.model, r.fraction, r.seed): r for r in frame.itertuples()}


@pytest.mark.slow
def test_a_halving_study_prunes_early_rungs_and_is_deterministic(tmp_path):
    """br on emotions, 12 trials (~3 s): pruned trials stop after rung 0 or 1, complete ones
    reached all rows, the cells train on all rows; two workers decide exactly as one."""
    from benchmark.cli import main

    suite = tmp_path / "h.toml"
    suite.write_text(HALVING_SUITE.format(model="br", trials=12, extra=""))
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(one), "--workers", "1"]) == 0
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(two), "--workers", "2"]) == 0
    (trials,) = _studies(one).values()
    n_train = _cells(one)[("br", 1.0, 0)].n_train
    rows = [60, 120, n_train]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 12 and len(pruned) >= 2 and len(complete) >= 6
    for t in trials:
        assert t.user_attrs["halving_rows"] == rows
    for t in pruned:
        assert sorted(t.intermediate_values) in ([0], [0, 1]) and "cell_record" not in t.user_attrs
    for t in complete:
        assert sorted(t.intermediate_values) == [0, 1, 2] and t.intermediate_values[2] == t.value
        assert t.user_attrs["cell_record"]["n_train"] == n_train
    best = max(complete, key=lambda t: t.value)
    cells = _cells(one)
    assert all(cell.n_train == n_train and cell.n_trials == 12 for cell in cells.values())
    assert_same(best.params, {k: cells[("br", 1.0, 0)].params[k] for k in best.params}, ("best",))
    assert _comparable(trials) == _comparable(next(iter(_studies(two).values())))
    for key, cell in _cells(two).items():
        assert_same(cells[key].metrics, cell.metrics, (key, "metrics"))
    # the report states it
    assert main(["report", "--results", str(one), "--out", str(tmp_path / "report")]) == 0
    index = (tmp_path / "report" / "index.md").read_text()
    assert "Tuning: successive halving over training rows" in index
    assert "for emotions/br (min_rows = 60, factor = 2, startup = 2); the seeds" in index


def test_a_report_without_halving_says_nothing_about_it():
    import pandas as pd

    from benchmark.report.build import _halving_text

    runs = pd.DataFrame({"dataset": ["yeast"], "model": ["br"], "settings": [{"tuning": {"trials": 3}}]})
    assert _halving_text(runs) is None


@pytest.mark.slow
@pytest.mark.usefixtures("test_models")
def test_a_killed_and_resumed_halving_run_equals_a_clean_one(tmp_path):
    """SIGKILLed mid-study three times (fits counted over all runs, rung fits included), then
    resumed: the same trials (states, params, rung scores) and the same cells as a clean run."""
    suite = tmp_path / "h.toml"
    suite.write_text(HALVING_SUITE.format(model="test_epoch_lr", trials=9,
                                          extra="[model.test_epoch_lr]\nparams = { sleep = 0.03 }"))
    clean = tmp_path / "clean"
    assert start_run(suite, clean, tmp_path / "clean.log").wait(300) == 0
    expected = _cells(clean)
    assert len(expected) == 2
    (clean_trials,) = _studies(clean).values()
    assert any(t.state == TrialState.PRUNED for t in clean_trials), "the suite must prune to test resumption"
    total = len(fit_lines(tmp_path / "clean.log"))

    resumed, log = tmp_path / "resumed", tmp_path / "killed.log"
    for kill_after in (4, 11, total - 5):
        proc = start_run(suite, resumed, log)
        wait_until(lambda: len(fit_lines(log)) >= kill_after or proc.poll() is not None, what="fits")
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert start_run(suite, resumed, log).wait(300) == 0
    (resumed_trials,) = _studies(resumed).values()
    assert _comparable(resumed_trials) == _comparable(clean_trials)
    got = _cells(resumed)
    assert got.keys() == expected.keys()
    for cell, row in expected.items():
        other = got[cell]
        assert other.status == row.status == "done" and other.config == row.config
        assert_same(row.params, other.params, (cell, "params"))
        assert_same(row.metrics, other.metrics, (cell, "metrics"))
        assert other.n_trials == row.n_trials == 9
