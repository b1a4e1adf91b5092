"""The epoch loop every torch model trains with (``train_epochs``).

Each epoch is one pass over index slices of a seeded ``torch.randperm``; the loss is
accumulated on the device (one host sync per epoch, not per batch); an optional scheduler
is stepped per epoch (or per step); with validation data the validation scores are
computed in large batches under ``torch.inference_mode()`` and passed to
``on_epoch(epoch, val_score)``, which may raise ``optuna.TrialPruned`` (propagated). The
kept epoch's weights are a device copy of the state dict, restored at the end. Epochs are
numbered from 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from benchmark.errors import BenchmarkError
from benchmark.modelapi.base import EpochCallback
from benchmark.modelapi.epoch_selection import (
    check_selection,
    selection_criterion,
    validation_loss,
    validation_score,
)
from benchmark.modelapi.torch_device import (
    DeviceFeatures,
    autocast,
    is_cuda,
    predict_in_batches,
)


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
