"""Which epoch's weights a model keeps, from its validation curves (numpy only).

``validation_score`` is the score every model that reports steps passes to ``on_epoch``:
best macro-F1 over the oracle grid 0.1..0.9, as the reference code. The kept epoch follows
the hyperparameter ``epoch_selection`` (``EPOCH_SELECTION_RULES``; ``"reference"`` is the
authors' best-macro-F1 epoch; the default ``"smoothed"`` keeps the end of the best
``selection_window``-epoch stretch of validation macro-F1, measured in
``benchmarks/bench_epoch_selection.py``), never before ``min_epochs``.
"""

from __future__ import annotations

import numpy as np

from benchmark.errors import BenchmarkError
from benchmark.evaluation.thresholds import best_over_grid

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
