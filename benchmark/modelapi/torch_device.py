"""Torch on one device: device and thread settings, seeding, and the feature matrix kept on the device.

``DeviceFeatures`` keeps the whole feature matrix on the device, standardised with
statistics of the training rows only (the transform is part of the model) unless the
hyperparameter ``standardize`` is False. Dense input, or CSR input whose dense form fits
``DENSE_BUDGET_BYTES``, becomes one dense tensor; larger CSR stays as CSR arrays on the
device and each batch is densified there by an index gather (no host-to-device copy per
batch, no DataLoader).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from benchmark.errors import BenchmarkError
from benchmark.vocabulary import parse_device, resolve_gpus

#: Densify a CSR feature matrix on the device when n * F * 4 bytes stays under this.
DENSE_BUDGET_BYTES = 1 << 30


#: Rows per forward pass when predicting (evaluation has no gradients, so big batches are cheap).
EVAL_BATCH_SIZE = 8192


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
