"""ML-kNN (Zhang & Zhou, Pattern Recognition 2007) from scikit-multilearn-ng.

We wrap ``skmultilearn.adapt.MLkNN`` (the maintained fork; scikit-multilearn
0.2.0 fails on current scikit-learn) and add what the harness needs:

- *Copies in, never our arrays*: MLkNN keeps references to the label matrix it
  is given and has been known to modify it in place, so it only ever sees a
  private copy of Y (a test checks the caller's Y is unchanged).
- *Leave-one-out training statistics*, as in the paper: when counting how many
  of a training point's k neighbours carry a label, the point itself is not one
  of its neighbours. skmultilearn's default (``ignore_first_neighbours=0``)
  counts it, which inflates the "label present among neighbours" evidence for
  positives and biases the posterior; its ``ignore_first_neighbours=1`` would
  also drop a real neighbour of every *test* point. We fit with 1 and predict
  with 0. ``exclude_self=False`` restores the library's behaviour.
- *Single-class labels* get their training frequency as a constant score and are
  not passed to MLkNN (whose smoothing would give them a small nonzero score).
- *Dense or CSR X*: neighbour search accepts both, so sparse stays sparse.
- *Fast prediction from the library's fitted model*: its ``predict_proba`` loops in
  Python over samples x labels and fills a LIL matrix (bibtex test set: ~20 s). We
  take its fitted neighbour index, priors and conditional tables and evaluate the
  same posterior ``P(1)·P(count|1) / (P(1)·P(count|1) + P(0)·P(count|0))`` with
  array operations, in row blocks (bit-identical to the library's output; tested).
  Fitting is the library's own code (its Python loop is the cost: bibtex ~50 s).
- ``k`` is capped at n_train - 1 (or n_train when ``exclude_self`` is off) for tiny
  training fractions; ``fit_info["k_used"]`` says what was used.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from threadpoolctl import threadpool_limits

from benchmark.modelapi.base import Model
from benchmark.modelapi.sklearn_utils import (
    LabelPartition,
    ModelInputError,
    check_features,
    check_xy,
    make_scaler,
    predict_in_chunks,
)


class MLkNN(Model):
    """Multi-label k-nearest neighbours with Bayesian label posteriors."""

    name = "mlknn"
    family = "knn"
    defaults: dict[str, Any] = {"k": 10, "s": 1.0, "standardize": False, "exclude_self": True}
    search_space: dict[str, Any] = {
        "k": IntDistribution(3, 40),
        "s": FloatDistribution(0.1, 3.0, log=True),
        "standardize": CategoricalDistribution([False, True]),
    }

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "MLkNN":
        from skmultilearn.adapt import MLkNN as SkmlMLkNN

        start = time.perf_counter()
        X, Y = check_xy(X, Y)  # check_labels returns a new array: the caller's Y is never shared
        self.n_features_ = X.shape[1]
        self.partition_ = LabelPartition.of(Y)
        self.scaler_ = make_scaler(X).fit(X) if self.params["standardize"] else None
        exclude_self = bool(self.params["exclude_self"])
        k = self._k_for(X.shape[0], exclude_self)
        self.estimator_ = None
        if self.partition_.varying.size:
            estimator = SkmlMLkNN(
                k=k,
                s=float(self.params["s"]),
                ignore_first_neighbours=int(exclude_self),
                n_jobs=self.n_threads,
            )
            Y_fit = np.array(Y[:, self.partition_.varying], dtype=np.int64, copy=True)
            with threadpool_limits(limits=self.n_threads or 1):
                estimator.fit(self._transform(X), Y_fit)
            estimator.ignore_first_neighbours = 0  # test points are not in the training set
            self.estimator_ = estimator
            self._tables = _posterior_tables(estimator)
            self._train_labels = sp.csr_matrix(Y[:, self.partition_.varying], dtype=np.int32)
        self.fit_info = {
            "fit_seconds": time.perf_counter() - start,
            "k_used": k,
            "constant_labels": self.partition_.constant.tolist(),
        }
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = check_features(X, self.n_features_)
        varying = None
        if self.estimator_ is not None:
            with threadpool_limits(limits=self.n_threads or 1):
                varying = predict_in_chunks(
                    self._posterior, self._transform(X), self.partition_.varying.size, chunk_rows=1024
                )
        return np.clip(self.partition_.assemble(varying, X.shape[0]), 0.0, 1.0)

    def _posterior(self, X) -> np.ndarray:
        """The library's ``predict_proba`` for one block of rows, vectorised."""
        prior_true, prior_false, cond_true, cond_false = self._tables
        neighbors = self.estimator_.knn_.kneighbors(X, self.estimator_.k, return_distance=False)
        n, k = neighbors.shape
        chosen = sp.csr_matrix(
            (np.ones(n * k, dtype=np.int32), neighbors.ravel(), np.arange(0, n * k + 1, k)),
            shape=(n, self._train_labels.shape[0]),
        )
        counts = (chosen @ self._train_labels).toarray()  # per label: neighbours that have it
        labels = np.arange(counts.shape[1])
        p_true = prior_true * cond_true[labels, counts]
        p_false = prior_false * cond_false[labels, counts]
        return p_true / (p_true + p_false)

    def _transform(self, X):
        return X if self.scaler_ is None else self.scaler_.transform(X)

    def _k_for(self, n_train: int, exclude_self: bool) -> int:
        k = int(self.params["k"])
        if k < 1:
            raise ModelInputError(f"mlknn: k must be >= 1, got {k}")
        limit = n_train - 1 if exclude_self else n_train
        if limit < 1:
            raise ModelInputError(f"mlknn needs at least 2 training rows, got {n_train}")
        return min(k, limit)


def _posterior_tables(estimator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense copies of a fitted skmultilearn MLkNN's priors (L,) and tables (L, k+1)."""
    return (
        np.asarray(estimator._prior_prob_true, dtype=np.float64),
        np.asarray(estimator._prior_prob_false, dtype=np.float64),
        estimator._cond_prob_true.toarray(),
        estimator._cond_prob_false.toarray(),
    )
