"""Worker deaths the pool must notice, busy or idle (issue #23, item 1).

Real processes and real signals: a worker process SIGKILLed while it waits for a job
must neither end the run silently (a BrokenPipeError from ``submit`` used to reach the
CLI's ``| head`` handler, which exits 0) nor lose cells.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, wait_until

from benchmark.store.results import ResultsStore

pytestmark = [pytest.mark.usefixtures("test_models"), pytest.mark.slow]  # slow: kills real worker processes


def worker_children(pid: int) -> list[int]:
    """The spawn-context worker processes of the driver ``pid`` (not its resource tracker)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                children.append(int(child))
    return sorted(children)


def fitting_pids(log: Path) -> list[int]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [int(part.split("=")[1]) for line in lines for part in line.split() if part.startswith("pid=")]


# ---------------------------------------------------------------------------- the pool itself


def _job(sleep: float = 0.0, seed: int = 0):
    from benchmark.data.refs import DatasetRef
    from benchmark.execution.worker import Job

    n = 593  # emotions, bundled
    index = np.arange(n)
    return Job(kind="cell", dataset=DatasetRef("emotions"), model="test_epoch_lr",
               params={"epochs": 2, "sleep": sleep}, seed=seed, train=index[:400], val=index[400:500],
               test=index[500:], val_grid=(0.5,), oracle_grid=(0.5,))


def _kill_and_reap(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
               if Path(f"/proc/{pid}").exists() else True, timeout=10, what=f"worker {pid} to die")


def test_submit_to_a_worker_killed_while_idle_replaces_it():
    from benchmark.execution.pool import WorkerPool

    pool = WorkerPool(2)
    try:
        victim = pool.pids()[0]
        _kill_and_reap(victim)
        handles = [pool.submit(_job(seed=s)) for s in (0, 1)]  # used to raise BrokenPipeError
        results = {}
        deadline = time.monotonic() + 120
        while len(results) < 2 and time.monotonic() < deadline:
            results.update(pool.wait(5))
        assert sorted(results) == sorted(handles)
        assert all(r.state == "complete" for r in results.values()), [r.error for r in results.values()]
        assert victim not in pool.pids() and pool.replaced == 1
    finally:
        pool.shutdown()


def test_an_idle_worker_death_is_noticed_while_another_worker_is_busy():
    from benchmark.execution.pool import WorkerPool

    pool = WorkerPool(2)
    try:
        handle = pool.submit(_job(sleep=0.5, seed=0))  # the first worker is busy for a few seconds
        idle = pool.pids()[1]
        os.kill(idle, signal.SIGKILL)
        started = time.monotonic()
        finished = pool.wait(60)
        # the wait wakes up for the idle worker's death (not only for the busy one's result)
        while not finished and pool.replaced == 0 and time.monotonic() - started < 60:
            finished = pool.wait(60)
        assert pool.replaced == 1 and idle not in pool.pids()
        assert pool.free() >= 1
        results = dict(finished)
        while handle not in results:
            results.update(pool.wait(60))
        assert results[handle].state == "complete"
    finally:
        pool.shutdown()


def test_a_job_that_cannot_be_handed_to_any_worker_fails_as_a_result(monkeypatch):
    """When even the replacement cannot take the job, the job comes back failed; nothing raises."""
    from benchmark.execution import pool as pool_module

    pool = pool_module.WorkerPool(1)
    try:
        def broken_send(self, message):
            raise BrokenPipeError(32, "Broken pipe")

        monkeypatch.setattr(pool_module._Worker, "send", broken_send)
        handle = pool.submit(_job())
        assert pool.busy() == 1
        (got, result), = pool.wait(0)
        assert got == handle and result.state == "failed"
        assert "could not be handed to a worker" in result.error
        assert pool.busy() == 0
    finally:
        monkeypatch.undo()
        pool.shutdown()


# ---------------------------------------------------------------------------- the whole run

IDLE_SUITE = """
name = "idle"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [1.0]
seeds = [0, 1, 2]
trials = 1

[model.test_epoch_lr]
tune = ["lr"]
params = { epochs = 8, sleep = 0.5 }
"""


def test_a_worker_killed_while_idle_does_not_end_the_run(tmp_path):
    """The issue's repro: trials = 1, seeds 0,1,2, --workers 2; kill -9 the idle worker while
    trial 0 runs. Every cell must still be computed and the summary printed."""
    suite = tmp_path / "idle.toml"
    suite.write_text(IDLE_SUITE)
    results, log = tmp_path / "res", tmp_path / "fits.log"
    env = dict(os.environ, MLCBENCH_TEST_FIT_LOG=str(log), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results",
                             str(results), "--workers", "2", "--no-estimate"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(fitting_pids(log)) == 1, what="trial 0 to start")
        busy = fitting_pids(log)[0]
        wait_until(lambda: len(worker_children(proc.pid)) == 2, timeout=30, what="two workers")
        idle = [pid for pid in worker_children(proc.pid) if pid != busy]
        assert len(idle) == 1, worker_children(proc.pid)
        os.kill(idle[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = out.decode(), err.decode()
    assert "Traceback" not in err, err
    frame = ResultsStore(results).runs_frame()
    assert sorted(frame.seed) == [0, 1, 2], out + err
    assert (frame.status == "done").all(), frame[["seed", "status", "error"]]
    assert proc.returncode == 0, out + err
    assert "3 cells done, 0 failed" in out, out  # the summary was printed
    assert idle[0] not in fitting_pids(log), "the dead worker ran nothing"
    assert "died while idle" in err


def test_a_broken_pipe_that_is_not_stdout_is_an_error_not_exit_0(capsys, monkeypatch):
    """The CLI's quiet exit is for a closed stdout (`| head`) only."""
    from benchmark import cli

    def handler(args):
        raise BrokenPipeError(32, "Broken pipe")

    import argparse

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args",
                        lambda self, argv=None: argparse.Namespace(command="run", dry_run=False, handler=handler))
    code = cli.main(["run"])
    assert code == 1
    err = capsys.readouterr().err
    assert "error: broken pipe" in err and "Broken pipe" in err


def test_a_closed_stdout_still_exits_quietly(tmp_path):
    """`python -m benchmark datasets list | head -1`: no traceback, no error."""
    proc = subprocess.run(f"{sys.executable} -m benchmark datasets list | head -1", shell=True, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr, proc.stderr
