"""The runner end to end on the bundled emotions data: resume after SIGKILL, failures,
tuning (stored, resumed, pruned, same budget), concurrent runs on one store.

Fits are counted through the test-only models (tests/models_for_tests), which append a
line per fit to ``MLCBENCH_TEST_FIT_LOG``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import REPO_ROOT
from optuna.trial import TrialState

from benchmark.cli import main
from benchmark.store.results import ResultsStore

pytestmark = pytest.mark.usefixtures("test_models")  # tests/conftest.py


def write_suite(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def fits(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def run_cli(*args: str) -> int:
    return main(["run", "--quiet", *args])


def studies(results: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = optuna.storages.RDBStorage(ResultsStore(results).url)
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
        for s in optuna.get_all_study_summaries(storage)
    }


FAILING_SUITE = """
name = "failing"
datasets = ["emotions"]
models = ["test_epoch_lr", "test_raises"]
fractions = [1.0]
seeds = [0]
trials = 0
epochs = 4
"""


def test_failing_model_is_recorded_and_retried(tmp_path):
    suite = write_suite(tmp_path / "failing.toml", FAILING_SUITE)
    results, log = tmp_path / "res", tmp_path / "fits.log"
    assert run_cli("--suite", str(suite), "--results", str(results)) == 1
    frame = ResultsStore(results).runs_frame().set_index("model")
    assert frame.loc["test_epoch_lr", "status"] == "done"
    assert frame.loc["test_epoch_lr", "metrics"]["val"]["maF1"] > 0.3
    assert frame.loc["test_raises", "status"] == "failed"
    assert "Traceback" in frame.loc["test_raises", "error"]
    assert "test_raises: this model always fails" in frame.loc["test_raises", "error"]
    assert [line.split()[0] for line in fits(log)] == ["test_epoch_lr", "test_raises"]
    # the next run retries the failed cell only
    assert run_cli("--suite", str(suite), "--results", str(results)) == 1
    assert [line.split()[0] for line in fits(log)] == ["test_epoch_lr", "test_raises", "test_raises"]
    assert len(ResultsStore(results).runs_frame()) == 2


KILL_SUITE = """
name = "killme"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [0.5, 1.0]
seeds = [0, 1, 2]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 6, sleep = 0.12 }
"""


def _subprocess_env(log: Path) -> dict[str, str]:
    env = dict(os.environ, MLCBENCH_TEST_FIT_LOG=str(log), PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow
def test_resume_after_sigkill_finishes_every_cell_exactly_once(tmp_path):
    suite = write_suite(tmp_path / "kill.toml", KILL_SUITE)
    results = tmp_path / "res"
    command = [sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(results), "--quiet"]
    first_log = tmp_path / "first.log"
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=_subprocess_env(first_log),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = ResultsStore(results)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if len(store.done_cells()) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    before = store.runs_frame()
    assert 1 <= len(before) < 6, "kill must land in the middle of the run"
    assert (before.status == "done").all() and before.metrics.map(bool).all(), "no partial row"
    done_before = set(zip(before.fraction, before.seed))

    second_log = tmp_path / "second.log"
    rerun = subprocess.run(command, cwd=REPO_ROOT, env=_subprocess_env(second_log), capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()
    after = store.runs_frame()
    assert len(after) == 6 and not after.duplicated(["fraction", "seed"]).any()
    assert (after.status == "done").all()
    # the cells stored before the kill were not trained again; every other cell once
    refit = fits(second_log)
    assert len(refit) == 6 - len(done_before)
    for row in before.itertuples():  # rows from the first run are untouched
        kept = after[(after.fraction == row.fraction) & (after.seed == row.seed)].iloc[0]
        assert kept.finished_at == row.finished_at and kept.run_id == row.run_id

    third_log = tmp_path / "third.log"  # (in-process: one interpreter start less)
    os.environ["MLCBENCH_TEST_FIT_LOG"] = str(third_log)
    assert run_cli("--suite", str(suite), "--results", str(results)) == 0
    assert fits(third_log) == [], "a complete store must not train anything"
    assert len(store.runs_frame()) == 6


TUNING_SUITE = """
name = "tuning"
datasets = ["emotions"]
models = ["test_epoch_lr", "br", "prior"]
fractions = [1.0]
seeds = [0]
trials = 2
epochs = 4
"""


@pytest.mark.slow
def test_study_is_stored_resumed_and_budget_is_shared(tmp_path):
    suite = write_suite(tmp_path / "tuning.toml", TUNING_SUITE)
    results, log = tmp_path / "res", tmp_path / "fits.log"
    assert run_cli("--suite", str(suite), "--results", str(results)) == 0
    stored = studies(results)
    by_model = {name.split("|")[2]: trials for name, trials in stored.items()}
    assert set(by_model) == {"test_epoch_lr", "br"}, "prior has no search space: no study"
    assert [len(t) for t in by_model.values()] == [2, 2], "the same budget for every tuned model"
    frame = ResultsStore(results).runs_frame().set_index("model")
    assert frame.loc["test_epoch_lr", "n_trials"] == 2 and frame.loc["prior", "n_trials"] == 0
    best = max(by_model["test_epoch_lr"], key=lambda t: t.value)
    assert frame.loc["test_epoch_lr", "params"]["lr"] == pytest.approx(best.params["lr"])
    assert frame.loc["test_epoch_lr", "val_score"] == pytest.approx(best.value)
    # the seed-0 cell reused the best trial: 2 trial fits, no third fit
    assert sum(line.startswith("test_epoch_lr") for line in fits(log)) == 2

    # a larger budget on a new seed resumes the stored study: only 2 new trials
    log.unlink()
    assert run_cli("--suite", str(suite), "--results", str(results), "--trials", "4", "--seeds", "1",
                   "--models", "test_epoch_lr") == 0
    trials = studies(results)[next(n for n in stored if "|test_epoch_lr|" in n)]
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.params["lr"] for t in trials}) == 4, "a resumed study must not replay configurations"
    lines = fits(log)
    assert sum("seed=0" in line for line in lines) == 2 and sum("seed=1" in line for line in lines) == 1
    assert ResultsStore(results).runs_frame().set_index(["model", "seed"]).loc[("test_epoch_lr", 1), "n_trials"] == 4


PRUNING_SUITE = """
name = "pruning"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [1.0]
seeds = [0]
trials = 10
epochs = 8
pruner = "median"
pruner_startup_trials = 2
pruner_warmup_epochs = 1
"""


@pytest.mark.slow
def test_median_pruner_prunes_hopeless_trials(tmp_path):
    suite = write_suite(tmp_path / "pruning.toml", PRUNING_SUITE)
    results = tmp_path / "res"
    assert run_cli("--suite", str(suite), "--results", str(results)) == 0
    (trials,) = studies(results).values()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 10 and len(pruned) >= 1 and len(complete) >= 2
    for trial in pruned:  # stopped early, with the epoch scores the worker reported
        assert 2 <= len(trial.intermediate_values) < 8
    for trial in complete:
        assert len(trial.intermediate_values) == 8
    assert ResultsStore(results).runs_frame().loc[0, "n_trials"] == 10


CONCURRENT_SUITE = """
name = "concurrent"
datasets = ["emotions"]
models = ["test_epoch_lr", "br"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 4, sleep = 0.05 }
"""


@pytest.mark.slow
def test_two_concurrent_runs_do_not_duplicate_cells(tmp_path):
    suite = write_suite(tmp_path / "concurrent.toml", CONCURRENT_SUITE)
    results = tmp_path / "res"
    ResultsStore(results)  # create the schema before both start
    command = [sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(results), "--quiet"]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [subprocess.Popen(command, cwd=REPO_ROOT, env=_subprocess_env(log), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for log in logs]
    for proc in procs:
        proc.wait(150)
        out = proc.stdout.read().decode()
        # 0, or 3 when it left groups to the other live run (and says which)
        assert proc.returncode in (0, 3), proc.stderr.read().decode()
        assert (proc.returncode == 3) == ("left to another live run" in out), out
    assert 0 in {p.returncode for p in procs}
    frame = ResultsStore(results).runs_frame()
    assert len(frame) == 8 and not frame.duplicated(["model", "fraction", "seed"]).any()
    assert (frame.status == "done").all()
    # br is not instrumented; the 4 test_epoch_lr cells were each trained by exactly one run
    assert len(fits(logs[0])) + len(fits(logs[1])) == 4


@pytest.mark.slow
def test_a_cell_on_a_tiny_test_set_is_stored_and_printed_with_its_warning(tmp_path, capsys):
    """80 rows, a quarter for test: 20 test rows, fewer than the 30 a macro-F1 needs to mean
    much. The run says so once, and the stored row carries the warning."""
    from benchmark.cli import main

    suite = tmp_path / "tiny.toml"
    suite.write_text('name = "tiny"\nmodels = ["prior", "br"]\nseeds = [0, 1]\ntrials = 0\n'
                     '[[dataset]]\nname = "tiny"\nformat = "synthetic"\nn_samples = 80\n')
    assert main(["run", "--suite", str(suite), "--results", str(tmp_path / "res"), "--no-estimate"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("the test set has only 20 rows") == 1, text
    frame = ResultsStore(tmp_path / "res").runs_frame()
    assert len(frame) == 4
    assert all(any("only 20 rows" in w for w in warnings) for warnings in frame["warnings"])
    assert main(["report", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.md").read_text()
    assert "Warnings about the numbers" in page and "the test set has only 20 rows" in page
