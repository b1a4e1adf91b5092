"""Shared helpers for models built on scikit-learn style estimators.

Three problems every classic baseline meets, solved once here:

- *Input checking*: X must be a float32 dense array or CSR matrix, Y an (n, L) 0/1
  array; anything else is a one-line :class:`ModelInputError`.
- *Single-class labels*: in a small training fraction a label may have no positive
  (or no negative) example. scikit-learn classifiers refuse to fit such a target, so
  :class:`LabelPartition` separates those labels out; the model fits the others and
  gives each constant label its training frequency (exactly 0.0 or 1.0) as score.
- *Sparse data*: a scaler that keeps CSR sparse (centring would densify it), and
  chunked helpers for the few places where a dense block is unavoidable, so memory
  stays bounded by ``chunk_rows x n_columns`` instead of the whole matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import scipy.sparse as sp
from sklearn.multioutput import ClassifierChain
from sklearn.preprocessing import StandardScaler

from benchmark.errors import BenchmarkError

#: rows per dense block; 4096 rows x 10,000 columns of float32 is 160 MB
DEFAULT_CHUNK_ROWS = 4096


class ModelInputError(BenchmarkError, ValueError):
    """X or Y passed to a model has the wrong type, shape or values."""


# ---------------------------------------------------------------------------
# input checking


def check_features(X, n_features: int | None = None):
    """Return X as float32 CSR (if sparse) or a float32 C-contiguous array.

    ``n_features`` (from training) is checked at prediction time.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32)
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ModelInputError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        X = np.ascontiguousarray(X, dtype=np.float32)
    if n_features is not None and X.shape[1] != n_features:
        raise ModelInputError(f"X has {X.shape[1]} features but the model was trained on {n_features}")
    values = X.data if sp.issparse(X) else X
    if not np.all(np.isfinite(values)):
        raise ModelInputError("X contains NaN or infinite values")
    return X


def check_labels(Y, n_samples: int) -> np.ndarray:
    """Return Y as a dense (n, L) uint8 0/1 array (a new array, never the caller's)."""
    if sp.issparse(Y):
        Y = Y.toarray()
    Y = np.array(Y, copy=True)
    if Y.ndim != 2:
        raise ModelInputError(f"Y must be 2-D (n_samples, n_labels), got shape {Y.shape}")
    if Y.shape[0] != n_samples:
        raise ModelInputError(f"X has {n_samples} rows but Y has {Y.shape[0]}")
    if Y.shape[1] == 0:
        raise ModelInputError("Y has no label columns")
    if not np.isin(Y, (0, 1)).all():
        raise ModelInputError("Y must contain only 0 and 1")
    return Y.astype(np.uint8)


def check_xy(X, Y):
    """Check a training pair; see :func:`check_features` and :func:`check_labels`."""
    X = check_features(X)
    if X.shape[0] == 0:
        raise ModelInputError("X has no rows")
    return X, check_labels(Y, X.shape[0])


# ---------------------------------------------------------------------------
# labels with a single class


@dataclass(frozen=True)
class LabelPartition:
    """Which labels can be learnt (both classes seen) and which are constant.

    ``varying``: indices of labels with positives and negatives in training;
    ``constant``: the others; ``constant_scores``: their training frequency (0.0 or 1.0).
    """

    n_labels: int
    varying: np.ndarray
    constant: np.ndarray
    constant_scores: np.ndarray

    @classmethod
    def of(cls, Y: np.ndarray) -> "LabelPartition":
        positives = Y.sum(axis=0)
        single = (positives == 0) | (positives == Y.shape[0])
        constant = np.flatnonzero(single)
        return cls(
            n_labels=Y.shape[1],
            varying=np.flatnonzero(~single),
            constant=constant,
            constant_scores=(positives[constant] / Y.shape[0]).astype(np.float64),
        )

    def assemble(self, varying_scores: np.ndarray | None, n_samples: int) -> np.ndarray:
        """Scatter the varying labels' scores and fill the constants: (n, L) float64."""
        scores = np.empty((n_samples, self.n_labels), dtype=np.float64)
        if self.varying.size:
            scores[:, self.varying] = varying_scores
        scores[:, self.constant] = self.constant_scores
        return scores


# ---------------------------------------------------------------------------
# scaling and chunking


def make_scaler(X) -> StandardScaler:
    """A StandardScaler suited to X: centred for dense data, scale-only for CSR.

    Centring a sparse matrix would make it dense, so CSR features are only divided
    by their standard deviation (which keeps zeros at zero). Fit on training data only.
    """
    return StandardScaler(with_mean=not sp.issparse(X))


def iter_row_chunks(n_rows: int, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[slice]:
    """Slices that cover ``range(n_rows)`` in blocks of at most ``chunk_rows``."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    for start in range(0, n_rows, chunk_rows):
        yield slice(start, min(start + chunk_rows, n_rows))


def to_dense(M, dtype=np.float64) -> np.ndarray:
    """Densify a sparse matrix/array (or pass an array through) as ``dtype``."""
    if sp.issparse(M):
        return M.toarray().astype(dtype, copy=False)
    return np.asarray(M, dtype=dtype)


def predict_in_chunks(
    predict: Callable[[object], object],
    X,
    n_outputs: int,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """Apply ``predict`` to row blocks of X and stack the densified results.

    Used where an estimator returns sparse or intermediate-heavy output (MLkNN builds
    a LIL matrix per call), so that peak memory is bounded by one block.
    """
    out = np.empty((X.shape[0], n_outputs), dtype=np.float64)
    for rows in iter_row_chunks(X.shape[0], chunk_rows):
        out[rows] = to_dense(predict(X[rows]))
    return out


# ---------------------------------------------------------------------------
# work sent to joblib worker processes
#
# These live in an importable package on purpose: a function defined in a file under
# models/ belongs to the ``mlcbench_models`` alias package, which a fresh loky worker
# cannot unpickle (it has not imported :mod:`benchmark`, which installs the alias).


def fit_estimator(estimator, X, y):
    """``estimator.fit(X, y)``, returning the fitted estimator (for joblib)."""
    return estimator.fit(X, y)


def fit_chain(estimator, order, chain_method: str, X, Y):
    """One scikit-learn ClassifierChain; training links see the true earlier labels."""
    return ClassifierChain(estimator, order=order, chain_method=chain_method).fit(X, Y)
