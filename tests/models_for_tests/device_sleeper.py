"""Test-only models that sleep and log where and when they ran (device, pid, start, end).

``test_gpu_sleeper`` declares ``uses_gpu`` without touching CUDA, so a test can hand the
executor a mocked GPU list and check which pool each job went to and that they overlap.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmark.modelapi.base import Model


class _Sleeper(Model):
    family = "test"
    defaults = {"sleep": 1.0}
    search_space = {}
    stochastic = False

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
        start = time.time()
        time.sleep(float(self.params["sleep"]))
        path = os.environ.get("MLCBENCH_TEST_DEVICE_LOG")
        if path:
            with open(path, "a") as handle:
                handle.write(f"{self.name} {self.device} {os.getpid()} {start:.3f} {time.time():.3f}\n")
        self.rate_ = np.asarray(Y).mean(axis=0)
        self.fit_info = {"fit_seconds": time.time() - start}
        return self

    def predict_proba(self, X):
        return np.tile(self.rate_, (X.shape[0], 1))


class GpuSleeper(_Sleeper):
    name = "test_gpu_sleeper"
    uses_gpu = True


class CpuSleeper(_Sleeper):
    name = "test_cpu_sleeper"
    uses_gpu = False
