"""The Ray executor on a local Ray instance writes the same rows as the local executor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.store import ResultsStore

pytest.importorskip("ray")

TEST_MODELS = Path(__file__).resolve().parent / "models_for_tests"
REPO_ROOT = Path(__file__).resolve().parent.parent

SUITE = """
name = "ray-vs-local"
datasets = ["emotions"]
models = ["test_epoch_lr", "br"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 2
epochs = 4
"""


def test_ray_executor_matches_local_executor(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCBENCH_MODELS_PATH", str(TEST_MODELS))
    from benchmark import discovery

    discovery.install_aliases()
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(local)]) == 0
    # Ray in a subprocess: a local instance started and stopped with it
    env = dict(os.environ, MLCBENCH_MODELS_PATH=str(TEST_MODELS), RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--quiet", "--suite", str(suite), "--results", str(remote),
         "--executor", "ray", "--workers", "2"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    key = ["dataset", "model", "fraction", "seed"]
    a = ResultsStore(local).runs_frame().set_index(key).sort_index()
    b = ResultsStore(remote).runs_frame().set_index(key).sort_index()
    assert len(a) == 8 and list(a.index) == list(b.index)
    assert (b.status == "done").all()
    for cell in a.index:
        assert a.loc[cell, "params"] == pytest.approx(b.loc[cell, "params"])
        for protocol in ("fixed", "val", "oracle"):
            assert a.loc[cell, "metrics"][protocol] == pytest.approx(b.loc[cell, "metrics"][protocol], abs=1e-9)
    assert (a.n_trials == b.n_trials).all()
