"""Every store and output fault is one line naming the path, a non-zero exit, nothing lost."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from benchmark.cli import main
from benchmark.store.results import ResultsStore

RUN = ["run", "--quiet", "--suite", "smoke", "--models", "prior", "--datasets", "emotions", "--fractions", "1"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("results, expected", [
    ("sqlite://", "in-memory"),
    ("sqlite:///:memory:", "in-memory"),
    ("notadb://x", "unknown database kind"),
    ("://", "not a database URL"),
    ("mysql+pymysql://u@localhost/db", "pip install pymysql"),
    ("/proc/mlcbench-results", "/proc/mlcbench-results"),
])
def test_bad_store_locations_are_one_line(capsys, results, expected):
    assert main([*RUN, "--results", results]) == 2
    assert expected in one_error_line(capsys)


def test_a_results_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main([*RUN, "--results", str(target)]) == 2
    assert "is a file, not a results directory" in one_error_line(capsys)
    assert target.read_text() == "mine"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_sqlite_file_is_named_and_never_overwritten(tmp_path, capsys, damage):
    path = tmp_path / "mlcbench.sqlite"
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 300)
    else:
        store = ResultsStore(tmp_path)
        store.record({"dataset": "d", "model": "m", "fraction": 1.0, "seed": 0, "status": "done"})
        store.dispose()
        for extra in tmp_path.glob("mlcbench.sqlite-*"):
            extra.unlink()
        path.write_bytes(path.read_bytes()[:1500])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    for command in ([*RUN, "--results", str(tmp_path)], ["report", "--results", str(tmp_path), "--out", str(tmp_path / "r")]):
        assert main(command) != 0
        line = one_error_line(capsys)
        assert str(path) in line and ("corrupt" in line or "malformed" in line), line
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_report_out_unwritable(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    store.record({"dataset": "d", "model": "m", "fraction": 1.0, "seed": 0, "status": "done"})
    assert main(["report", "--results", str(tmp_path), "--out", "/proc/mlcbench-report"]) == 2
    assert "/proc/mlcbench-report" in one_error_line(capsys)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_cleanly_and_keeps_finished_cells(tmp_path, capsys, monkeypatch):
    """SQLite's max_page_count makes the database 'full' after a few cells, as a full disk would."""
    from benchmark.store import results as store_module

    results = tmp_path / "res"
    ResultsStore(results)
    original = store_module._sqlite_engine
    size = {"pages": None}

    def small_engine(url):
        engine = original(url)

        @sa.event.listens_for(engine, "connect")
        def _limit(dbapi_connection, _record):
            if size["pages"] is None:
                cursor = dbapi_connection.cursor()
                size["pages"] = cursor.execute("PRAGMA page_count").fetchone()[0] + 3
                cursor.close()
            dbapi_connection.execute(f"PRAGMA max_page_count={size['pages']}")

        return engine

    monkeypatch.setattr(store_module, "_sqlite_engine", small_engine)
    code = main(["run", "--quiet", "--suite", "smoke", "--models", "prior,br", "--datasets", "emotions,yeast",
                 "--fractions", "0.5,1", "--trials", "0", "--results", str(results)])
    assert code == 2
    line = one_error_line(capsys)
    assert "disk is full" in line and "run again to resume" in line
    monkeypatch.undo()
    kept = ResultsStore(results).runs_frame()
    assert (kept.status == "done").all() and kept.metrics.map(bool).all(), "finished cells kept, no partial row"
    assert main(["run", "--quiet", "--suite", "smoke", "--models", "prior,br", "--datasets", "emotions,yeast",
                 "--fractions", "0.5,1", "--trials", "0", "--results", str(results)]) == 0
    assert len(ResultsStore(results).runs_frame()) == 8
