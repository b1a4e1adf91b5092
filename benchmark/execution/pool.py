"""A process pool in which a worker that dies fails only its own job.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one worker
is killed (SIGKILL, the OOM killer, a segfault), failing every job in flight. Here each
worker has its own pipe: the driver waits on the pipes and on the process sentinels, a
dead worker's job comes back as failed ("worker killed by signal 9"), and the worker is
replaced. A worker that dies while idle (waiting for a job) is noticed too: by
:meth:`WorkerPool.wait`, which also waits on idle workers' sentinels, or at the latest by
:meth:`WorkerPool.submit`, which never sends to a dead worker. It is replaced with a
notice on stderr; a job that no worker can take (the replacement dies too, or workers
keep dying before taking any job) comes back from :meth:`WorkerPool.wait` as failed.
Nothing about a dead worker escapes as an exception (a ``BrokenPipeError`` from
``submit`` used to end a run silently with exit status 0). Workers watch their parent
and exit within a second or two of the driver's death, so a killed driver leaves no
orphan holding memory.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait as wait_any
from typing import Any

PARENT_POLL_SECONDS = 1.0
SEND_ATTEMPTS = 2  # a job goes to a fresh worker when its first one turns out dead
PIPE_ERRORS = (OSError, EOFError, ValueError)  # ValueError: a closed connection
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
        self.dead = False  # died and, the pool having given up replacing, left in place

    def send(self, message) -> None:
        self.conn.send(message)

    @property
    def pid(self) -> int | None:
        return self.process.pid


class WorkerPool:
    """``size`` worker processes (spawn context: safe with torch and CUDA)."""

    def __init__(self, size: int, n_threads: int | None = None):
        self._context = mp.get_context("spawn")
        self._n_threads = n_threads
        self._workers = [_Worker(self._context, n_threads) for _ in range(size)]
        self._ids = itertools.count()
        self._undelivered: list[tuple[int, Any]] = []  # (handle, failed JobResult) for the next wait()
        self._idle_deaths = 0  # idle workers that died since a job last came back
        self.replaced = 0
        self.notices: list[str] = []

    @property
    def size(self) -> int:
        return len(self._workers)

    @property
    def max_idle_deaths(self) -> int:
        """Idle deaths in a row after which the pool stops replacing (workers die at start-up)."""
        return 2 * self.size + 2

    def free(self) -> int:
        return sum(w.handle is None for w in self._workers)

    def busy(self) -> int:
        """Jobs not yet returned by :meth:`wait`: running ones and ones no worker could take."""
        return sum(w.handle is not None for w in self._workers) + len(self._undelivered)

    def has_results(self) -> bool:
        """Whether :meth:`wait` has something to return without waiting."""
        return bool(self._undelivered)

    def _sentinels(self) -> list:
        """What :func:`multiprocessing.connection.wait` may wait on: busy workers' pipes and
        every live worker's process sentinel (an idle worker's death wakes the driver too)."""
        busy = [w for w in self._workers if w.handle is not None]
        return [w.conn for w in busy] + [w.process.sentinel for w in self._workers if not w.dead]

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def _note(self, text: str) -> None:
        self.notices.append(text)
        print(f"notice: {text}", file=sys.stderr, flush=True)

    def _idle_worker_died(self, worker: _Worker, why: str = "") -> _Worker:
        """Replace an idle worker found dead; the replacement (or, past the limit, the dead one)."""
        worker.process.join(1)
        reason = death_message(worker.process.exitcode) if worker.process.exitcode is not None else why
        self._idle_deaths += 1
        if self._idle_deaths > self.max_idle_deaths:
            if not worker.dead:
                worker.dead = True
                self._note(f"worker {worker.pid} died while idle ({reason}); {self._idle_deaths - 1} idle "
                           "workers died before it without a job coming back: not replaced, its jobs fail")
            return worker
        self._note(f"worker {worker.pid} died while idle ({reason}); replaced")
        return self._replace(worker)

    def submit(self, job) -> int:
        """Hand ``job`` to an idle worker; never raises for a dead worker.

        A worker found dead is replaced and the job goes to the replacement; a job that
        cannot be handed to any worker comes back failed from the next :meth:`wait`.
        """
        from benchmark.execution.worker import JobResult

        handle = next(self._ids)
        idle = [w for w in self._workers if w.handle is None]
        worker = next((w for w in idle if not w.dead), idle[0])
        why = ""
        for _ in range(SEND_ATTEMPTS):
            if worker.dead:
                break
            if not worker.process.is_alive():
                worker = self._idle_worker_died(worker)
                continue
            try:
                worker.send((handle, job))
            except PIPE_ERRORS as exc:
                why = f"{type(exc).__name__}: {exc}"
                worker = self._idle_worker_died(worker, why)
                continue
            worker.handle = handle
            return handle
        reason = death_message(worker.process.exitcode) if worker.process.exitcode is not None else why
        self._undelivered.append((handle, JobResult(
            "failed", error=f"job could not be handed to a worker: its worker died before taking it ({reason})",
            lost=True)))
        return handle

    def wait(self, timeout: float | None) -> list[tuple[int, Any]]:
        """Finished jobs as (handle, result); a dead worker's job comes back as a failure.

        Also wakes up for, and replaces, a worker that dies while idle (then possibly
        returning no result before ``timeout``).
        """
        from benchmark.execution.worker import JobResult

        results, self._undelivered = self._undelivered, []
        busy = [w for w in self._workers if w.handle is not None]
        if results:
            timeout = 0
        if not busy and not results:
            return []
        ready = set(wait_any(self._sentinels(), timeout))
        for worker in list(self._workers):
            if worker.handle is None:
                if not worker.dead and worker.process.sentinel in ready:
                    self._idle_worker_died(worker)
                continue
            if worker.conn in ready:
                try:
                    handle, result = worker.conn.recv()
                    worker.handle = None
                    self._idle_deaths = 0
                    results.append((handle, result))
                    continue
                except (EOFError, OSError):
                    pass  # the worker died while sending: treat as dead below
            if worker.conn in ready or worker.process.sentinel in ready:
                worker.process.join(5)
                results.append((worker.handle, JobResult("failed", error=death_message(worker.process.exitcode),
                                                         lost=True)))
                self._replace(worker)
        return results

    def _replace(self, worker: _Worker) -> _Worker:
        worker.conn.close()
        index = self._workers.index(worker)
        self._workers[index] = _Worker(self._context, self._n_threads)
        self.replaced += 1
        return self._workers[index]

    def shutdown(self, cancel: bool = False) -> None:
        for worker in self._workers:
            if cancel and worker.process.is_alive():
                worker.process.terminate()
            else:
                try:
                    worker.conn.send(None)
                except PIPE_ERRORS:
                    pass
        for worker in self._workers:
            worker.process.join(10 if not cancel else 5)
            if worker.process.is_alive():
                worker.process.kill()
            worker.conn.close()
        self._workers = []
