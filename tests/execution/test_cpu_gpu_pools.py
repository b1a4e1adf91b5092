"""With GPUs present, GPU models and CPU-bound models run at the same time, each in its pool.

The GPU list is mocked (the plan says one GPU, two job slots on it); the GPU test model
declares ``uses_gpu`` but never touches CUDA, so this runs on any machine.
"""

from __future__ import annotations

import dataclasses

import pytest

from benchmark.execution.executors import LocalExecutor
from benchmark.execution.plan import build_plan
from benchmark.execution.progress import RunProgress
from benchmark.execution.resources import ExecutionPlan, make_plan
from benchmark.execution.runner import Runner
from benchmark.execution.suite import load_suite
from benchmark.store.results import ResultsStore

pytestmark = pytest.mark.usefixtures("test_models")  # tests/conftest.py


def test_plan_with_gpus_gives_the_other_cores_to_cpu_workers():
    plan = make_plan("auto", None, cpu_count=16, gpu_count=2)
    assert plan.gpu_devices == ("cuda:0", "cuda:1") and plan.cpu_workers == 14
    assert make_plan("cuda", 3, cpu_count=16, gpu_count=1).gpu_devices == ("cuda:0",) * 3
    cpu = make_plan("cpu", 2, cpu_count=8, gpu_count=1)
    assert cpu.gpu_devices == () and cpu.cpu_workers == 2 and cpu.cpu_threads == 4


@pytest.mark.slow
def test_cpu_and_gpu_jobs_run_concurrently_in_their_own_pools(tmp_path):
    suite_file = tmp_path / "mixed.toml"
    suite_file.write_text('name = "mixed"\ndatasets = ["emotions"]\nmodels = ["test_gpu_sleeper", "test_cpu_sleeper"]\n'
                          'fractions = [0.5, 1.0]\nseeds = [0]\ntrials = 0\n')
    suite = load_suite(str(suite_file))
    plan = ExecutionPlan("local", cpu_workers=2, cpu_threads=1, gpu_devices=("cuda:0", "cuda:0"))
    executor = LocalExecutor(plan)
    try:
        summary = Runner(build_plan(suite, plan), ResultsStore(tmp_path / "res"), executor, RunProgress(quiet=True)).run()
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


def test_jobs_per_gpu_fills_free_memory_up_to_the_caps():
    from benchmark.execution.resources import MAX_JOBS_PER_GPU, jobs_per_gpu

    gib = 2**30
    assert jobs_per_gpu(10 * gib, [1 * gib, 3 * gib], cores=16, n_gpus=1) == 2, "0.8 * 10 GiB / the largest peak"
    assert jobs_per_gpu(139 * gib, [200 * 2**20], cores=16, n_gpus=1) == MAX_JOBS_PER_GPU
    assert jobs_per_gpu(139 * gib, [200 * 2**20], cores=4, n_gpus=2) == 1, "one core per GPU job, one left for CPU jobs"
    assert jobs_per_gpu(2 * gib, [5 * gib], cores=16, n_gpus=1) == 1, "never below one"
    assert jobs_per_gpu(10 * gib, [0], cores=16, n_gpus=1) == 1, "an unknown peak takes the whole GPU"
    plan = make_plan("auto", None, cpu_count=16, gpu_count=2)
    assert plan.auto_gpu_jobs and not make_plan("auto", 2, cpu_count=16, gpu_count=2).auto_gpu_jobs
    wider = plan.with_jobs_per_gpu(3, cores=16)
    assert wider.gpu_devices == ("cuda:0",) * 3 + ("cuda:1",) * 3 and wider.cpu_workers == 10


def test_the_run_command_sizes_gpu_jobs_from_the_calibrated_peak(tmp_path, monkeypatch, capsys):
    """Without --workers on a (mocked) GPU machine the dry run times the models, reads the peak of
    the GPU model's fits and the device's free memory, and plans that many jobs per GPU."""
    import benchmark.cost.calibration as calibration
    import benchmark.cost.estimate as estimate
    import benchmark.execution.resources as plan_module
    from benchmark.cli import main

    gib = 2**30
    real_reference = calibration.calibrate_reference

    def calibrate_reference(plan, group):  # the real timings, a mocked device peak for the GPU model
        reference = real_reference(plan, group)
        return dataclasses.replace(reference, peak_gpu_bytes=3 * gib if group.model.resource == "gpu" else 0)

    monkeypatch.setattr(plan_module, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(plan_module, "gpu_free_bytes", lambda device: 10 * gib)
    monkeypatch.setattr(estimate, "calibrate_reference", calibrate_reference)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    monkeypatch.setenv("MLCBENCH_CACHE_DIR", str(tmp_path / "cache"))  # no cached calibration
    suite_file = tmp_path / "mixed.toml"
    suite_file.write_text('name = "mixed"\ndatasets = ["emotions"]\nmodels = ["test_gpu_sleeper", "test_cpu_sleeper"]\n'
                          'fractions = [1.0]\nseeds = [0]\ntrials = 0\nworkers = "auto"\n[model.test_gpu_sleeper]\ntrials = 0\n'
                          'params = { sleep = 0.01 }\n[model.test_cpu_sleeper]\ntrials = 0\nparams = { sleep = 0.01 }\n')
    assert main(["run", "--suite", str(suite_file), "--results", str(tmp_path / "res"), "--dry-run"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "2 job(s) per GPU" in text and "3072 MB" in text, text
    assert "2 GPU worker(s) on cuda:0" in text and "14 CPU worker(s)" in text, text


def test_ray_gets_the_planned_jobs_per_gpu(monkeypatch):
    """The execution plan's jobs per GPU reach the Ray executor: its GPU slots and each GPU
    task's share of a GPU (a fake ray module with one GPU; no cluster is started)."""
    import sys
    import types

    from benchmark.execution.executors import make_executor

    options = []

    class Remote:
        def options(self, **kwargs):
            options.append(kwargs)
            return self

    fake = types.SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: {"CPU": 16, "GPU": 1},
                                 remote=lambda fn: Remote())
    monkeypatch.setitem(sys.modules, "ray", fake)
    plan = make_plan("cuda", None, executor="ray", cpu_count=16, gpu_count=1).with_jobs_per_gpu(3, cores=16)
    assert plan.jobs_per_gpu == 3
    executor = make_executor(plan)
    assert executor.free("gpu") == 3, "three jobs share the one GPU"
    assert {"num_cpus": 1, "num_gpus": 1 / 3, "max_retries": 0} in options
