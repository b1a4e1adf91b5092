"""With GPUs present, GPU models and CPU-bound models run at the same time, each in its pool.

The GPU list is mocked (the plan says one GPU, two job slots on it); the GPU test model
declares ``uses_gpu`` but never touches CUDA, so this runs on any machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.executors import LocalExecutor
from benchmark.plan import ExecutionPlan, make_plan
from benchmark.progress import RunProgress
from benchmark.runner import Runner
from benchmark.store import ResultsStore
from benchmark.suite import load_suite

TEST_MODELS = Path(__file__).resolve().parent / "models_for_tests"


@pytest.fixture(autouse=True)
def test_models(monkeypatch, tmp_path):
    monkeypatch.setenv("MLCBENCH_MODELS_PATH", str(TEST_MODELS))
    from benchmark import discovery

    discovery.install_aliases()
    monkeypatch.setenv("MLCBENCH_TEST_DEVICE_LOG", str(tmp_path / "devices.log"))


def test_plan_with_gpus_gives_the_other_cores_to_cpu_workers():
    plan = make_plan("auto", None, cpu_count=16, gpu_count=2)
    assert plan.gpu_devices == ("cuda:0", "cuda:1") and plan.cpu_workers == 14
    assert make_plan("cuda", 3, cpu_count=16, gpu_count=1).gpu_devices == ("cuda:0",) * 3
    cpu = make_plan("cpu", 2, cpu_count=8, gpu_count=1)
    assert cpu.gpu_devices == () and cpu.cpu_workers == 2 and cpu.cpu_threads == 4


def test_cpu_and_gpu_jobs_run_concurrently_in_their_own_pools(tmp_path):
    suite_file = tmp_path / "mixed.toml"
    suite_file.write_text('name = "mixed"\ndatasets = ["emotions"]\nmodels = ["test_gpu_sleeper", "test_cpu_sleeper"]\n'
                          'fractions = [0.5, 1.0]\nseeds = [0]\ntrials = 0\n')
    suite = load_suite(str(suite_file))
    plan = ExecutionPlan("local", cpu_workers=2, cpu_threads=1, gpu_devices=("cuda:0", "cuda:0"))
    executor = LocalExecutor(plan)
    try:
        summary = Runner(suite, ResultsStore(tmp_path / "res"), executor, RunProgress(quiet=True), plan).run()
    finally:
        executor.shutdown()
    assert summary.done == 4 and not summary.failed
    runs = [line.split() for line in (tmp_path / "devices.log").read_text().splitlines()]
    devices = {(name, device) for name, device, *_ in runs}
    assert devices == {("test_gpu_sleeper", "cuda:0"), ("test_cpu_sleeper", "cpu")}, "each job in its own pool"
    gpu = [(float(a), float(b)) for name, _, _, a, b in runs if name == "test_gpu_sleeper"]
    cpu = [(float(a), float(b)) for name, _, _, a, b in runs if name == "test_cpu_sleeper"]
    overlap = max(min(b1, b2) - max(a1, a2) for a1, b1 in gpu for a2, b2 in cpu)
    assert overlap > 0.5, "CPU-bound and GPU jobs ran at the same time"
    pids = {name: {pid for n, _, pid, _, _ in runs if n == name} for name in ("test_gpu_sleeper", "test_cpu_sleeper")}
    assert not pids["test_gpu_sleeper"] & pids["test_cpu_sleeper"], "different worker processes"
    frame = ResultsStore(tmp_path / "res").runs_frame()
    assert set(frame.model) == {"test_gpu_sleeper", "test_cpu_sleeper"}
