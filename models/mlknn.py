"""ML-kNN (Zhang & Zhou, Pattern Recognition 2007), vectorised, with exact leave-one-out.

The model is scikit-multilearn-ng's ``skmultilearn.adapt.MLkNN`` (the maintained fork;
scikit-multilearn 0.2.0 fails on current scikit-learn): the same neighbour index
(scikit-learn ``NearestNeighbors`` at its defaults), the same smoothed priors and
conditional tables and the same posterior, computed with array operations instead
of the library's Python loops (its fit loops over samples x labels on DOK/LIL
matrices). Fit on delicious's 10,982 training rows, one thread: the library 112-129
CPU-s (254 on the machine of issue #21), this port under 1 CPU-s; bibtex 6.6 -> 0.23,
yeast 0.26-0.37 -> 0.017 (benchmarks/bench_mlknn.py, results/mlknn_vectorised.txt).

Fitting, for k neighbours, smoothing s, n training rows and labels l:

- prior ``P(l) = (s + #positives of l) / (2s + n)``;
- each training row's *count* for l is how many of its k training neighbours carry
  l: one sparse product (neighbour indicator (n, n) @ labels (n, L)), in row blocks;
- ``c[l, j]`` / ``cn[l, j]``: positive / negative rows of l whose count is j, by one
  ``np.bincount`` over ``l * (k + 1) + count``;
- ``P(j | l) = (s + c[l, j]) / (s (k + 1) + sum_j c[l, j])``, likewise for ``cn``.

Prediction is ``P(l) P(j|l) / (P(l) P(j|l) + P(not l) P(j|not l))`` with j the count
among a test row's k training neighbours. Every table and probability is computed
with the library's floating-point operations in the library's order, so they are
bit-identical to its output (tested with ``np.array_equal``).

Leave-one-out (hyperparameters ``exclude_self`` and ``loo``, not tuned):

- ``exclude_self=True, loo="exact"`` (the default): as in the paper, a training row is
  never one of its own neighbours. Its neighbours come from
  ``NearestNeighbors.kneighbors(X=None)``, which excludes each query point itself;
  ties at distance 0 with duplicated rows are other rows.
- ``exclude_self=True, loo="library"``: the library's ``ignore_first_neighbours=1``
  (k + 1 neighbours, the first one dropped), bit-identical to fitting skmultilearn
  with it. With duplicated rows the first neighbour is not always the row itself (the
  tie order is the search's), so such rows still count themselves: 1,673 of 10,982
  delicious training rows. Kept for comparison with results from the library.
- ``exclude_self=False``: the library's default (``ignore_first_neighbours=0``): every
  training row counts itself, which inflates the evidence for positives.

Test rows are never in the training set: prediction always uses k neighbours.

Also:

- *Copies in, never our arrays*: the fitted model keeps a private CSR copy of Y.
- *Single-class labels* get their training frequency as a constant score and are not
  fitted (the library's smoothing would give them a small nonzero score).
- *Dense or CSR X*: neighbour search accepts both, so sparse stays sparse. On CSR,
  scikit-learn computes distance rows in chunks of its ``working_memory`` (default
  1 GiB: +1.4 GiB peak on delicious); we set 64 MiB (+0.1 GiB, and no slower).
- ``k`` is capped at n_train - 1 (or n_train when ``exclude_self`` is off) for tiny
  training fractions; ``fit_info["k_used"]`` says what was used and
  ``fit_info["rows_counting_themselves"]`` how many training rows were counted among
  their own neighbours.
- ``estimator_`` (built on first access) is a skmultilearn ``MLkNN`` holding this
  model's fitted index and tables, for cross-checks with the library's own
  ``predict_proba``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from sklearn import config_context
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from benchmark.modelapi.base import CostUnits, Model
from benchmark.modelapi.sklearn_utils import (
    LabelPartition,
    ModelInputError,
    check_features,
    check_xy,
    make_scaler,
    predict_in_chunks,
)

LOO_MODES = ("exact", "library")
BLOCK_CELLS = 1 << 22  # rows x labels of one block of dense neighbour counts (32 MiB of int64)
# scikit-learn's working_memory for the neighbour search: on CSR input it computes distance
# rows in chunks of this size (default 1 GiB, which held the whole 10,982 x 10,982 float64
# matrix of delicious: +1.4 GiB peak). Chunks are query rows, so neighbours do not change.
SEARCH_WORKING_MEMORY_MIB = 64


class MLkNN(Model):
    """Multi-label k-nearest neighbours with Bayesian label posteriors.

    ``loo`` (not tuned): ``"exact"`` (default) never counts a training row among its own
    neighbours; ``"library"`` is skmultilearn's ``ignore_first_neighbours=1``, which
    drops the first neighbour and so still counts some duplicated rows themselves
    (bit-identical to the library). ``exclude_self=False`` counts every row itself
    (the library's default). See the module docstring.
    """

    name = "mlknn"
    revision = 2  # 2: exact leave-one-out by default (library counting gave duplicated rows themselves)
    family = "knn"
    learns_varying_labels = True
    row_exponent = 1.5  # a brute-force search (n^2) beside linear counting
    defaults: dict[str, Any] = {"k": 10, "s": 1.0, "standardize": False, "exclude_self": True, "loo": "exact"}
    search_space: dict[str, Any] = {
        "k": IntDistribution(3, 40),
        "s": FloatDistribution(0.1, 3.0, log=True),
        "standardize": CategoricalDistribution([False, True]),
    }

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        """The neighbour search (a distance per feature to every training row: the reference's
        row exponent carries its growth in rows) and the counts over k neighbours' labels."""
        k = int({**cls.defaults, **params}["k"])
        return CostUnits(float(max(n_features * density, 1) + k * max(n_labels, 1)))

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "MLkNN":
        start = time.perf_counter()
        mode = self._loo_mode()
        X, Y = check_xy(X, Y)  # check_labels returns a new array: the caller's Y is never shared
        self.n_features_ = X.shape[1]
        self.partition_ = LabelPartition.of(Y)
        self.scaler_ = make_scaler(X).fit(X) if self.params["standardize"] else None
        k = self._k_for(X.shape[0], mode != "none")
        self.k_ = k
        self.index_ = None
        self._library_model = None
        self_counted = 0
        if self.partition_.varying.size:
            labels = sp.csr_matrix(Y[:, self.partition_.varying], dtype=np.int32)
            X_fit = self._transform(X)
            with threadpool_limits(limits=self.n_threads or 1), _search_memory():
                index = NearestNeighbors(n_neighbors=k, n_jobs=self.n_threads).fit(X_fit)
                neighbours = training_neighbours(index, X_fit, k, mode)
            self_counted = int((neighbours == np.arange(X.shape[0])[:, None]).any(axis=1).sum())
            self._tables = posterior_tables(neighbours, labels, k, float(self.params["s"]))
            self._train_labels = labels
            self.index_ = index
        self.fit_info = {
            "fit_seconds": time.perf_counter() - start,
            "k_used": k,
            "loo": mode,
            "rows_counting_themselves": self_counted,
            "constant_labels": self.partition_.constant.tolist(),
        }
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = check_features(X, self.n_features_)
        varying = None
        if self.index_ is not None:
            with threadpool_limits(limits=self.n_threads or 1), _search_memory():
                varying = predict_in_chunks(
                    self._posterior, self._transform(X), self.partition_.varying.size, chunk_rows=1024
                )
        return np.clip(self.partition_.assemble(varying, X.shape[0]), 0.0, 1.0)

    def _posterior(self, X) -> np.ndarray:
        """The library's ``predict_proba`` for one block of rows, vectorised."""
        prior_true, prior_false, cond_true, cond_false = self._tables
        neighbours = self.index_.kneighbors(X, self.k_, return_distance=False)
        counts = neighbour_counts(neighbours, self._train_labels).toarray()  # per label: neighbours that have it
        labels = np.arange(counts.shape[1])
        p_true = prior_true * cond_true[labels, counts]
        p_false = prior_false * cond_false[labels, counts]
        return p_true / (p_true + p_false)

    @property
    def estimator_(self):
        """A skmultilearn ``MLkNN`` carrying this model's fitted index and tables (None before
        fit or when every label is constant); its ``predict_proba`` is the library's own loop."""
        if getattr(self, "index_", None) is None:
            return None
        if self._library_model is None:
            from skmultilearn.adapt import MLkNN as SkmlMLkNN

            prior_true, prior_false, cond_true, cond_false = self._tables
            library = SkmlMLkNN(k=self.k_, s=float(self.params["s"]), ignore_first_neighbours=0,
                                n_jobs=self.n_threads)
            library.knn_ = self.index_
            library._label_cache = self._train_labels.astype(np.int64).tolil()
            library._num_instances, library._num_labels = self._train_labels.shape
            library._prior_prob_true, library._prior_prob_false = prior_true.copy(), prior_false.copy()
            library._cond_prob_true = sp.lil_matrix(cond_true)
            library._cond_prob_false = sp.lil_matrix(cond_false)
            self._library_model = library
        return self._library_model

    def _transform(self, X):
        return X if self.scaler_ is None else self.scaler_.transform(X)

    def _loo_mode(self) -> str:
        """"exact", "library" or "none" (exclude_self off)."""
        loo = self.params["loo"]
        if loo not in LOO_MODES:
            raise ModelInputError(f"mlknn: loo must be one of {LOO_MODES}, got {loo!r}")
        return loo if self.params["exclude_self"] else "none"

    def _k_for(self, n_train: int, exclude_self: bool) -> int:
        k = int(self.params["k"])
        if k < 1:
            raise ModelInputError(f"mlknn: k must be >= 1, got {k}")
        limit = n_train - 1 if exclude_self else n_train
        if limit < 1:
            raise ModelInputError(f"mlknn needs at least 2 training rows, got {n_train}")
        return min(k, limit)


def _search_memory():
    return config_context(working_memory=SEARCH_WORKING_MEMORY_MIB)


def training_neighbours(index: NearestNeighbors, X, k: int, mode: str) -> np.ndarray:
    """(n, k) indices of each training row's neighbours under a leave-one-out ``mode``.

    ``"exact"``: ``kneighbors(X=None)``, which leaves each query row itself out (with more
    than k + 1 exact duplicates scikit-learn drops the first, which is then another row).
    ``"library"``: skmultilearn's ``ignore_first_neighbours=1``, k + 1 neighbours minus
    the first. ``"none"``: k neighbours, the row itself among them.
    """
    if mode == "exact":
        return index.kneighbors(None, k, return_distance=False)
    if mode == "library":
        return index.kneighbors(X, k + 1, return_distance=False)[:, 1:]
    if mode == "none":
        return index.kneighbors(X, k, return_distance=False)
    raise ValueError(f"unknown leave-one-out mode {mode!r}")


def neighbour_counts(neighbours: np.ndarray, labels: sp.csr_matrix) -> sp.csr_matrix:
    """(n, L) sparse: for each query row and label, how many of its neighbours carry it."""
    n, k = neighbours.shape
    chosen = sp.csr_matrix(
        (np.ones(n * k, dtype=np.int32), neighbours.ravel(), np.arange(0, n * k + 1, k)),
        shape=(n, labels.shape[0]),
    )
    return chosen @ labels


def posterior_tables(neighbours: np.ndarray, labels: sp.csr_matrix, k: int, s: float):
    """Priors (L,) and conditional tables (L, k + 1) as skmultilearn computes them.

    ``neighbours`` (n, k): each training row's neighbours; ``labels`` (n, L): 0/1 CSR.
    Returns ``(prior_true, prior_false, cond_true, cond_false)``, float64, bit-equal to
    the library's ``_prior_prob_*`` and ``_cond_prob_*`` (same operations, same order).
    """
    n, n_labels = labels.shape
    width = k + 1
    positives = np.asarray(labels.sum(axis=0, dtype=np.int64)).ravel()
    prior_true = (s + positives) / (s * 2 + n)
    prior_false = 1 - prior_true

    offsets = np.arange(n_labels, dtype=np.int64) * width
    cells = n_labels * width
    total = np.zeros(cells, dtype=np.int64)  # rows of label l with count j, at l * width + j
    true = np.zeros(cells, dtype=np.int64)   # the same, positive rows only
    block = max(1, BLOCK_CELLS // max(n_labels, 1))
    for start in range(0, n, block):
        stop = min(start + block, n)
        cell = neighbour_counts(neighbours[start:stop], labels).toarray() + offsets
        total += np.bincount(cell.ravel(), minlength=cells)
        rows = labels[start:stop]
        local_row = np.repeat(np.arange(stop - start), np.diff(rows.indptr))
        true += np.bincount(cell[local_row, rows.indices], minlength=cells)
    c = true.reshape(n_labels, width)
    cn = (total - true).reshape(n_labels, width)
    cond_true = (s + c) / (s * width + c.sum(axis=1, keepdims=True))
    cond_false = (s + cn) / (s * width + cn.sum(axis=1, keepdims=True))
    return prior_true, prior_false, cond_true, cond_false
