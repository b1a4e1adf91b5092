"""The multi-machine store on a real PostgreSQL server: the SQLite assertions, again.

The server is started by tests/pg_server.py (initdb + pg_ctl on a free local port) and
every test gets a fresh database. Runs are real processes (``python -m benchmark run
--results postgresql+psycopg://...``) with real SIGKILLs; fits are observed through the
test models' fit log (tests/models_for_tests), one line per fit with the worker's pid.
"""

from __future__ import annotations

import signal

import optuna
import pytest
from helpers import assert_same, fit_lines, start_run, wait_until

from benchmark.cli import main
from benchmark.store.results import ResultsStore

pytestmark = [pytest.mark.usefixtures("test_models"), pytest.mark.slow]  # slow: starts a PostgreSQL server and kills real runs


RUN_SUITE = """
name = "pg-run"
datasets = ["emotions"]
models = ["test_epoch_lr", "br", "prior"]
fractions = [1.0]
seeds = [0]
trials = 2
epochs = 4
"""


def test_a_run_on_postgres_stores_cells_studies_and_reports(postgres_url, tmp_path):
    suite = tmp_path / "run.toml"
    suite.write_text(RUN_SUITE)
    assert main(["run", "--quiet", "--suite", str(suite), "--results", postgres_url]) == 0
    store = ResultsStore(postgres_url)
    assert store.url.startswith("postgresql+psycopg://") and store.schema_version() >= 2
    frame = store.runs_frame().set_index("model")
    assert sorted(frame.index) == ["br", "prior", "test_epoch_lr"]
    assert (frame.status == "done").all()
    # real numbers came back through PostgreSQL's JSON columns
    assert frame.loc["test_epoch_lr", "metrics"]["val"]["maF1"] > 0.3
    assert frame.loc["br", "metrics"]["val"]["maF1"] > frame.loc["prior", "metrics"]["val"]["maF1"]
    assert frame.loc["test_epoch_lr", "n_trials"] == 2 and frame.loc["prior", "n_trials"] == 0
    # the studies live in the same database, and the stored params are the best trial's
    storage = optuna.storages.RDBStorage(postgres_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert sorted(name.split("|")[2] for name in names) == ["br", "test_epoch_lr"]
    lr_study = optuna.load_study(study_name=next(n for n in names if "|test_epoch_lr|" in n), storage=storage)
    assert len(lr_study.trials) == 2
    assert frame.loc["test_epoch_lr", "params"]["lr"] == pytest.approx(lr_study.best_trial.params["lr"])
    assert frame.loc["test_epoch_lr", "val_score"] == pytest.approx(lr_study.best_value)
    assert sum(line.startswith("test_epoch_lr") for line in fit_lines(tmp_path / "fits.log")) == 2
    # a second run finds everything done; report reads the same store
    assert main(["run", "--quiet", "--suite", str(suite), "--results", postgres_url]) == 0
    assert len(fit_lines(tmp_path / "fits.log")) == 2, "nothing trained again (br is not instrumented)"
    out = tmp_path / "report"
    assert main(["report", "--results", postgres_url, "--out", str(out), "--focus", "br"]) == 0
    assert (out / "index.md").exists()


KILL_SUITE = """
name = "pg-killme"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [0.5, 1.0]
seeds = [0, 1, 2]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 6, sleep = 0.12 }
"""


def test_resume_after_sigkill_on_postgres_finishes_every_cell_exactly_once(postgres_url, tmp_path):
    suite = tmp_path / "kill.toml"
    suite.write_text(KILL_SUITE)
    store = ResultsStore(postgres_url)
    proc = start_run(suite, postgres_url, tmp_path / "first.log")
    wait_until(lambda: len(store.done_cells()) >= 1 or proc.poll() is not None, what="a first finished cell")
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    before = store.runs_frame()
    assert 1 <= len(before) < 6, "kill must land in the middle of the run"
    assert (before.status == "done").all() and before.metrics.map(bool).all(), "no partial row"

    second_log = tmp_path / "second.log"
    rerun = start_run(suite, postgres_url, second_log)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()  # the dead driver's claims (same host, pid gone) are taken over
    after = store.runs_frame()
    assert len(after) == 6 and not after.duplicated(["fraction", "seed"]).any()
    assert (after.status == "done").all()
    assert len(fit_lines(second_log)) == 6 - len(before), "cells stored before the kill were not trained again"
    for row in before.itertuples():  # rows from the first run are untouched
        kept = after[(after.fraction == row.fraction) & (after.seed == row.seed)].iloc[0]
        assert kept.finished_at == row.finished_at and kept.run_id == row.run_id
        assert_same(row.metrics, kept.metrics, ("metrics", row.fraction, row.seed))

    third_log = tmp_path / "third.log"
    assert start_run(suite, postgres_url, third_log).wait(120) == 0
    assert fit_lines(third_log) == [], "a complete store must not train anything"
    assert len(store.runs_frame()) == 6


CONCURRENT_SUITE = """
name = "pg-concurrent"
datasets = ["emotions"]
models = ["test_epoch_lr", "br"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 4, sleep = 0.05 }
"""


def test_two_concurrent_runs_on_one_postgres_database_do_not_duplicate_cells(postgres_url, tmp_path):
    # both start on an empty database (the SQLite test creates the schema first): they also
    # race to create the tables, as two machines pointed at a new database do
    suite = tmp_path / "concurrent.toml"
    suite.write_text(CONCURRENT_SUITE)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [start_run(suite, postgres_url, log) for log in logs]
    for proc in procs:
        out, err = proc.communicate(timeout=150)
        # 0, or 3 when it left groups to the other live run (and says which)
        assert proc.returncode in (0, 3), err.decode()
        assert (proc.returncode == 3) == ("left to another live run" in out.decode()), out.decode()
    assert 0 in {p.returncode for p in procs}
    frame = ResultsStore(postgres_url).runs_frame()
    assert len(frame) == 8 and not frame.duplicated(["model", "fraction", "seed"]).any()
    assert (frame.status == "done").all()
    # br is not instrumented; the 4 test_epoch_lr cells were each trained by exactly one run
    assert len(fit_lines(logs[0])) + len(fit_lines(logs[1])) == 4


TUNED_SUITE = """
name = "pg-tuned"
datasets = ["emotions"]
models = ["test_epoch_lr", "br"]
fractions = [0.5, 1.0]
seeds = [0]
trials = 5
epochs = 4
pruner = "median"
pruner_startup_trials = 2
pruner_warmup_epochs = 1

[model.br]
tune = ["C"]
"""


def _cells(results: str):
    frame = ResultsStore(results).runs_frame()
    assert not frame.duplicated(["dataset", "model", "fraction", "seed", "config"]).any(), "a cell twice"
    return {(r.model, r.fraction, r.seed): r for r in frame.itertuples()}


def test_a_run_killed_and_resumed_on_postgres_equals_an_uninterrupted_run(postgres_server, tmp_path):
    suite = tmp_path / "tuned.toml"
    suite.write_text(TUNED_SUITE)
    # Trial parameters are a pure function of (study, trial number, seed): the worker count
    # changes nothing. The clean run runs in this process (one worker: no pool to start).
    clean = postgres_server.create_database()
    assert main(["run", "--quiet", "--suite", str(suite), "--results", clean, "--workers", "1"]) == 0
    expected = _cells(clean)
    assert len(expected) == 4

    # killed mid-study with two trials in flight, then with one, then resumed
    resumed, log = postgres_server.create_database(), tmp_path / "killed.log"
    for kill_after, workers in ((3, "2"), (6, "1")):  # fits started before the SIGKILL, over all runs
        proc = start_run(suite, resumed, log, "--workers", workers)
        wait_until(lambda: len(fit_lines(log)) >= kill_after or proc.poll() is not None, what="fits")
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert len(_cells(resumed)) < 4, "the kills landed before the end"
    assert start_run(suite, resumed, log, "--workers", "1").wait(300) == 0
    got = _cells(resumed)
    assert got.keys() == expected.keys()
    for cell, row in expected.items():
        other = got[cell]
        assert other.status == row.status == "done"
        assert other.config == row.config
        assert_same(row.params, other.params, (cell, "params"))
        assert_same(row.metrics, other.metrics, (cell, "metrics"))
        assert other.n_trials == row.n_trials == 5


def _open_everything(url, barrier, answers) -> None:
    """What every run does first: open the store, its claims and the optuna storage."""
    from benchmark.execution.tuning import storage_for

    barrier.wait()
    try:
        store = ResultsStore(url)
        store.claims()
        storage_for(url)
        answers.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        answers.put(f"{type(exc).__name__}: {exc}"[:300])


def test_runs_opening_a_new_postgres_database_at_the_same_instant_all_succeed(postgres_server):
    # machines of a cluster job started together race to create the tables (ours and optuna's)
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for _ in range(2):
        url = postgres_server.create_database()
        barrier, answers = context.Barrier(4), context.Queue()
        procs = [context.Process(target=_open_everything, args=(url, barrier, answers)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [answers.get(timeout=5) for _ in procs] == ["ok"] * 4
        assert ResultsStore(url).schema_version() >= 2
