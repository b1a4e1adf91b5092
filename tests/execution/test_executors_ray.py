"""The Ray executor on a local Ray instance writes the same rows as the local executor."""

from __future__ import annotations

import pytest
from helpers import TEST_MODELS

from benchmark.cli import main
from benchmark.store.results import ResultsStore

pytestmark = pytest.mark.slow  # starts Ray

pytest.importorskip("ray")


SUITE = """
name = "ray-vs-local"
datasets = ["emotions"]
models = ["test_epoch_lr", "br"]
fractions = [0.5]
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
    # a local Ray instance, started and stopped by the executor inside this process
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(remote),
                 "--executor", "ray", "--workers", "2"]) == 0
    import ray

    assert not ray.is_initialized(), "the executor stops the instance it started"
    key = ["dataset", "model", "fraction", "seed"]
    a = ResultsStore(local).runs_frame().set_index(key).sort_index()
    b = ResultsStore(remote).runs_frame().set_index(key).sort_index()
    assert len(a) == 4 and list(a.index) == list(b.index)
    assert (b.status == "done").all()
    for cell in a.index:
        assert a.loc[cell, "params"] == pytest.approx(b.loc[cell, "params"])
        for protocol in ("fixed", "val", "oracle"):
            assert a.loc[cell, "metrics"][protocol] == pytest.approx(b.loc[cell, "metrics"][protocol], abs=1e-9)
    assert (a.n_trials == b.n_trials).all()
