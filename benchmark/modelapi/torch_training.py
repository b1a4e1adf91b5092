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
- Data: ``DeviceFeatures`` keeps the whole feature matrix on the device, standardised with
  statistics of the training rows only (the transform is part of the model) unless the
  hyperparameter ``standardize`` is False. Dense input,
  or CSR input whose dense form fits ``DENSE_BUDGET_BYTES``, becomes one dense tensor;
  larger CSR stays as CSR arrays on the device and each batch is densified there by an
  index gather (no host-to-device copy per batch, no DataLoader).
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
val_scores, train_loss (mean batch loss per epoch), device, dense_features.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.evaluation.thresholds import best_over_grid
from benchmark.modelapi.base import EpochCallback, Model
from benchmark.vocabulary import parse_device, resolve_gpus

#: Densify a CSR feature matrix on the device when n * F * 4 bytes stays under this.
DENSE_BUDGET_BYTES = 1 << 30
#: Rows per forward pass when predicting (evaluation has no gradients, so big batches are cheap).
EVAL_BATCH_SIZE = 8192

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

#: Epoch-selection rules (hyperparameter ``epoch_selection``); each keeps the weights of the
#: epoch with the best criterion among epochs >= ``min_epochs`` (ties: the earliest):
#:
#: - ``reference``: validation macro-F1 of that epoch (best over the nine-point oracle grid),
#:   the rule of the C-GMVAE/MPVAE reference code. On small validation sets (59-225 rows) a
#:   single noisy epoch can win, even epoch 1.
#: - ``smoothed``: mean validation macro-F1 of the ``selection_window`` epochs ending at that
#:   epoch (only epochs with a full window are eligible), so one lucky epoch cannot win.
#: - ``val_loss``: lowest validation binary cross-entropy of the predicted probabilities;
#:   rewards calibration, which the fixed 0.5 threshold depends on.
#: - ``last``: the last epoch (no selection).
EPOCH_SELECTION_RULES: tuple[str, ...] = ("reference", "smoothed", "val_loss", "last")


# --------------------------------------------------------------------------- devices, threads, seeds


def resolve_device(device: str | None = "auto") -> str:
    """A concrete torch device for a device setting: "auto" (or None) picks "cuda" when a
    GPU is available, else "cpu"; an explicit CUDA request this machine cannot serve is a
    BenchmarkError, so a fit never silently falls back to the CPU."""
    name = parse_device(device)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    resolve_gpus(name, lambda: torch.cuda.device_count() if torch.cuda.is_available() else 0)  # raises if unserved
    return name


def set_threads(n_threads: int | None) -> None:
    """Cap torch's intra-op CPU threads (None leaves torch's default untouched)."""
    if n_threads is None:
        return
    n = int(n_threads)
    if n < 1:
        raise BenchmarkError(f"n_threads must be >= 1, got {n_threads!r}")
    torch.set_num_threads(n)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's global RNG (CPU and all CUDA devices) and return a numpy Generator."""
    torch.manual_seed(int(seed))
    return np.random.default_rng(int(seed))


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def autocast(device: str, enabled: bool):
    """bf16 autocast on CUDA when enabled; a no-op context elsewhere."""
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=bool(enabled) and is_cuda(device))


# --------------------------------------------------------------------------- data on the device


@dataclass
class Standardizer:
    """Per-feature (x - mean) / std with statistics from training rows only.

    Works for dense and CSR input without densifying the whole matrix on the host;
    constant features get std 1 so they map to 0.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X) -> "Standardizer":
        if sp.issparse(X):
            X = X.tocsr()
            mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
            mean_sq = np.asarray(X.multiply(X).mean(axis=0), dtype=np.float64).ravel()
            var = np.maximum(mean_sq - mean**2, 0.0)
        else:
            X64 = np.asarray(X, dtype=np.float64)
            mean = X64.mean(axis=0)
            var = X64.var(axis=0)
        std = np.sqrt(var)
        std[~(std > 1e-8)] = 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    @classmethod
    def identity(cls, n_features: int) -> "Standardizer":
        return cls(np.zeros(n_features, np.float32), np.ones(n_features, np.float32))


class DeviceFeatures:
    """A feature matrix living on the device; ``rows(idx)`` returns a dense standardised batch.

    Dense storage: one (n, F) float32 tensor, standardised once. Sparse storage (CSR too
    large to densify): crow/col/value tensors on the device; a batch is densified on the
    device with a vectorised gather-scatter and standardised there.
    """

    def __init__(self, X, device: str, standardizer: Standardizer | None = None,
                 dense_budget_bytes: int = DENSE_BUDGET_BYTES):
        self.device = device
        self.n_rows, self.n_features = X.shape
        std = standardizer or Standardizer.identity(self.n_features)
        self._mean = torch.as_tensor(std.mean, device=device)
        self._inv_std = torch.as_tensor(1.0 / std.std, device=device)
        dense_bytes = self.n_rows * self.n_features * 4
        self.is_dense = (not sp.issparse(X)) or dense_bytes <= dense_budget_bytes
        if self.is_dense:
            self._dense = self._to_dense_tensor(X)
        else:
            csr = _canonical_csr(X)
            self._crow = torch.as_tensor(csr.indptr.astype(np.int64), device=device)
            self._col = torch.as_tensor(csr.indices.astype(np.int64), device=device)
            self._val = torch.as_tensor(csr.data.astype(np.float32), device=device)

    def _to_dense_tensor(self, X) -> torch.Tensor:
        if sp.issparse(X):
            coo = _canonical_csr(X).tocoo()  # scatter the nonzeros into a dense tensor on the device
            t = torch.zeros(X.shape, dtype=torch.float32, device=self.device)
            rows = torch.as_tensor(coo.row.astype(np.int64), device=self.device)
            cols = torch.as_tensor(coo.col.astype(np.int64), device=self.device)
            t[rows, cols] = torch.as_tensor(coo.data.astype(np.float32), device=self.device)
        else:
            t = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=self.device)
        return (t - self._mean) * self._inv_std

    def __len__(self) -> int:
        return self.n_rows

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Dense standardised rows ``idx`` (a long tensor on the device)."""
        if self.is_dense:
            return self._dense.index_select(0, idx)
        return (self._densify_rows(idx) - self._mean) * self._inv_std

    def slice(self, start: int, stop: int) -> torch.Tensor:
        """Dense standardised rows start:stop (contiguous; used for evaluation)."""
        if self.is_dense:
            return self._dense[start:stop]
        return self.rows(torch.arange(start, stop, device=self.device))

    def _densify_rows(self, idx: torch.Tensor) -> torch.Tensor:
        starts = self._crow.index_select(0, idx)
        lengths = self._crow.index_select(0, idx + 1) - starts
        out = torch.zeros(idx.numel(), self.n_features, device=self.device)
        total = int(lengths.sum())
        if total == 0:
            return out
        row_of_entry = torch.repeat_interleave(torch.arange(idx.numel(), device=self.device), lengths,
                                               output_size=total)
        # position of each entry inside its row, plus that row's start in the CSR arrays
        first_entry = torch.cumsum(lengths, 0) - lengths
        within_row = torch.arange(total, device=self.device) - first_entry.repeat_interleave(lengths, output_size=total)
        source = starts.repeat_interleave(lengths, output_size=total) + within_row
        out[row_of_entry, self._col.index_select(0, source)] = self._val.index_select(0, source)
        return out


def _canonical_csr(X) -> sp.csr_matrix:
    """CSR without duplicate entries (summed), never modifying the caller's matrix."""
    csr = X.tocsr()
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return csr


def labels_to_device(Y, device: str) -> torch.Tensor:
    """(n, L) 0/1 labels (dense or sparse) as a float32 tensor on the device."""
    if sp.issparse(Y):
        Y = Y.toarray()
    return torch.as_tensor(np.asarray(Y, dtype=np.float32), device=device)


@torch.inference_mode()
def predict_in_batches(score_fn: Callable[[torch.Tensor], torch.Tensor], features: DeviceFeatures,
                       batch_size: int = EVAL_BATCH_SIZE, amp: bool = False) -> np.ndarray:
    """Apply ``score_fn`` (dense batch -> (B, L) scores) over all rows; return float32 numpy.

    The caller puts its network in eval mode; this runs under inference_mode in large
    contiguous batches and copies the result to the host once.
    """
    parts = []
    for start in range(0, len(features), batch_size):
        x = features.slice(start, min(start + batch_size, len(features)))
        with autocast(features.device, amp):
            parts.append(score_fn(x).float())
    if not parts:
        raise BenchmarkError("cannot predict on an empty feature matrix")
    return torch.cat(parts).cpu().numpy()


# --------------------------------------------------------------------------- validation score


def validation_score(Y_val: np.ndarray, scores: np.ndarray, grid=None) -> float:
    """Best validation macro-F1 over ``grid`` (default: the nine-point oracle grid): the epoch-selection score.

    The runner passes the suite's val grid, the grid its tuning objective uses, so that
    epoch selection and tuning judge a model on the same thresholds (the reference
    protocol passes the nine-point grid of the authors' code).
    """
    if grid is None:
        return float(best_over_grid(Y_val, scores, "maF1")[0])
    return float(best_over_grid(Y_val, scores, "maF1", grid)[0])


def validation_loss(Y_val: np.ndarray, scores: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities ``scores`` (clipped to [eps, 1 - eps])."""
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(Y_val, dtype=np.float64)
    return float(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)).mean())


def check_selection(rule: str, window: int, min_epochs: int) -> None:
    """Fail early (before training) on an unknown rule or a window / minimum below 1."""
    if rule not in EPOCH_SELECTION_RULES:
        raise BenchmarkError(f"unknown epoch_selection {rule!r}; choose from {', '.join(EPOCH_SELECTION_RULES)}")
    if int(window) < 1 or int(min_epochs) < 1:
        raise BenchmarkError(f"selection_window and min_epochs must be >= 1, got {window!r} and {min_epochs!r}")


def selection_criterion(val_scores, val_losses, rule: str, window: int = 5, min_epochs: int = 1,
                        n_epochs: int | None = None) -> float:
    """The criterion (higher is better) of the latest epoch of the histories so far.

    ``-inf`` marks an ineligible epoch. ``window`` and ``min_epochs`` are capped at
    ``n_epochs`` (the planned total) so a short run still keeps some epoch. Used online by
    ``train_epochs`` and offline by ``select_epoch``, so both agree exactly.
    """
    epoch = len(val_scores)
    total = epoch if n_epochs is None else int(n_epochs)
    if epoch < min(int(min_epochs), total):
        return -np.inf
    if rule == "reference":
        return float(val_scores[-1])
    if rule == "smoothed":
        w = min(int(window), total)
        return float(np.mean(val_scores[-w:])) if epoch >= w else -np.inf
    if rule == "val_loss":
        return -float(val_losses[-1])
    if rule == "last":
        return float(epoch)
    raise BenchmarkError(f"unknown epoch_selection {rule!r}; choose from {', '.join(EPOCH_SELECTION_RULES)}")


def select_epoch(val_scores, val_losses, rule: str, window: int = 5, min_epochs: int = 1) -> int:
    """The epoch (from 1) that ``rule`` keeps, from complete per-epoch histories.

    Offline twin of the online choice in ``train_epochs`` (benchmarks evaluate every rule
    from one training run's curves).
    """
    check_selection(rule, window, min_epochs)
    n = len(val_scores)
    best, best_epoch = -np.inf, n
    for e in range(1, n + 1):
        c = selection_criterion(val_scores[:e], val_losses[:e], rule, window, min_epochs, n_epochs=n)
        if c > best:
            best, best_epoch = c, e
    return best_epoch


# --------------------------------------------------------------------------- the epoch loop


@dataclass
class TrainingRun:
    """What one call of ``train_epochs`` needs; all tensors already live on ``device``."""

    net: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, y) -> scalar loss
    optimizer: torch.optim.Optimizer
    features: DeviceFeatures
    labels: torch.Tensor
    epochs: int
    batch_size: int
    seed: int
    scheduler: Any = None
    scheduler_interval: str = "epoch"  # or "step"
    drop_last: bool = False
    amp: bool = False
    # validation (optional): score_fn maps a dense batch to (B, L) probabilities
    val_features: DeviceFeatures | None = None
    Y_val: np.ndarray | None = None
    score_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    on_epoch: EpochCallback | None = None
    # epoch selection (see EPOCH_SELECTION_RULES)
    epoch_selection: str = "reference"
    selection_window: int = 5
    min_epochs: int = 1
    selection_grid: tuple[float, ...] | None = None  # thresholds of the epoch-selection score
    info: dict = field(default_factory=dict)


class TrainingDiverged(BenchmarkError):
    """The training loss became NaN or infinite; the fit is useless, so it fails loudly."""


def _sync(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def _train_one_epoch(run: TrainingRun, generator: torch.Generator) -> torch.Tensor:
    """One pass over a seeded permutation; returns the mean batch loss as a device tensor."""
    device = run.features.device
    n = len(run.features)
    order = torch.randperm(n, generator=generator, device=device)
    stop = n - n % run.batch_size if (run.drop_last and n >= run.batch_size) else n
    loss_sum = torch.zeros((), device=device)
    n_batches = 0
    run.net.train()
    for start in range(0, stop, run.batch_size):
        idx = order[start:start + run.batch_size]
        x = run.features.rows(idx)
        y = run.labels.index_select(0, idx)
        with autocast(device, run.amp):
            loss = run.loss_fn(x, y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if run.scheduler is not None and run.scheduler_interval == "step":
            run.scheduler.step()
        loss_sum += loss.detach().float()
        n_batches += 1
    return loss_sum / max(n_batches, 1)


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def train_epochs(run: TrainingRun) -> dict:
    """Train ``run.net`` for ``run.epochs`` epochs with best-epoch selection; returns fit_info.

    See the module docstring for the exact protocol. ``optuna.TrialPruned`` (or any
    exception) raised by ``on_epoch`` propagates; ``run.info`` then holds the epochs so far.
    """
    device = run.features.device
    if run.epochs < 1:
        raise BenchmarkError(f"epochs must be >= 1, got {run.epochs}")
    if run.batch_size < 1:
        raise BenchmarkError(f"batch_size must be >= 1, got {run.batch_size}")
    check_selection(run.epoch_selection, run.selection_window, run.min_epochs)
    has_val = run.val_features is not None and run.Y_val is not None
    generator = torch.Generator(device=device)
    generator.manual_seed(int(run.seed) + 7919)  # distinct stream from the init seed

    info = run.info
    info.update(epoch_seconds=[], train_seconds_per_epoch=[], epoch_cpu_seconds=[], val_scores=[], val_losses=[],
                train_loss=[], n_epochs=0, best_epoch=None, device=device, dense_features=run.features.is_dense,
                epoch_selection=run.epoch_selection)
    best_score, best_state = -np.inf, None
    losses = []
    for epoch in range(1, run.epochs + 1):
        t0, cpu0 = time.perf_counter(), time.process_time()
        epoch_loss = _train_one_epoch(run, generator)
        losses.append(epoch_loss)
        if not bool(torch.isfinite(epoch_loss)):  # one host sync per epoch
            info["train_loss"] = [float(v) for v in torch.stack(losses).cpu()]
            raise TrainingDiverged(f"training loss is not finite at epoch {epoch} (try a lower learning rate)")
        if run.scheduler is not None and run.scheduler_interval == "epoch":
            run.scheduler.step()
        _sync(device)
        t_train = time.perf_counter() - t0
        info["n_epochs"] = epoch
        if has_val:
            run.net.eval()
            scores = predict_in_batches(run.score_fn, run.val_features, amp=run.amp)
            info["val_scores"].append(validation_score(run.Y_val, scores, run.selection_grid))
            info["val_losses"].append(validation_loss(run.Y_val, scores))
            criterion = selection_criterion(info["val_scores"], info["val_losses"], run.epoch_selection,
                                            run.selection_window, run.min_epochs, run.epochs)
            if criterion > best_score:
                best_score, best_state = criterion, _snapshot(run.net)
                info["best_epoch"] = epoch
        info["train_seconds_per_epoch"].append(t_train)
        info["epoch_seconds"].append(time.perf_counter() - t0)
        info["epoch_cpu_seconds"].append(time.process_time() - cpu0)
        if has_val and run.on_epoch is not None:
            run.on_epoch(epoch, info["val_scores"][-1])
    info["train_loss"] = [float(v) for v in torch.stack(losses).cpu()]
    if best_state is not None:
        run.net.load_state_dict(best_state)
        info["best_val_score"] = float(info["val_scores"][info["best_epoch"] - 1])
        info["best_criterion"] = float(best_score)
    else:
        info["best_epoch"] = run.epochs
    run.net.eval()
    return info


# --------------------------------------------------------------------------- the model base class


def adam(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """torch.optim.Adam, fused (one kernel for all parameters) where this torch supports it.

    Fused and foreach Adam compute the same update; fused saves ~10% of a C-GMVAE step on
    the CPU by touching each parameter once.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class MaskDropout(nn.Module):
    """Inverted dropout from a uniform mask, ``x * (U >= p) / (1 - p)``.

    Same distribution as ``nn.Dropout``; on the CPU ``bernoulli_`` (behind nn.Dropout)
    costs ~5x more than ``rand_like`` and a comparison (a quarter of a C-GMVAE step
    at L = 983, whose label encoder runs on all L labels every step).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


def mlp_layers(sizes: list[int], dropout: float, dropout_layer: type[nn.Module] = nn.Dropout) -> list[nn.Module]:
    """Linear -> ReLU -> Dropout for each consecutive pair of ``sizes`` (an "MLP a->b->c")."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(), dropout_layer(dropout)]
    return layers


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
