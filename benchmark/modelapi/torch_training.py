"""Shared PyTorch training machinery for the epoch-trained models (mlp, cgmvae, mpvae).

A torch model file only declares its network, its loss and its hyperparameters::

    class MyNet(TorchModel):
        name = "mynet"
        defaults = {**TORCH_DEFAULTS, "hidden": 256}     # epochs, batch_size, lr, weight_decay, amp
        search_space = {...}

        def build_network(self, n_features, n_labels):   # -> nn.Module (built after seeding)
            ...
        def training_loss(self, net, x, y):             # -> scalar tensor, x/y float on device
            ...
        def predict_scores(self, net, x):               # -> (B, L) probabilities (eval mode);
            ...                                         #    default: sigmoid(net(x))
        # optional: make_optimizer(net), make_scheduler(optimizer, steps_per_epoch)

``TorchModel.fit`` then does the rest, identically for every model:

- Device: ``resolve_device(self.device)`` ("auto" picks CUDA when available; asking for
  CUDA that is not there is a ``BenchmarkError``). ``set_threads(self.n_threads)`` caps
  ``torch.set_num_threads`` so parallel workers do not oversubscribe the CPU.
- Seeding: ``seed_everything(seed)`` seeds torch (network init, dropout, reparameterisation
  noise) and returns a numpy Generator; the per-epoch batch order comes from a separate
  ``torch.Generator`` on the device seeded from the model seed. Same seed on the CPU ->
  identical scores.
- Data: ``DeviceFeatures`` keeps the features on the device (:mod:`torch_device`).
- Epoch loop (``train_epochs``): each epoch is one pass over index slices of a seeded
  ``torch.randperm``; the loss is accumulated on the device (one host sync per epoch, not per
  batch); an optional scheduler is stepped per epoch (or per step); with validation data the
  validation scores are computed in large batches under ``torch.inference_mode()`` and
  ``val_score = best_over_grid(Y_val, scores, "maF1")[0]`` (best macro-F1 over the nine-point
  oracle grid 0.1..0.9, as the reference code) is passed to ``on_epoch(epoch, val_score)``,
  which may raise ``optuna.TrialPruned`` (propagated); the validation cross-entropy is
  recorded too. The kept epoch follows the hyperparameter ``epoch_selection`` (see
  ``EPOCH_SELECTION_RULES``; ``"reference"`` is the authors' best-macro-F1 epoch; the
  default ``"smoothed"`` keeps the end of the best ``selection_window``-epoch (10) stretch
  of validation macro-F1, measured in ``benchmarks/bench_epoch_selection.py``), never
  before ``min_epochs``. Its weights are
  kept as a device copy of the state dict and restored at the end. Without validation data
  all epochs are trained and the last weights kept.
- Mixed precision: hyperparameter ``amp`` (default False) runs forward passes under
  ``torch.autocast("cuda", dtype=torch.bfloat16)``. It only has an effect on CUDA devices
  (ignored on the CPU) and is off by default because bf16 changes scores slightly.

Epochs are numbered from 1: ``on_epoch(1, ...)`` follows the first pass over the data.
``fit_info`` after ``fit``: fit_seconds, best_epoch, n_epochs, epoch_seconds (train +
validation, per epoch), train_seconds_per_epoch, epoch_cpu_seconds (process CPU time per
epoch, all threads: less sensitive than wall time to other processes on shared cores),
val_scores, train_loss (mean batch loss per epoch), device, dense_features."""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.modelapi.base import CostUnits, EpochCallback, Model
from benchmark.modelapi.epoch_selection import (
    check_selection,
)
from benchmark.modelapi.torch_device import (
    DeviceFeatures,
    Standardizer,
    labels_to_device,
    predict_in_batches,
    resolve_device,
    seed_everything,
    set_threads,
)
from benchmark.modelapi.torch_layers import adam
from benchmark.modelapi.torch_loop import TrainingRun, train_epochs

#: Hyperparameters every TorchModel has; model files extend this dict.
TORCH_DEFAULTS: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 128,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "amp": False,  # bf16 autocast on CUDA only; see module docstring
    # Feature standardisation with training statistics (part of the model; see Standardizer).
    # On by default: raw MULAN features mix scales; without it mpvae diverges at epoch 1 on
    # emotions and cgmvae's test ebF1 there drops from ~0.65 to ~0.5 (80 epochs; yeast prefers
    # raw features by ~0.02). The reference code does not standardise: set False to replicate it.
    "standardize": True,
    # Which epoch's weights are kept; see EPOCH_SELECTION_RULES and select_epoch. In
    # benchmarks/results/epoch_selection.txt (cgmvae, mpvae, mlp on emotions, yeast, scene,
    # 5 seeds, 80 epochs) "smoothed" over 10 epochs had the best mean val-protocol scores and
    # the smallest seed spread for cgmvae and mlp; "val_loss" steadies fixed-threshold scores
    # but keeps early epochs and costs macro-F1; "reference" is the authors' rule.
    "epoch_selection": "smoothed",
    "selection_window": 10,
    "min_epochs": 1,
}


#: an optimiser step's fixed work per parameter tensor, in parameters (order of magnitude:
#: a few microseconds of launch and Python overhead against ~1 ns per parameter)
STEP_OVERHEAD_PER_TENSOR = 2000


#: elementwise work per activation of a row (bias, activation function, dropout, their
#: gradients), in weights: mlp on yeast, 1 thread, 96k-2.2M weights, spent 9e-5 us per
#: weight and ~5 us per row beside (benchmarks/results/cost_formula.txt)
ACTIVATION_WORK = 100

_NETWORK_SIZES: dict[tuple, list[tuple[int, int]]] = {}


def network_sizes(cls: type, n_features: int, n_labels: int, params: dict[str, Any]) -> list[tuple[int, int]]:
    """(elements, dimensions) of each parameter tensor of ``cls``'s network for this shape
    (built on the CPU, not trained; memoised: a dry run asks for every space draw)."""
    key = (cls, int(n_features), int(n_labels), repr(sorted(params.items())))
    if key not in _NETWORK_SIZES:
        model = cls(**{k: v for k, v in params.items() if k in cls.defaults})
        with torch.device("cpu"):
            net = model.build_network(int(n_features), int(n_labels))
        _NETWORK_SIZES[key] = [(int(p.numel()), int(p.dim())) for p in net.parameters()]
    return _NETWORK_SIZES[key]


class TorchModel(Model):
    """Base class for PyTorch models trained by ``train_epochs``; see the module docstring.

    Subclasses define ``build_network`` and ``training_loss`` (and usually
    ``predict_scores``); the hyperparameters ``epochs``, ``batch_size``, ``lr``,
    ``weight_decay`` and ``amp`` must be in ``defaults`` (start from ``TORCH_DEFAULTS``).
    Set the hyperparameter ``standardize`` to False (in ``defaults`` or a suite's params) to
    feed raw features; ``epoch_selection``, ``selection_window`` and ``min_epochs`` choose
    the kept epoch.
    """

    trains_in_epochs = True
    uses_gpu = True
    #: thresholds of the epoch-selection score; the runner sets the suite's val grid (None: nine points)
    selection_grid: tuple[float, ...] | None = None
    drop_last: bool = False

    # ---- what a model file declares
    def build_network(self, n_features: int, n_labels: int) -> nn.Module:
        raise NotImplementedError

    def training_loss(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict_scores(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """(B, L) probabilities for a dense standardised batch, net in eval mode."""
        return torch.sigmoid(net(x))

    def make_optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        return adam(net.parameters(), lr=float(self.params["lr"]), weight_decay=float(self.params["weight_decay"]))

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
        """Return (scheduler, "epoch" | "step") or None for a constant learning rate."""
        return None

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        """The network's parameters: a row's forward and backward pass is a few multiply-adds
        per weight and ``ACTIVATION_WORK`` elementwise operations per activation (a bias or
        norm element: one per unit of a layer), and an optimiser step touches each parameter
        once more plus a fixed overhead per tensor (Python, kernel launches). Batches are
        dense: ``density`` does not count."""
        sizes = network_sizes(cls, n_features, n_labels, params)
        weights = float(sum(n for n, ndim in sizes if ndim > 1))
        units = float(sum(n for n, ndim in sizes if ndim <= 1))
        return CostUnits(row=weights + ACTIVATION_WORK * units,
                         step=weights + units + STEP_OVERHEAD_PER_TENSOR * len(sizes))

    # ---- shared machinery
    def _features(self, X) -> DeviceFeatures:
        return DeviceFeatures(X, self.device_, self.standardizer_)

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch: EpochCallback | None = None) -> "TorchModel":
        t_start = time.perf_counter()
        _check_shapes(X, Y, "training")
        if (X_val is None) != (Y_val is None):
            raise BenchmarkError("give both X_val and Y_val, or neither")
        if X_val is not None:
            _check_shapes(X_val, Y_val, "validation")
            if X_val.shape[1] != X.shape[1] or Y_val.shape[1] != Y.shape[1]:
                raise BenchmarkError("validation data has different feature or label dimensions from training data")
        set_threads(self.n_threads)
        self.device_ = resolve_device(self.device)
        p = {**TORCH_DEFAULTS, **self.params}  # a model's defaults may predate a TORCH_DEFAULTS key
        check_selection(str(p["epoch_selection"]), int(p["selection_window"]), int(p["min_epochs"]))
        standardize = _as_bool(p["standardize"], "standardize")
        self.standardizer_ = Standardizer.fit(X) if standardize else Standardizer.identity(X.shape[1])
        self.n_labels_ = Y.shape[1]
        seed_everything(self.seed)
        self.net_ = self.build_network(X.shape[1], Y.shape[1]).to(self.device_)
        optimizer = self.make_optimizer(self.net_)
        batch_size = int(self.params["batch_size"])
        steps = max(1, X.shape[0] // batch_size if self.drop_last else -(-X.shape[0] // batch_size))
        sched = self.make_scheduler(optimizer, steps)
        scheduler, interval = sched if sched is not None else (None, "epoch")
        has_val = X_val is not None
        self.fit_info = {}
        run = TrainingRun(
            net=self.net_, loss_fn=lambda x, y: self.training_loss(self.net_, x, y),
            optimizer=optimizer, features=self._features(X), labels=labels_to_device(Y, self.device_),
            epochs=int(self.params["epochs"]), batch_size=batch_size, seed=self.seed,
            scheduler=scheduler, scheduler_interval=interval, drop_last=self.drop_last,
            amp=bool(self.params.get("amp", False)),
            val_features=self._features(X_val) if has_val else None,
            Y_val=np.asarray(Y_val.toarray() if sp.issparse(Y_val) else Y_val) if has_val else None,
            score_fn=lambda x: self.predict_scores(self.net_, x), on_epoch=on_epoch, info=self.fit_info,
            epoch_selection=str(p["epoch_selection"]), selection_window=int(p["selection_window"]),
            min_epochs=int(p["min_epochs"]), selection_grid=self.selection_grid,
        )
        try:
            train_epochs(run)
        finally:
            self.fit_info["fit_seconds"] = time.perf_counter() - t_start
        return self

    def predict_proba(self, X) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise BenchmarkError(f"model {self.name!r} must be fitted before predict_proba")
        if X.shape[1] != len(self.standardizer_.mean):
            raise BenchmarkError(f"expected {len(self.standardizer_.mean)} features, got {X.shape[1]}")
        self.net_.eval()
        features = self._features(X)
        return predict_in_batches(lambda x: self.predict_scores(self.net_, x), features,
                                  amp=bool(self.params.get("amp", False)))

    def __getstate__(self):  # picklable for process executors: move weights to the CPU
        state = copy.copy(self.__dict__)
        if "net_" in state:
            state["net_"] = copy.deepcopy(self.net_).cpu()
            state["device_"] = "cpu"
        return state


def _as_bool(value, name: str) -> bool:
    """A boolean hyperparameter; suites may write true/false or 1/0, never a typo like "no"."""
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return bool(value)
    raise BenchmarkError(f"{name} must be true or false, got {value!r}")


def _check_shapes(X, Y, what: str) -> None:
    if X is None or Y is None:
        raise BenchmarkError(f"{what} data is missing")
    if X.shape[0] != Y.shape[0]:
        raise BenchmarkError(f"{what} X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    if X.shape[0] == 0:
        raise BenchmarkError(f"{what} data has no rows")
    values = X.data if sp.issparse(X) else np.asarray(X)
    if not np.isfinite(values).all():
        raise BenchmarkError(f"{what} features contain NaN or infinite values")
