"""Executors: where jobs run. The driver (benchmark.runner.Runner) stays in charge.

Every executor has the same small interface::

    capacity: int                        # jobs the driver keeps in flight
    submit(job: dict) -> handle          # job: plain data for benchmark.runner.run_job
    wait(timeout) -> [(handle, result)]  # finished jobs (possibly none before timeout)
    shutdown(cancel=False)

- :class:`InlineExecutor`: runs jobs in the driver process, one at a time (``--workers 1``
  on the CPU; no process start-up cost).
- :class:`LocalExecutor`: a ``concurrent.futures.ProcessPoolExecutor`` (spawn context),
  one worker per visible GPU or ``--workers N`` on the CPU, each capped to its share of
  the cores (torch, OpenMP, MKL and BLAS thread pools).
- :class:`RayExecutor`: the same jobs as Ray tasks, on an existing cluster
  (``--address``) or a local instance; one GPU per task when CUDA is in use.

Workers only train and evaluate; they never touch the results store or the studies.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing as mp
import os
import signal
import traceback
from typing import Any

from benchmark.errors import BenchmarkError

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def configure_worker(n_threads: int | None, device: str | None = None, ignore_sigint: bool = True) -> None:
    """Cap a worker's thread pools and pin it to its device (runs in the worker)."""
    if ignore_sigint:  # the driver handles Ctrl-C and stops the workers itself
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if n_threads:
        for var in THREAD_ENV_VARS:
            os.environ[var] = str(n_threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(n_threads)
        except ImportError:  # pragma: no cover
            pass
        import torch

        torch.set_num_threads(n_threads)
    from benchmark import runner

    runner.set_worker_device(device)


def _failed(exc: BaseException) -> dict[str, Any]:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"state": "failed", "error": f"worker crashed: {text}", "intermediate": {}}


class InlineExecutor:
    """Run each job in this process when the driver waits for it."""

    def __init__(self, n_threads: int | None = None):
        self.capacity = 1
        self._queue: list[tuple[int, dict]] = []
        self._ids = itertools.count()
        if n_threads:
            configure_worker(n_threads, ignore_sigint=False)

    def submit(self, job: dict) -> int:
        handle = next(self._ids)
        self._queue.append((handle, job))
        return handle

    def wait(self, timeout: float | None = None) -> list[tuple[int, dict]]:
        from benchmark.runner import run_job

        if not self._queue:
            return []
        handle, job = self._queue.pop(0)
        return [(handle, run_job(job))]

    def collect_finished(self) -> list[tuple[int, dict]]:
        return []  # nothing runs in the background

    def shutdown(self, cancel: bool = False) -> None:
        self._queue.clear()


def _init_pool_worker(n_threads: int | None, devices) -> None:
    device = devices.get() if devices is not None else None
    configure_worker(n_threads, device)


class LocalExecutor:
    """Worker processes on this machine (spawn context: safe with torch and CUDA)."""

    def __init__(self, workers: int, n_threads: int | None, gpu_devices: list[str] | None = None):
        context = mp.get_context("spawn")
        devices = None
        if gpu_devices:  # each worker takes one device from the queue when it starts
            devices = context.Queue()
            for device in gpu_devices:
                devices.put(device)
            workers = len(gpu_devices)
        self.capacity = workers
        self._submitted: set[cf.Future] = set()
        self._pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_pool_worker,
            initargs=(n_threads, devices),
        )

    def submit(self, job: dict) -> cf.Future:
        from benchmark.runner import run_job

        future = self._pool.submit(run_job, job)
        self._submitted.add(future)
        return future

    def wait(self, timeout: float | None = None) -> list[tuple[cf.Future, dict]]:
        if not self._submitted:
            return []
        finished, _ = cf.wait(self._submitted, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        results = []
        for future in finished:
            self._submitted.discard(future)
            exc = future.exception()  # a worker killed by the OS (out of memory, ...)
            results.append((future, _failed(exc) if exc is not None else future.result()))
        return results

    def collect_finished(self) -> list[tuple[cf.Future, dict]]:
        """Results already computed (used on Ctrl-C so that no finished work is lost)."""
        finished = [f for f in self._submitted if f.done() and not f.cancelled()]
        results = []
        for future in finished:
            self._submitted.discard(future)
            if future.exception() is None:
                results.append((future, future.result()))
        return results

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:  # Ctrl-C: stop the workers we started, now
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


def _ray_job(job: dict, n_threads: int | None) -> dict:
    """Body of the Ray task: cap threads, then run the job like a local worker."""
    configure_worker(n_threads, ignore_sigint=False)
    from benchmark.runner import run_job

    return run_job(job)


class RayExecutor:
    """Jobs as Ray tasks; the driver alone talks to the store and the studies."""


    def __init__(self, address: str | None, workers: int | None, n_threads: int, use_gpu: bool):
        try:
            import ray
        except ImportError:
            raise BenchmarkError(
                "the ray executor needs Ray: pip install 'mlc-bench[ray]' (or pip install ray)"
            ) from None
        self._ray = ray
        env = {k: v for k, v in os.environ.items() if k.startswith("MLCBENCH_")}  # data dir, model path, ...
        runtime_env = {"env_vars": env} if env else None
        self._owns_ray = not ray.is_initialized()  # a local instance we start, we also stop
        if self._owns_ray:
            if address:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            else:
                ray.init(num_cpus=workers * n_threads if workers else None, include_dashboard=False,
                         runtime_env=runtime_env, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if use_gpu and gpus == 0:
            raise BenchmarkError("CUDA requested but the Ray cluster has no GPU")
        self.capacity = workers or (gpus if use_gpu else max(1, cpus // n_threads))
        self._task = ray.remote(_ray_job).options(num_cpus=n_threads, num_gpus=1 if use_gpu else 0,
                                                  max_retries=0)
        self._n_threads = n_threads
        self._pending: list = []

    def submit(self, job: dict):
        ref = self._task.remote(job, self._n_threads)
        self._pending.append(ref)
        return ref

    def wait(self, timeout: float | None = None):
        if not self._pending:
            return []
        ready, self._pending = self._ray.wait(self._pending, num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            try:
                results.append((ref, self._ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - a lost worker is a failed job
                results.append((ref, _failed(exc)))
        return results

    def collect_finished(self):
        if not self._pending:
            return []
        ready, self._pending = self._ray.wait(self._pending, num_returns=len(self._pending), timeout=0)
        results = []
        for ref in ready:
            try:
                results.append((ref, self._ray.get(ref)))
            except Exception:  # noqa: BLE001 - lost work is simply redone next run
                pass
        return results

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._pending:
                self._ray.cancel(ref, force=True)
        self._pending = []
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False


def make_executor(kind: str, workers: int | None, device: str, address: str | None = None):
    """Build the executor a run asked for; see the module docstring for the policy."""
    from benchmark.runner import default_threads

    use_gpu = device.startswith("cuda")
    if kind == "ray":
        # one thread per task unless --workers splits this machine's cores (local instance)
        threads = 1 if use_gpu or workers is None or address else default_threads(workers)
        return RayExecutor(address, workers, threads, use_gpu)
    if kind != "local":
        raise BenchmarkError(f"unknown executor {kind!r}; expected local or ray")
    if use_gpu:
        import torch

        if device == "cuda" and workers is None:
            gpu_devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        else:
            gpu_devices = [device if ":" in device else "cuda:0"] * (workers or 1)
        threads = default_threads(len(gpu_devices))
        if len(gpu_devices) == 1:
            return InlineExecutor(None)
        return LocalExecutor(len(gpu_devices), threads, gpu_devices)
    workers = workers or 1
    threads = default_threads(workers)
    if workers == 1:
        return InlineExecutor(None)
    return LocalExecutor(workers, threads)
