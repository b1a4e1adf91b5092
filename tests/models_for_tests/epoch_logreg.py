"""Test-only models: a fast numpy logistic regression trained in epochs, and a model that raises.

Discovered through ``MLCBENCH_MODELS_PATH`` (tests only). Every ``fit`` appends a line
to the file named by ``MLCBENCH_TEST_FIT_LOG`` (when set), so tests can count the
fits a run did, across worker processes.
"""

from __future__ import annotations

import os
import time

import numpy as np
import scipy.sparse as sp
from optuna.distributions import FloatDistribution

from benchmark.evaluation.thresholds import ORACLE_GRID, best_over_grid
from benchmark.modelapi.base import Model


def _log_fit(model: Model) -> None:
    path = os.environ.get("MLCBENCH_TEST_FIT_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(f"{model.name} seed={model.seed} pid={os.getpid()} {sorted(model.params.items())}\n")


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


class EpochLogisticRegression(Model):
    """One logistic regression per label, full-batch gradient descent, one step per epoch."""

    name = "test_epoch_lr"
    family = "test"
    trains_in_epochs = True
    defaults = {"lr": 0.5, "l2": 1e-4, "epochs": 8, "sleep": 0.0}
    search_space = {
        "lr": FloatDistribution(1e-4, 3.0, log=True),
        "l2": FloatDistribution(1e-6, 1e-1, log=True),
    }

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
        _log_fit(self)
        started = time.perf_counter()
        X = _dense(X)
        self.mean_, self.std_ = X.mean(axis=0), X.std(axis=0) + 1e-8
        Z = (X - self.mean_) / self.std_
        rng = np.random.default_rng(self.seed)
        self.W = rng.normal(scale=0.01, size=(Z.shape[1], Y.shape[1]))
        self.b = np.zeros(Y.shape[1])
        epoch_seconds, best = [], (-1.0, 0, None)
        for epoch in range(int(self.params["epochs"])):
            tick = time.perf_counter()
            P = 1 / (1 + np.exp(-(Z @ self.W + self.b)))
            grad = P - Y
            self.W -= self.params["lr"] * (Z.T @ grad / len(Z) + self.params["l2"] * self.W)
            self.b -= self.params["lr"] * grad.mean(axis=0)
            time.sleep(float(self.params["sleep"]))
            if X_val is not None:
                score, _ = best_over_grid(Y_val, self.predict_proba(X_val), "maF1", ORACLE_GRID)
                if score > best[0]:
                    best = (score, epoch, (self.W.copy(), self.b.copy()))
                if on_epoch is not None:
                    on_epoch(epoch, score)
            epoch_seconds.append(time.perf_counter() - tick)
        if best[2] is not None:
            self.W, self.b = best[2]
        self.fit_info = {
            "fit_seconds": time.perf_counter() - started,
            "best_epoch": best[1],
            "n_epochs": len(epoch_seconds),
            "epoch_seconds": epoch_seconds,
        }
        return self

    def predict_proba(self, X):
        Z = (_dense(X) - self.mean_) / self.std_
        return 1 / (1 + np.exp(-np.clip(Z @ self.W + self.b, -30, 30)))


class RaisingModel(Model):
    """Always fails in fit: the runner must record the cell as failed with this traceback."""

    name = "test_raises"
    family = "test"
    defaults = {}
    search_space = {}

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
        _log_fit(self)
        raise RuntimeError("test_raises: this model always fails")

    def predict_proba(self, X):  # pragma: no cover - never reached
        raise AssertionError
