"""The execution plan: devices, workers, threads per worker and data dir, decided once.

The CLI, the executors and the runner all read this one object instead of resolving the
device or counting cores themselves.

Policy:

- CPU only: ``--workers N`` processes (default: the suite's ``workers``; ``"auto"`` is
  one per core), each capped to ``cores // N`` threads.
- With GPUs: GPU jobs (models with ``uses_gpu``) run in GPU workers, ``jobs_per_gpu``
  per visible device, with one thread each for data handling. ``--workers N`` sets it;
  by default (``auto_gpu_jobs``) it starts at 1 and the run command raises it, once the
  suite's GPU models are calibrated, to what the device's free memory holds of the
  largest peak a job of theirs needs (:func:`jobs_per_gpu`). CPU-bound models (prior, br, cc, ecc, mlknn, ... any model without
  ``uses_gpu``) run *at the same time* in CPU workers on the remaining cores, one
  thread each.
- Ray: the same two kinds of task, with Ray resources per task (``num_gpus`` a share of
  a GPU for GPU jobs, ``num_cpus`` for every job).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from benchmark.errors import BenchmarkError
from benchmark.lazy import lazy
from benchmark.vocabulary import resolve_gpus

torch = lazy("torch")


@dataclass(frozen=True)
class ExecutionPlan:
    executor: str  # local | ray
    cpu_workers: int
    cpu_threads: int  # threads per CPU worker
    gpu_devices: tuple[str, ...] = ()  # one entry per GPU worker slot
    gpu_threads: int = 1
    data_dir: str | None = None
    address: str | None = None
    auto_gpu_jobs: bool = False  # jobs per GPU not given: chosen from memory (see jobs_per_gpu)
    jobs_per_gpu: int = 1  # jobs sharing one GPU: every executor reads it (slots, Ray's num_gpus share)

    @property
    def device(self) -> str:
        """The device torch models use: the first GPU, or the CPU."""
        return self.gpu_devices[0] if self.gpu_devices else "cpu"

    @property
    def uses_gpu(self) -> bool:
        return bool(self.gpu_devices)

    def resource_for(self, model_cls) -> str:
        """Which pool a model's jobs go to: "gpu" or "cpu"."""
        return "gpu" if self.uses_gpu and getattr(model_cls, "uses_gpu", False) else "cpu"

    def with_jobs_per_gpu(self, jobs: int, cores: int | None = None) -> "ExecutionPlan":
        """The same plan with ``jobs`` worker slots per GPU (CPU workers keep the other cores)."""
        devices = tuple(dict.fromkeys(self.gpu_devices))
        slots = tuple(d for d in devices for _ in range(jobs))
        cores = max(1, cores or os.cpu_count() or 1)
        return replace(self, gpu_devices=slots, cpu_workers=max(1, cores - len(slots)), auto_gpu_jobs=False,
                       jobs_per_gpu=jobs)

    def describe(self) -> str:
        text = f"{self.cpu_workers} CPU worker(s) x {self.cpu_threads} thread(s)"
        if self.gpu_devices:
            text += f" + {len(self.gpu_devices)} GPU worker(s) on {', '.join(sorted(set(self.gpu_devices)))}"
        return text


#: at most this many jobs share one GPU by default: beyond it kernels of small models queue
#: on the device and the host threads feeding them become the limit
MAX_JOBS_PER_GPU = 4
#: share of a GPU's free memory the default fills (the rest: fragmentation, CUDA context)
GPU_MEMORY_SHARE = 0.8


def jobs_per_gpu(free_bytes: int, peak_bytes: list[int], cores: int, n_gpus: int) -> int:
    """Default jobs per GPU: as many as free memory holds of the largest per-job peak.

    Capped at ``MAX_JOBS_PER_GPU`` and at the cores (one per GPU job, at least one left
    for the CPU workers). An unknown peak (0, no calibration) counts as a whole GPU: 1.
    """
    peaks = [int(p) for p in peak_bytes]
    if not peaks or min(peaks) <= 0 or free_bytes <= 0:
        return 1
    by_memory = int(GPU_MEMORY_SHARE * free_bytes // max(peaks))
    by_cores = max(1, (cores - 1) // max(1, n_gpus))
    return max(1, min(by_memory, MAX_JOBS_PER_GPU, by_cores))


def gpu_free_bytes(device: str) -> int:
    """Free memory of one CUDA device now (bytes)."""
    return int(torch.cuda.mem_get_info(torch.device(device))[0])


def cuda_device_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def make_plan(device: str, workers: int | str | None, executor: str = "local", data_dir: str | None = None,
              address: str | None = None, cpu_count: int | None = None, gpu_count: int | None = None) -> ExecutionPlan:
    """Decide the plan from the user's settings (flags over suite values) and this machine."""
    if executor not in ("local", "ray"):
        raise BenchmarkError(f"unknown executor {executor!r}; expected local or ray")
    if workers is not None and workers != "auto" and int(workers) < 1:
        raise BenchmarkError("--workers must be >= 1")
    cores = max(1, cpu_count or os.cpu_count() or 1)
    gpus = resolve_gpus(device, cuda_device_count if gpu_count is None else lambda: gpu_count)
    data_dir = os.path.abspath(data_dir) if data_dir else None
    if gpus:
        auto = workers in (None, "auto")
        per_gpu = 1 if auto else int(workers)
        slots = tuple(d for d in gpus for _ in range(per_gpu))
        cpu_workers = max(1, cores - len(slots))
        return ExecutionPlan(executor, cpu_workers, 1, slots, 1, data_dir, address, auto_gpu_jobs=auto,
                             jobs_per_gpu=per_gpu)
    n = cores if workers == "auto" else int(workers or 1)
    return ExecutionPlan(executor, n, max(1, cores // n), (), 1, data_dir, address)
