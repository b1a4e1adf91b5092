"""A process pool in which a worker that dies fails only its own job.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one worker
is killed (SIGKILL, the OOM killer, a segfault), failing every job in flight. Here each
worker has its own pipe: the driver waits on the pipes and on the process sentinels, a
dead worker's job comes back as failed ("worker killed by signal 9"), and the worker is
replaced. Workers watch their parent and exit within a second or two of the driver's
death, so a killed driver leaves no orphan holding memory.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.connection import wait as wait_any
from typing import Any

PARENT_POLL_SECONDS = 1.0
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def configure_threads(n_threads: int | None) -> None:
    """Cap this process's thread pools (torch, OpenMP, MKL and BLAS)."""
    if not n_threads:
        return
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n_threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n_threads)
    except ImportError:  # pragma: no cover
        pass
    import torch

    torch.set_num_threads(n_threads)


def _die_with_parent(parent_pid: int) -> None:
    """Exit when the driver is gone: PR_SET_PDEATHSIG where Linux offers it, and a watcher."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="mlcbench-parent-watch", daemon=True).start()


def _worker_main(conn, parent_pid: int, n_threads: int | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    _die_with_parent(parent_pid)
    configure_threads(n_threads)
    from benchmark.execution.worker import run_job

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        handle, job = message
        conn.send((handle, run_job(job)))


def death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"worker killed by signal {-exitcode} ({name})"
    return f"worker exited with code {exitcode} before returning a result"


class _Worker:
    def __init__(self, context, n_threads: int | None):
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker_main, args=(child, os.getpid(), n_threads),
                                       name="mlcbench-worker", daemon=True)
        self.process.start()
        child.close()
        self.handle: Any = None  # the job it is computing, or None when idle


class WorkerPool:
    """``size`` worker processes (spawn context: safe with torch and CUDA)."""

    def __init__(self, size: int, n_threads: int | None = None):
        self._context = mp.get_context("spawn")
        self._n_threads = n_threads
        self._workers = [_Worker(self._context, n_threads) for _ in range(size)]
        self._ids = itertools.count()
        self.replaced = 0

    @property
    def size(self) -> int:
        return len(self._workers)

    def free(self) -> int:
        return sum(w.handle is None for w in self._workers)

    def busy(self) -> int:
        return self.size - self.free()

    def _sentinels(self) -> list:
        """What :func:`multiprocessing.connection.wait` may wait on for the busy workers."""
        busy = [w for w in self._workers if w.handle is not None]
        return [w.conn for w in busy] + [w.process.sentinel for w in busy]

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def submit(self, job) -> int:
        worker = next(w for w in self._workers if w.handle is None)
        handle = next(self._ids)
        worker.conn.send((handle, job))
        worker.handle = handle
        return handle

    def wait(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Finished jobs as (handle, result); a dead worker's job comes back as a failure."""
        from benchmark.execution.worker import JobResult

        busy = [w for w in self._workers if w.handle is not None]
        if not busy:
            return []
        ready = set(wait_any([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        results = []
        for worker in busy:
            if worker.conn in ready:
                try:
                    handle, result = worker.conn.recv()
                    worker.handle = None
                    results.append((handle, result))
                    continue
                except (EOFError, OSError):
                    pass  # the worker died while sending: treat as dead below
            if worker.conn in ready or worker.process.sentinel in ready:
                worker.process.join(5)
                results.append((worker.handle, JobResult("failed", error=death_message(worker.process.exitcode))))
                self._replace(worker)
        return results

    def _replace(self, worker: _Worker) -> None:
        worker.conn.close()
        index = self._workers.index(worker)
        self._workers[index] = _Worker(self._context, self._n_threads)
        self.replaced += 1

    def shutdown(self, cancel: bool = False) -> None:
        for worker in self._workers:
            if cancel and worker.process.is_alive():
                worker.process.terminate()
            else:
                try:
                    worker.conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
        for worker in self._workers:
            worker.process.join(10 if not cancel else 5)
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()
        self._workers = []
