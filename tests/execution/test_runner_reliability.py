"""The runner under real failures: SIGKILLed drivers and workers, resumes, other budgets.

Every test drives real processes (``python -m benchmark run``) and real signals; fits
are observed through the test models' fit log (tests/models_for_tests), one line per
fit with the worker's pid.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from helpers import alive, assert_same, fit_lines, pids_in, start_run, wait_until

from benchmark.cli import main
from benchmark.store.results import ResultsStore

pytestmark = [pytest.mark.usefixtures("test_models"), pytest.mark.slow]  # slow: real runs killed with real signals


SLOW_SUITE = """
name = "slow"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 10, sleep = 0.4 }
"""


def test_a_killed_worker_fails_only_its_own_job(tmp_path):
    suite = tmp_path / "slow.toml"
    suite.write_text(SLOW_SUITE)
    results, log = tmp_path / "res", tmp_path / "first.log"
    proc = start_run(suite, results, log, "--workers", "2")
    wait_until(lambda: len(set(pids_in(log))) == 2, what="two workers fitting")
    victim = pids_in(log)[0]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err.decode()  # a failed cell, not a crash
    assert "Traceback" not in err.decode()
    frame = ResultsStore(results).runs_frame()
    assert len(frame) == 4 and not frame.duplicated(["fraction", "seed"]).any()
    failed = frame[frame.status == "failed"]
    assert len(failed) == 1, "only the killed worker's job fails"
    assert "worker killed by signal 9 (SIGKILL)" in failed.iloc[0].error
    assert (frame.status == "done").sum() == 3, "the other jobs go on in the healthy and the replaced worker"
    # the failed cell is retried by the next run
    rerun_log = tmp_path / "second.log"
    rerun = start_run(suite, results, rerun_log, "--workers", "2")
    assert rerun.wait(180) == 0
    assert len(fit_lines(rerun_log)) == 1
    assert (ResultsStore(results).runs_frame().status == "done").all()


def test_workers_exit_when_the_driver_is_killed(tmp_path):
    suite = tmp_path / "slow.toml"
    suite.write_text(SLOW_SUITE)
    results, log = tmp_path / "res", tmp_path / "fits.log"
    proc = start_run(suite, results, log, "--workers", "2")
    wait_until(lambda: len(set(pids_in(log))) == 2, what="two workers fitting")
    workers = sorted(set(pids_in(log)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    killed_at = time.monotonic()
    wait_until(lambda: not any(alive(pid) for pid in workers), timeout=10, what=f"workers {workers} to exit")
    assert time.monotonic() - killed_at < 10


TUNED_SUITE = """
name = "tuned"
datasets = ["emotions"]
models = ["test_epoch_lr", "br"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 7
epochs = 5
pruner = "median"
pruner_startup_trials = 2
pruner_warmup_epochs = 1
workers = 2

[model.br]
tune = ["C"]
"""



def _cells(results: Path):
    frame = ResultsStore(results).runs_frame()
    assert not frame.duplicated(["dataset", "model", "fraction", "seed", "config"]).any(), "a cell twice"
    return {(r.model, r.fraction, r.seed): r for r in frame.itertuples()}


def test_a_run_killed_anywhere_and_resumed_equals_an_uninterrupted_run(tmp_path):
    suite = tmp_path / "tuned.toml"
    suite.write_text(TUNED_SUITE)
    clean = tmp_path / "clean"
    assert start_run(suite, clean, tmp_path / "clean.log").wait(300) == 0
    expected = _cells(clean)
    assert len(expected) == 8

    resumed, log = tmp_path / "resumed", tmp_path / "killed.log"
    for kill_after in (3, 9, 16):  # fits started before the SIGKILL, counted over all runs
        proc = start_run(suite, resumed, log)
        wait_until(lambda: len(fit_lines(log)) >= kill_after or proc.poll() is not None, what="fits")
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert start_run(suite, resumed, log).wait(300) == 0
    got = _cells(resumed)
    assert got.keys() == expected.keys()
    for cell, row in expected.items():
        other = got[cell]
        assert other.status == row.status == "done"
        assert other.config == row.config
        assert_same(row.params, other.params, (cell, "params"))
        assert_same(row.metrics, other.metrics, (cell, "metrics"))
        assert other.n_trials == row.n_trials == 7


BUDGET_SUITE = """
name = "{name}"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 0
epochs = {epochs}
"""


def test_suites_with_other_budgets_get_their_own_cells(tmp_path, capsys):
    results = tmp_path / "res"
    small, large = tmp_path / "small.toml", tmp_path / "large.toml"
    small.write_text(BUDGET_SUITE.format(name="small", epochs=2))
    large.write_text(BUDGET_SUITE.format(name="large", epochs=6))
    assert main(["run", "--quiet", "--suite", str(small), "--results", str(results)]) == 0
    capsys.readouterr()
    assert main(["run", "--suite", str(large), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "4 cells done" in out and "0 were already done" in out, out
    frame = ResultsStore(results).runs_frame()
    assert len(frame) == 8 and frame.config.nunique() == 2
    assert sorted(frame.groupby("suite").n_epochs.max()) == [2, 6]
    # the same suite again computes nothing
    assert main(["run", "--suite", str(large), "--results", str(results)]) == 0
    assert "4 were already done" in capsys.readouterr().out


ONE_GROUP_SUITE = """
name = "onegroup"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [1.0]
seeds = [0, 1, 2]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 10, sleep = 0.8 }
"""


def test_skipped_groups_exit_3_and_wait_waits(tmp_path):
    suite = tmp_path / "one.toml"
    suite.write_text(ONE_GROUP_SUITE)  # one group: whoever claims it first computes all of it
    results = tmp_path / "res"
    first = start_run(suite, results, tmp_path / "a.log")
    wait_until(lambda: len(fit_lines(tmp_path / "a.log")) >= 1, what="the first run to start fitting")
    second = start_run(suite, results, tmp_path / "b.log")
    out, _ = second.communicate(timeout=120)
    assert first.poll() is None, "the first run must still hold its group (machine too slow for this test)"
    assert second.returncode == 3 and "left to another live run" in out.decode()
    waiting = start_run(suite, results, tmp_path / "c.log", "--wait")
    assert first.wait(180) == 0
    assert waiting.wait(180) == 0
    assert fit_lines(tmp_path / "b.log") == fit_lines(tmp_path / "c.log") == [], "the others trained nothing"
    assert len(ResultsStore(results).runs_frame()) == 3


def test_a_study_time_budget_stops_asking_and_is_recorded(tmp_path):
    suite = tmp_path / "budget.toml"
    suite.write_text('name = "budget"\ndatasets = ["emotions"]\nmodels = ["test_epoch_lr"]\nfractions = [1.0]\n'
                     'seeds = [0]\ntrials = 40\nbudget = "2s"\nepochs = 3\npruner = "none"\n'
                     '[model.test_epoch_lr]\ntune = ["lr"]\nparams = { sleep = 0.15 }\n')
    results = tmp_path / "res"
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(results)]) == 0
    row = ResultsStore(results).runs_frame().iloc[0]
    assert row.status == "done" and 1 <= row.n_trials < 40, "the budget cut the study short"
    assert row.settings["tuning"]["budget_seconds"] == 2.0 and row.settings["tuning"]["trials"] == 40


TUNED_SLOW_SUITE = """
name = "tuned-slow"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [1.0]
seeds = [0, 1]
trials = 2
pruner = "none"

[model.test_epoch_lr]
params = { epochs = 10, sleep = 0.3 }
"""


def test_a_trial_whose_worker_is_killed_is_asked_again_and_the_budget_kept(tmp_path):
    """Killing the worker of a tuning trial once: the trial is asked again with the same
    parameters, the study ends with every planned trial complete and the cells are done."""
    import optuna

    suite = tmp_path / "tuned.toml"
    suite.write_text(TUNED_SLOW_SUITE)
    results, log = tmp_path / "res", tmp_path / "fits.log"
    proc = start_run(suite, results, log, "--workers", "2")
    wait_until(lambda: len(fit_lines(log)) >= 1, what="a trial fitting")
    os.kill(pids_in(log)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err.decode()
    frame = ResultsStore(results).runs_frame()
    assert (frame.status == "done").all() and set(frame.seed) == {0, 1}
    assert (frame.n_trials == 2).all(), "the lost trial was redone: the budget is whole"
    storage = optuna.storages.RDBStorage(ResultsStore(results).url)
    [summary] = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2 and len(trials) == 3, "two trials complete, the lost one closed aside"
    lost = next(t for t in trials if t.state == optuna.trial.TrialState.FAIL)
    redone = next(t for t in complete if t.user_attrs["mlcbench_index"] == lost.user_attrs["mlcbench_index"])
    assert redone.params == lost.params, "asked again with the same parameters"
