"""Executors: where jobs run. The driver (:class:`benchmark.execution.runner.Runner`) stays in charge.

Every executor has the same small interface, with two kinds of slot, ``"cpu"`` and
``"gpu"`` (see :mod:`benchmark.execution.resources` for which model goes where)::

    free(resource) -> int                 # jobs of that kind it can take now
    submit(job, resource) -> handle       # stamps the device and threads on the job
    wait(timeout) -> [(handle, result)]   # finished jobs (possibly none before timeout)
    collect_finished() -> [(handle, result)]
    shutdown(cancel=False)

- :class:`InlineExecutor`: runs jobs in the driver process, one at a time (one CPU
  worker; no process start-up cost).
- :class:`LocalExecutor`: :class:`benchmark.execution.pool.WorkerPool` processes: CPU workers,
  and per GPU its job slots, running at the same time.
- :class:`RayExecutor`: the same jobs as Ray tasks, on an existing cluster
  (``--address``) or a local instance, with CPU and GPU resources per task.

Workers only train and evaluate; they never touch the results store or the studies.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from multiprocessing.connection import wait as wait_any
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.execution.pool import WorkerPool, configure_threads
from benchmark.execution.resources import ExecutionPlan
from benchmark.execution.worker import Job, JobResult, run_job


def _stamp(job: Job, device: str, n_threads: int | None, data_dir: str | None) -> Job:
    return dataclasses.replace(job, device=device, n_threads=n_threads, data_dir=data_dir)


class InlineExecutor:
    """Run each job in this process when the driver waits for it."""

    def __init__(self, plan: ExecutionPlan):
        self.plan = plan
        self._queue: list[tuple[int, Job]] = []
        self._ids = itertools.count()
        self._threads = plan.cpu_threads if plan.cpu_threads < (os.cpu_count() or 1) else None

    def free(self, resource: str) -> int:
        return 0 if resource == "gpu" or self._queue else 1

    def submit(self, job: Job, resource: str = "cpu") -> int:
        handle = next(self._ids)
        self._queue.append((handle, _stamp(job, "cpu", None, self.plan.data_dir)))
        return handle

    def wait(self, timeout: float | None = None) -> list[tuple[int, JobResult]]:
        if not self._queue:
            return []
        handle, job = self._queue.pop(0)
        configure_threads(self._threads)  # the driver's own pools, capped as a worker's would be
        return [(handle, run_job(job))]

    def collect_finished(self) -> list[tuple[int, JobResult]]:
        return []  # nothing runs in the background

    def shutdown(self, cancel: bool = False) -> None:
        self._queue.clear()


class LocalExecutor:
    """Worker processes on this machine: a CPU pool and one pool per GPU, side by side."""

    def __init__(self, plan: ExecutionPlan):
        self.plan = plan
        self._pools: dict[str, WorkerPool] = {"cpu": WorkerPool(plan.cpu_workers, plan.cpu_threads)}
        for device in sorted(set(plan.gpu_devices)):
            self._pools[device] = WorkerPool(plan.gpu_devices.count(device), plan.gpu_threads)

    def _gpu_pools(self) -> list[str]:
        return [name for name in self._pools if name != "cpu"]

    def free(self, resource: str) -> int:
        if resource == "gpu":
            return sum(self._pools[d].free() for d in self._gpu_pools())
        return self._pools["cpu"].free()

    def submit(self, job: Job, resource: str = "cpu") -> tuple[str, int]:
        if resource == "gpu":
            device = max(self._gpu_pools(), key=lambda d: self._pools[d].free())
            threads = self.plan.gpu_threads
        else:
            device, threads = "cpu", self.plan.cpu_threads
        handle = self._pools[device].submit(_stamp(job, device, threads, self.plan.data_dir))
        return (device, handle)

    def wait(self, timeout: float | None = None) -> list[tuple[tuple[str, int], JobResult]]:
        busy = {name: pool for name, pool in self._pools.items() if pool.busy()}
        if not busy:
            return []
        if any(pool.has_results() for pool in busy.values()):
            timeout = 0  # a job no worker could take is already back as failed
        if len(busy) > 1:  # wait on every pool at once, then collect from each
            handles = [h for pool in busy.values() for h in pool._sentinels()]
            wait_any(handles, timeout)
            timeout = 0
        started = time.monotonic()
        results = []
        for name, pool in busy.items():
            left = None if timeout is None else max(0.0, timeout - (time.monotonic() - started))
            results += [((name, h), r) for h, r in pool.wait(left)]
        return results

    def collect_finished(self):
        return [((name, h), r) for name, pool in self._pools.items() for h, r in pool.wait(0)]

    def shutdown(self, cancel: bool = False) -> None:
        for pool in self._pools.values():
            pool.shutdown(cancel=cancel)


def _ray_job(job: Job) -> JobResult:
    """Body of the Ray task: cap threads, then run the job like a local worker."""
    configure_threads(job.n_threads)
    return run_job(job)


class RayExecutor:
    """Jobs as Ray tasks; the driver alone talks to the store and the studies."""

    def __init__(self, plan: ExecutionPlan):
        try:
            import ray
        except ImportError:
            raise BenchmarkError("the ray executor needs Ray: pip install 'mlc-bench[ray]' (or pip install ray)") from None
        self._ray = ray
        self.plan = plan
        env = {k: v for k, v in os.environ.items() if k.startswith("MLCBENCH_")}  # data dir, model path, ...
        runtime_env = {"env_vars": env} if env else None
        self._owns_ray = not ray.is_initialized()  # a local instance we start, we also stop
        if self._owns_ray:
            if plan.address:
                ray.init(address=plan.address, runtime_env=runtime_env, log_to_driver=False)
            else:
                ray.init(num_cpus=plan.cpu_workers * plan.cpu_threads + len(plan.gpu_devices),
                         include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if plan.uses_gpu and gpus == 0:
            raise BenchmarkError("CUDA requested but the Ray cluster has no GPU")
        self._slots = {"gpu": gpus * plan.jobs_per_gpu if plan.uses_gpu else 0}
        self._slots["cpu"] = max(1, (cpus - self._slots["gpu"]) // plan.cpu_threads) if plan.address else plan.cpu_workers
        remote = ray.remote(_ray_job)
        self._tasks = {
            "cpu": remote.options(num_cpus=plan.cpu_threads, num_gpus=0, max_retries=0),
            "gpu": remote.options(num_cpus=1, num_gpus=1 / plan.jobs_per_gpu, max_retries=0),
        }
        self._pending: dict[Any, str] = {}

    def free(self, resource: str) -> int:
        return self._slots[resource] - sum(r == resource for r in self._pending.values())

    def submit(self, job: Job, resource: str = "cpu"):
        device = "cuda:0" if resource == "gpu" else "cpu"  # Ray shows each task its own GPU as cuda:0
        threads = 1 if resource == "gpu" else self.plan.cpu_threads
        ref = self._tasks[resource].remote(_stamp(job, device, threads, self.plan.data_dir))
        self._pending[ref] = resource
        return ref

    def _collect(self, timeout, num_returns: int):
        if not self._pending:
            return []
        ready, _ = self._ray.wait(list(self._pending), num_returns=num_returns, timeout=timeout)
        results = []
        for ref in ready:
            self._pending.pop(ref)
            try:
                results.append((ref, self._ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - a lost worker or node is a failed job
                results.append((ref, JobResult("failed", error=f"ray task failed: {type(exc).__name__}: {exc}",
                                               lost=True)))
        return results

    def wait(self, timeout: float | None = None):
        return self._collect(timeout, 1)

    def collect_finished(self):
        return self._collect(0, len(self._pending) or 1)

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._pending:
                self._ray.cancel(ref, force=True)
        self._pending = {}
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False


def make_executor(plan: ExecutionPlan):
    """The executor a plan asks for (see :mod:`benchmark.execution.resources` for the policy)."""
    if plan.executor == "ray":
        return RayExecutor(plan)
    if plan.cpu_workers == 1 and not plan.uses_gpu:
        return InlineExecutor(plan)
    return LocalExecutor(plan)
