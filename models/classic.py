"""Classic baselines: label-frequency prior, binary relevance, classifier chains, ECC.

All of them share one preprocessing path (:class:`_LogisticBaseline`):

1. X is checked (float32 dense or CSR) and standardised by a scaler fitted on the
   training rows only and stored in the model, so nothing leaks from validation or
   test data. CSR input is scaled without centring, so it stays sparse.
2. Labels with a single class in the training data (no positives, or no negatives,
   common in small training fractions) are set aside: each gets its training
   frequency (0.0 or 1.0) as a constant score. Only the other labels are learnt. For
   chains this means a constant label is *not a link of the chain*: it would carry
   no information to later links anyway (its value is the same on every training
   row), and scikit-learn's logistic regression refuses a one-class target.
3. One logistic regression (lbfgs, deterministic) per learnt label.

``fit_info`` records ``fit_seconds``, the constant labels and, for chains, the label
orders (in original label indices) under ``orders``.
"""

from __future__ import annotations

import time
import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from optuna.distributions import CategoricalDistribution, FloatDistribution
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import ClassifierChain
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from benchmark.modelapi.base import Model
from benchmark.modelapi.sklearn_utils import (
    LabelPartition,
    check_features,
    check_xy,
    fit_chain,
    fit_estimator,
    make_scaler,
    predict_in_chunks,
)

# Hyperparameters shared by every logistic-regression baseline.
# Default C = 0.1: on 3-fold CV of the *training* files of yeast, scene, medical and
# enron (standardised features), C in [0.03, 0.1] gave the best mean P@1 and micro-F1;
# dense datasets prefer smaller C, sparse text larger. The tuner searches the range.
LOGISTIC_DEFAULTS: dict[str, Any] = {"C": 0.1, "class_weight": None, "max_iter": 1000, "standardize": True}
LOGISTIC_SPACE: dict[str, Any] = {
    # C below 1e-2 with balanced class weights gives near-constant scores that predict most
    # labels everywhere: high macro-F1 on paper, micro-F1 below the prior's (seen on yeast).
    "C": FloatDistribution(1e-2, 1e2, log=True),
    "class_weight": CategoricalDistribution([None, "balanced"]),
}
# Chains: "predict_proba" feeds each earlier link's probability to later links at
# prediction time (soft chaining, scikit-learn >= 1.6); "predict" feeds its hard 0/1
# decision (the classic CC). In 3-fold CV on the training files of yeast, scene, medical
# and enron (C=0.1), soft chaining matched or beat hard chaining on P@1, miF1 and maF1.
CHAIN_DEFAULTS: dict[str, Any] = {**LOGISTIC_DEFAULTS, "chain_method": "predict_proba"}
CHAIN_SPACE: dict[str, Any] = {
    **LOGISTIC_SPACE,
    "chain_method": CategoricalDistribution(["predict_proba", "predict"]),
}


class Prior(Model):
    """Scores every sample with the training label frequencies (ignores X).

    The trivial reference row: a model that does not beat it on micro-F1 or P@1 has
    learnt nothing from the features.
    """

    name = "prior"
    family = "trivial"
    defaults: dict[str, Any] = {}
    search_space: dict[str, Any] = {}

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "Prior":
        start = time.perf_counter()
        X, Y = check_xy(X, Y)
        self.n_features_ = X.shape[1]
        self.frequencies_ = Y.mean(axis=0, dtype=np.float64)
        self.fit_info = {"fit_seconds": time.perf_counter() - start}
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = check_features(X, self.n_features_)
        return np.tile(self.frequencies_, (X.shape[0], 1))


class _LogisticBaseline(Model):
    """Shared fit/predict path: checks, scaler, constant labels, timing (see module doc)."""

    family = "classic"
    defaults = dict(LOGISTIC_DEFAULTS)
    search_space = dict(LOGISTIC_SPACE)

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
        start = time.perf_counter()
        X, Y = check_xy(X, Y)
        self.n_features_ = X.shape[1]
        self.partition_ = LabelPartition.of(Y)
        # standardize = False feeds raw features (an identity scaler keeps one code path)
        scaler = make_scaler(X) if self.params.get("standardize", True) else StandardScaler(with_mean=False, with_std=False)
        self.scaler_ = scaler.fit(X)
        Xs = self.scaler_.transform(X)
        with warnings.catch_warnings(record=True) as caught, self._thread_limit():
            warnings.simplefilter("always", ConvergenceWarning)
            if self.partition_.varying.size:
                self._fit_varying(Xs, Y[:, self.partition_.varying])
        self.fit_info = {
            "fit_seconds": time.perf_counter() - start,
            "constant_labels": self.partition_.constant.tolist(),
            "convergence_warnings": sum(issubclass(w.category, ConvergenceWarning) for w in caught),
            **self._extra_fit_info(),
        }
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = check_features(X, self.n_features_)
        varying = None
        if self.partition_.varying.size:
            with self._thread_limit():
                varying = self._predict_varying(self.scaler_.transform(X))
        return np.clip(self.partition_.assemble(varying, X.shape[0]), 0.0, 1.0)

    # -- for subclasses -------------------------------------------------------

    @abstractmethod
    def _fit_varying(self, X, Y) -> None:
        """Fit on scaled X and the learnable labels' columns of Y."""

    @abstractmethod
    def _predict_varying(self, X) -> np.ndarray:
        """(n, n_varying) positive-class scores for scaled X."""

    def _extra_fit_info(self) -> dict[str, Any]:
        return {}

    def _logistic(self) -> LogisticRegression:
        # lbfgs is deterministic; random_state is set anyway in case a subclass
        # swaps in a stochastic solver.
        return LogisticRegression(
            C=float(self.params["C"]),
            class_weight=self.params["class_weight"],
            max_iter=int(self.params["max_iter"]),
            random_state=self.seed,
        )

    @property
    def _n_jobs(self) -> int:
        return int(self.n_threads) if self.n_threads else 1

    def _thread_limit(self):
        """Cap BLAS threads at n_threads so parallel cells do not oversubscribe."""
        return threadpool_limits(limits=self._n_jobs)

    def _permutation(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.partition_.varying.size)


class BinaryRelevance(_LogisticBaseline):
    """One independent logistic regression per label (binary relevance)."""

    name = "br"

    def _fit_varying(self, X, Y) -> None:
        self.estimators_ = Parallel(n_jobs=self._n_jobs)(
            delayed(fit_estimator)(self._logistic(), X, Y[:, j]) for j in range(Y.shape[1])
        )

    def _predict_varying(self, X) -> np.ndarray:
        return np.column_stack([est.predict_proba(X)[:, 1] for est in self.estimators_])


class ClassifierChainModel(_LogisticBaseline):
    """A classifier chain (scikit-learn ``ClassifierChain``) in a random order.

    The order is a permutation of the learnt labels drawn from ``seed``; constant
    labels are outside the chain (module doc). At prediction time each link sees
    the earlier links' probabilities (``chain_method="predict_proba"``, default) or
    their hard 0/1 predictions (``"predict"``, the classic chain).
    """

    name = "cc"
    defaults = dict(CHAIN_DEFAULTS)
    search_space = dict(CHAIN_SPACE)

    def _fit_varying(self, X, Y) -> None:
        rng = np.random.default_rng(self.seed)
        self.chain_ = fit_chain(self._logistic(), self._permutation(rng), self.params["chain_method"], X, Y)

    def _predict_varying(self, X) -> np.ndarray:
        return predict_chain(self.chain_, X)

    def _extra_fit_info(self) -> dict[str, Any]:
        return {"orders": [self.orders_[0].tolist()] if hasattr(self, "chain_") else []}

    @property
    def orders_(self) -> list[np.ndarray]:
        """Chain order(s) in original label indices."""
        return [self.partition_.varying[self.chain_.order_]]


class EnsembleOfClassifierChains(_LogisticBaseline):
    """``n_chains`` classifier chains in different seeded orders, scores averaged.

    Every chain is trained on the full training set (no bagging): the ensemble
    averages out the order dependence of a single chain. ``n_chains`` is fixed, not
    tuned: more chains only cost time, they do not overfit.
    """

    name = "ecc"
    defaults = {**CHAIN_DEFAULTS, "n_chains": 10}
    search_space = dict(CHAIN_SPACE)

    def _fit_varying(self, X, Y) -> None:
        n_chains = int(self.params["n_chains"])
        if n_chains < 1:
            raise ValueError(f"n_chains must be >= 1, got {n_chains}")
        rng = np.random.default_rng(self.seed)
        orders = [self._permutation(rng) for _ in range(n_chains)]
        self.chains_ = Parallel(n_jobs=self._n_jobs)(
            delayed(fit_chain)(self._logistic(), order, self.params["chain_method"], X, Y) for order in orders
        )

    def _predict_varying(self, X) -> np.ndarray:
        return np.mean([predict_chain(chain, X) for chain in self.chains_], axis=0)

    def _extra_fit_info(self) -> dict[str, Any]:
        return {"orders": [order.tolist() for order in self.orders_] if hasattr(self, "chains_") else []}

    @property
    def orders_(self) -> list[np.ndarray]:
        """Each chain's order in original label indices."""
        return [self.partition_.varying[chain.order_] for chain in self.chains_]


def predict_chain(chain: ClassifierChain, X) -> np.ndarray:
    """``chain.predict_proba(X)`` for logistic links, without re-stacking X per link.

    scikit-learn builds ``hstack([X, earlier outputs])`` once per link, which for CSR
    input costs a full copy of X per label (bibtex: 159 copies per call). Every link
    is linear, so its decision value splits into ``X @ w_features`` (computed for all
    links in one product) plus ``earlier outputs @ w_links``. Same numbers as
    scikit-learn's up to float rounding (tested), in row blocks to bound memory.
    """
    return predict_in_chunks(lambda rows: _chain_block(chain, rows), X, len(chain.estimators_))


def _chain_block(chain: ClassifierChain, X) -> np.ndarray:
    n_features = X.shape[1]
    links = chain.estimators_
    W_features = np.column_stack([link.coef_[0, :n_features] for link in links]).astype(np.float64)
    decisions = np.asarray(X @ W_features) + np.array([link.intercept_[0] for link in links])
    fed = np.zeros_like(decisions)  # what each link passes down the chain
    soft = getattr(chain, "chain_method_", "predict") == "predict_proba"
    for j, link in enumerate(links):
        if j:
            decisions[:, j] += fed[:, :j] @ link.coef_[0, n_features:]
        fed[:, j] = expit(decisions[:, j]) if soft else decisions[:, j] > 0  # LogisticRegression.predict
    scores = np.empty_like(decisions)
    scores[:, chain.order_] = expit(decisions)
    return scores
