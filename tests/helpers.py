"""What several test modules need: paths, driving real runs, waiting, comparing, real data.

Importable from every test module (pytest puts ``tests/`` on ``sys.path`` for its root
``conftest.py``). Fixtures live in ``conftest.py``; plain functions and constants here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
TEST_MODELS = TESTS_DIR / "models_for_tests"  # models that log their fits, sleep, or fail on purpose


# ----------------------------------------------------------------------------- real runs

def start_run(suite: Path, results: Path | str, log: Path, *extra: str) -> subprocess.Popen:
    """``python -m benchmark run`` as a real process, the test models' fits logged to ``log``."""
    env = dict(os.environ, MLCBENCH_TEST_FIT_LOG=str(log), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(results),
               "--quiet", *extra]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def fit_lines(log: Path) -> list[str]:
    """One line per fit a test model made (with its worker's ``pid=``)."""
    return log.read_text().splitlines() if log.exists() else []


def pids_in(log: Path) -> list[int]:
    return [int(part.split("=")[1]) for line in fit_lines(log) for part in line.split() if part.startswith("pid=")]


def wait_until(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def assert_same(a, b, where) -> None:
    """Equal structures; numbers to 1e-12."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], (*where, key))
    elif isinstance(a, (int, float)) and not isinstance(a, bool) and b is not None:
        assert b == pytest.approx(a, rel=1e-12, abs=1e-12), where
    else:
        assert a == b, where


# ----------------------------------------------------------------------------- real data

def published_split(name: str):
    """(X, Y, split) of a catalog dataset: its published split, validation share drawn with seed 0."""
    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split

    dataset = load_dataset(name)
    return dataset.X, dataset.Y, make_split(dataset, seed=0)


def published_parts(name: str) -> dict:
    """``{"train": (X, Y), "val": (X, Y), "test": (X, Y)}`` of :func:`published_split`."""
    X, Y, split = published_split(name)
    return {part: (X[idx], Y[idx]) for part, idx in (("train", split.train), ("val", split.val), ("test", split.test))}
