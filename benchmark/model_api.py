"""The model interface every file under ``models/`` implements, and the registry.

A model is a small scikit-learn-like class::

    class BinaryRelevance(Model):
        name = "br"                       # registry key, used on the command line
        family = "classic"
        defaults = {"C": 1.0}             # every hyperparameter with its default
        search_space = {"C": FloatDistribution(1e-3, 1e2, log=True)}

        def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None): ...
        def predict_proba(self, X): ...   # (n, L) float scores in [0, 1]

Search spaces are Optuna distributions, so the tuner can ``study.ask(space)``
directly. Models that train in epochs set ``trains_in_epochs = True`` and call
``on_epoch(epoch, validation_score)`` after each epoch; the callback may raise
``optuna.TrialPruned`` to stop a hopeless trial, which the model lets propagate.
After ``fit``, ``fit_info`` holds what the results store records (best epoch,
seconds per epoch, ...). Models that learn label embeddings (cgmvae, c2ae, lamp) also
have ``label_embeddings()``: an (L, d) float array after ``fit``, for the embedding report.
"""

from __future__ import annotations

import difflib
import inspect
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar

import numpy as np

from benchmark import discovery
from benchmark.errors import UnknownNameError

EpochCallback = Callable[[int, float], None]


class Model(ABC):
    """Base class for every model; see the module docstring."""

    name: ClassVar[str]
    family: ClassVar[str] = "other"
    uses_gpu: ClassVar[bool] = False
    trains_in_epochs: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    search_space: ClassVar[dict[str, Any]] = {}  # name -> optuna.distributions.*

    def __init__(self, seed: int = 0, device: str = "cpu", n_threads: int | None = None, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"model {self.name!r} has no hyperparameter(s) {unknown}; "
                f"known: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.seed = int(seed)
        self.device = device
        self.n_threads = n_threads
        self.fit_info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, X, Y: np.ndarray, X_val=None, Y_val=None, on_epoch: EpochCallback | None = None) -> "Model":
        """Train on ``X`` (dense or CSR, float32) and ``Y`` ((n, L) 0/1)."""

    @abstractmethod
    def predict_proba(self, X) -> np.ndarray:
        """Return an (n, L) float array of label scores in [0, 1]."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def available_models() -> dict[str, type[Model]]:
    """Every concrete ``Model`` subclass defined in the model folders, by name."""
    found: dict[str, type[Model]] = {}
    for module in discovery.import_all(discovery.MODELS_PACKAGE):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Model)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
                and getattr(cls, "name", None)
            ):
                if cls.name in found and found[cls.name] is not cls:
                    raise ValueError(f"two models are named {cls.name!r}: {found[cls.name]} and {cls}")
                found[cls.name] = cls
    return dict(sorted(found.items()))


def get_model(name: str) -> type[Model]:
    """Look a model up by name; an unknown name suggests close ones."""
    models = available_models()
    if name in models:
        return models[name]
    close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownNameError(f"unknown model {name!r}{hint}; known models: {', '.join(models)}")
