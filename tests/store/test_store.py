"""The results store: unique cells, failed rows replaced, done rows kept, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys

import pytest
import sqlalchemy as sa
from helpers import REPO_ROOT

from benchmark.report.inputs import metrics_long
from benchmark.store.claims import claims_table
from benchmark.store.results import ResultsStore, StoreError
from benchmark.store.tables import RUN_COLUMNS, runs_table


def _row(status="done", seed=0, fraction=0.5, value=0.5, **extra):
    return {
        "dataset": "emotions", "model": "br", "fraction": fraction, "seed": seed, "status": status,
        "metrics": {"val": {"maF1": value, "miF1": value + 0.1}, "fixed": {"maF1": value - 0.1}},
        "thresholds": {"val": {"maF1": 0.3}}, "params": {"C": 1.0}, **extra,
    }


def test_directory_means_sqlite_file(tmp_path):
    store = ResultsStore(tmp_path / "res")
    assert store.url == f"sqlite:///{(tmp_path / 'res' / 'mlcbench.sqlite').resolve()}"
    assert (tmp_path / "res" / "mlcbench.sqlite").exists()


def test_failed_row_is_replaced_and_done_row_is_kept(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.record(_row(status="failed", error="Traceback: boom"))
    assert store.cell_status() == {("emotions", "br", 0.5, 0, ""): "failed"}
    assert store.record(_row(value=0.6))
    assert not store.record(_row(value=0.9)), "a second result for a done cell must be dropped"
    frame = store.runs_frame()
    assert list(frame.columns) == RUN_COLUMNS
    assert len(frame) == 1
    assert frame.loc[0, "status"] == "done" and frame.loc[0, "error"] is None
    assert frame.loc[0, "metrics"]["val"]["maF1"] == pytest.approx(0.6)


def test_metrics_long_and_planned(tmp_path):
    store = ResultsStore(tmp_path)
    store.record(_row(seed=0, value=0.4))
    store.record(_row(seed=1, value=0.6))
    store.record(_row(seed=2, status="failed", error="x"))
    long = metrics_long(store.runs_frame(), "val")
    assert sorted(long["seed"]) == [0, 0, 1, 1]  # failed cell excluded
    assert long.query("metric == 'maF1'")["value"].mean() == pytest.approx(0.5)
    store.plan([("emotions", "br", 0.5, s) for s in range(3)], "smoke", "h1")
    store.plan([("emotions", "br", 0.5, s) for s in range(4)], "smoke", "h1")  # idempotent
    planned = store.planned_frame()
    assert sorted(planned["seed"]) == [0, 1, 2, 3]


def test_fraction_keys_are_normalised(tmp_path):
    store = ResultsStore(tmp_path)
    store.record(_row(fraction=0.1 + 0.2))  # 0.30000000000000004
    assert not store.record(_row(fraction=0.3))
    assert store.done_cells() == {("emotions", "br", 0.3, 0, "")}


def test_nan_metrics_are_stored_as_null(tmp_path):
    store = ResultsStore(tmp_path)
    store.record(_row(value=float("nan")))
    assert store.runs_frame().loc[0, "metrics"]["val"]["maF1"] is None


def test_failed_transaction_leaves_no_row(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(RuntimeError):
        with store.engine.begin() as conn:
            conn.execute(runs_table.insert().values(dataset="d", model="m", fraction=1.0, seed=0, status="done"))
            raise RuntimeError("killed mid-write")
    assert store.runs_frame().empty


def test_claims_block_live_owner_and_take_over_dead_one(tmp_path):
    first, second = ResultsStore(tmp_path).claims(), ResultsStore(tmp_path).claims()
    key = "group|emotions|br|0.5|abc"
    assert first.claim(key)
    assert not second.claim(key)
    assert second.holder(key) == first.owner
    # an owner whose process is gone (same host) loses its claim at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with first.engine.begin() as conn:
        conn.execute(claims_table.update().values(pid=int(dead.stdout)))
    assert second.holder(key) is None
    assert second.remove_dead() == 1, "dead claims are removed"
    assert second.claim(key)
    with second:  # leaving the context releases every claim of its owner
        pass
    with second.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(claims_table)).scalar() == 0


def test_cells_of_other_configurations_are_distinct(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.record(_row(config="aaa"))
    assert store.record(_row(config="bbb", value=0.7)), "another configuration is another cell"
    assert store.done_cells() == {("emotions", "br", 0.5, 0, "aaa"), ("emotions", "br", 0.5, 0, "bbb")}


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///"])
def test_in_memory_sqlite_is_refused(url):
    with pytest.raises(StoreError, match="in-memory"):
        ResultsStore(url)


def test_v1_store_is_migrated_in_place(tmp_path):
    """A store written before the config column (v1) opens: rows kept, config = legacy-<suite hash>."""
    path = tmp_path / "mlcbench.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE mlcbench_runs (id INTEGER PRIMARY KEY, dataset VARCHAR, model VARCHAR, fraction FLOAT, "
            "seed INTEGER, status VARCHAR, error TEXT, params JSON, metrics JSON, suite VARCHAR, suite_hash VARCHAR, "
            "finished_at VARCHAR, CONSTRAINT uq_mlcbench_runs_cell UNIQUE (dataset, model, fraction, seed))")
        conn.exec_driver_sql(
            "INSERT INTO mlcbench_runs (dataset, model, fraction, seed, status, metrics, suite, suite_hash) VALUES "
            "('emotions', 'br', 1.0, 0, 'done', '{\"val\": {\"maF1\": 0.6}}', 'quick', 'h1')")
        conn.exec_driver_sql(
            "CREATE TABLE mlcbench_planned (dataset VARCHAR, model VARCHAR, fraction FLOAT, seed INTEGER, "
            "suite VARCHAR, suite_hash VARCHAR, planned_at VARCHAR, PRIMARY KEY (dataset, model, fraction, seed, suite))")
        conn.exec_driver_sql("INSERT INTO mlcbench_planned VALUES ('emotions', 'br', 1.0, 0, 'quick', 'h1', 'x')")
    engine.dispose()
    store = ResultsStore(tmp_path)
    assert store.schema_version() == 3
    frame = store.runs_frame()
    assert len(frame) == 1 and frame.loc[0, "config"] == "legacy-h1"
    assert frame.loc[0, "metrics"]["val"]["maF1"] == pytest.approx(0.6)
    assert store.planned_frame().loc[0, "config"] == "legacy-h1"
    assert ResultsStore(tmp_path).schema_version() == 3  # opening again changes nothing
    assert len(ResultsStore(tmp_path).runs_frame()) == 1


def _write_cells(directory: str, tag: int, n_cells: int) -> None:
    store = ResultsStore(directory)
    for seed in range(n_cells):
        store.record(_row(seed=seed, value=0.1 * tag, run_id=f"writer-{tag}"))
        store.record(_row(seed=seed, fraction=1.0, status="failed", error=f"writer {tag}"))


@pytest.mark.slow
def test_two_processes_writing_the_same_cells_do_not_duplicate(tmp_path):
    ResultsStore(tmp_path)  # create the schema once
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_cells, args=(str(tmp_path), tag, 25)) for tag in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    frame = ResultsStore(tmp_path).runs_frame()
    assert len(frame) == 50
    assert not frame.duplicated(["dataset", "model", "fraction", "seed"]).any()
    done = frame[frame.status == "done"]
    assert len(done) == 25 and set(done.run_id) <= {"writer-1", "writer-2"}


def test_v2_store_gains_the_warnings_column_and_keeps_every_row(tmp_path):
    """v3 added runs.warnings: a v2 store (the quick report's, copied) opens with every row kept."""
    import shutil
    import sqlite3

    shutil.copy(REPO_ROOT / "reports" / "quick" / "store" / "mlcbench.sqlite", tmp_path)
    with sqlite3.connect(tmp_path / "mlcbench.sqlite") as conn:  # back to v2, as it was committed
        before = conn.execute("SELECT COUNT(*) FROM mlcbench_runs").fetchone()[0]
        if "warnings" in {row[1] for row in conn.execute("PRAGMA table_info(mlcbench_runs)")}:
            conn.execute("ALTER TABLE mlcbench_runs DROP COLUMN warnings")
            conn.execute("DELETE FROM mlcbench_schema WHERE version = 3")
    store = ResultsStore(tmp_path)
    assert store.schema_version() == 3
    frame = store.runs_frame()
    assert len(frame) == before and not any(frame["warnings"]), "old rows have no warnings"
