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

ECC grows chain by chain (``grows_in_steps = "members"``): after each chain, given
validation data, it reports the validation score of the chains so far to ``on_epoch``
(so tuning trials are prunable) and records per-step costs (:class:`MemberSteps`). The
chains, their orders and seeds are the same whether or not anything is reported.
"""

from __future__ import annotations

import time
import warnings
from abc import abstractmethod
from typing import Any, Callable

import numpy as np
from joblib import Parallel, delayed
from optuna.distributions import CategoricalDistribution, FloatDistribution
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import ClassifierChain
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from benchmark.modelapi.base import CostUnits, Model
from benchmark.modelapi.epoch_selection import validation_score
from benchmark.modelapi.sklearn_utils import (
    LabelPartition,
    check_features,
    check_labels,
    check_xy,
    fit_chain,
    fit_estimator,
    make_scaler,
    predict_in_chunks,
)


class MemberSteps:
    """The bookkeeping of an ensemble that grows in steps of one or more members.

    After each step :meth:`done` records its cost and, given validation data (``X_val``
    already scaled), the validation score of the ensemble so far, which it reports to
    ``on_epoch(step, score)`` (steps count from 1, like epochs; ``optuna.TrialPruned``
    raised there propagates). The score is the one epoch-trained models report
    (``epoch_selection.validation_score``: best macro-F1 over ``grid``) of the scores
    ``predict_proba`` would give with the members so far. It costs one prediction of the
    step's new members: :meth:`add` keeps the running sum of the members' validation
    scores and, per label, how many members scored it (the ensemble averages per label).

    ``info`` (the model's ``fit_info``) gets, updated as steps finish so that a pruned fit
    keeps its steps so far: ``n_steps``; ``step_members`` (members added by each step);
    ``step_seconds`` and ``step_cpu_seconds`` (each step's wall and this process's CPU
    seconds, its validation score included; members fitted in parallel share their
    batch's seconds equally); ``val_scores`` (one per step, with validation data);
    ``validation_seconds`` and ``validation_cpu_seconds`` (what the scores cost, the
    members' validation predictions included, all steps together).
    """

    @classmethod
    def of(cls, model: Model, X_val, Y_val, on_epoch) -> "MemberSteps | None":
        """The steps of ``model``'s fit (after it set ``fit_info``, ``partition_``, ``scaler_``
        and ``n_features_``); None for a model that does not grow in steps."""
        if not model.grows_in_steps:
            return None
        has_val = X_val is not None and Y_val is not None
        return cls(model.fit_info, model.partition_,
                   model.scaler_.transform(check_features(X_val, model.n_features_)) if has_val else None,
                   check_labels(Y_val, X_val.shape[0]) if has_val else None, on_epoch,
                   getattr(model, "selection_grid", None))

    def __init__(self, info: dict[str, Any], partition: LabelPartition, X_val=None, Y_val=None,
                 on_epoch: Callable[[int, float], None] | None = None, grid=None):
        self.info = info
        self.partition = partition
        self.scoring = X_val is not None and Y_val is not None
        self.X_val, self.Y_val, self.on_epoch, self.grid = X_val, Y_val, on_epoch, grid
        if self.scoring:
            self._score = validation_score
            self.total = np.zeros((X_val.shape[0], partition.varying.size))
            self.votes = np.zeros(partition.varying.size)
        info.update(n_steps=0, step_members=[], step_seconds=[], step_cpu_seconds=[], val_scores=[],
                    validation_seconds=0.0, validation_cpu_seconds=0.0)
        self._spent = [0.0, 0.0]  # this step's validation seconds, wall and CPU

    def add(self, predict: Callable[[Any], np.ndarray], columns=slice(None)) -> None:
        """One new member: ``predict(X_val)`` gives its (n_val, len(columns)) scores of the
        varying labels ``columns`` (called only when scoring)."""
        if not self.scoring:
            return
        t0, cpu0 = time.perf_counter(), time.process_time()
        self.total[:, columns] += predict(self.X_val)
        self.votes[columns] += 1
        self._spent[0] += time.perf_counter() - t0
        self._spent[1] += time.process_time() - cpu0

    def done(self, n_members: int, seconds: float, cpu_seconds: float) -> None:
        """A step of ``n_members`` members that took ``seconds`` (``cpu_seconds``) to fit,
        each :meth:`add`-ed: record it, score it, report it."""
        info = self.info
        step = info["n_steps"] + 1
        if self.scoring:
            t0, cpu0 = time.perf_counter(), time.process_time()
            varying = self.total / np.maximum(self.votes, 1)  # a label no member scored yet: 0
            scores = np.clip(self.partition.assemble(varying, self.X_val.shape[0]), 0.0, 1.0)
            info["val_scores"].append(self._score(self.Y_val, scores, self.grid))
            self._spent[0] += time.perf_counter() - t0
            self._spent[1] += time.process_time() - cpu0
        info["validation_seconds"] += self._spent[0]
        info["validation_cpu_seconds"] += self._spent[1]
        info["n_steps"] = step
        info["step_members"].append(int(n_members))
        info["step_seconds"].append(float(seconds + self._spent[0]))
        info["step_cpu_seconds"].append(float(cpu_seconds + self._spent[1]))
        self._spent = [0.0, 0.0]
        if self.scoring and self.on_epoch is not None:
            self.on_epoch(step, info["val_scores"][-1])


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
# What the cost units cannot see: L-BFGS's iterations grow or shrink with C and class weights
# by dataset (over the space: x0.8 on bibtex, x1.3-1.5 on delicious), so the cost probe times them.
LOGISTIC_COST_BLIND = ("C", "class_weight")
# Chains: "predict_proba" feeds each earlier link's probability to later links at
# prediction time (soft chaining, scikit-learn >= 1.6); "predict" feeds its hard 0/1
# decision (the classic CC). In 3-fold CV on the training files of yeast, scene, medical
# and enron (C=0.1), soft chaining matched or beat hard chaining on P@1, miF1 and maF1.
CHAIN_DEFAULTS: dict[str, Any] = {**LOGISTIC_DEFAULTS, "chain_method": "predict_proba"}
CHAIN_SPACE: dict[str, Any] = {
    **LOGISTIC_SPACE,
    "chain_method": CategoricalDistribution(["predict_proba", "predict"]),
}
# ECC's pruner warm-up, in chains. Across 8 random configurations the validation score after
# one chain ranks them as after ten (Spearman 0.74 yeast, 0.90 scene, 1.00 bibtex), and the median
# pruner with a warm-up of 1 kept the best configuration on all three
# (benchmarks/results/ensembles_steps.txt).
PRUNER_WARMUP_CHAINS = 1


class Prior(Model):
    """Scores every sample with the training label frequencies (ignores X).

    The trivial reference row: a model that does not beat it on micro-F1 or P@1 has
    learnt nothing from the features.
    """

    name = "prior"
    family = "trivial"
    defaults: dict[str, Any] = {}
    search_space: dict[str, Any] = {}

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        return CostUnits(float(max(n_labels, 1)))  # a column mean per label

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
    #: L-BFGS needs fewer iterations on more rows: one-thread fits of br and cc grew as
    #: rows**0.45-0.66 from the probe's 256 rows to bibtex's 4.9k and delicious's 12.9k
    #: (benchmarks/results/row_growth.txt); 0.75 priced their full fits 1.6x high
    row_exponent = 0.6
    learns_varying_labels = True
    #: L-BFGS's iterations under C and class weights (benchmarks/results/regularisation_cost.txt)
    cost_blind_params = LOGISTIC_COST_BLIND
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
        self.fit_info = {}  # a model growing in steps records them here as they finish
        steps = MemberSteps.of(self, X_val, Y_val, on_epoch)
        with warnings.catch_warnings(record=True) as caught, self._thread_limit():
            warnings.simplefilter("always", ConvergenceWarning)
            if self.partition_.varying.size:
                self._fit_varying(Xs, Y[:, self.partition_.varying], steps)
        self.fit_info.update({
            "fit_seconds": time.perf_counter() - start,
            "constant_labels": self.partition_.constant.tolist(),
            "convergence_warnings": sum(issubclass(w.category, ConvergenceWarning) for w in caught),
            **self._extra_fit_info(),
        })
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
    def _fit_varying(self, X, Y, steps: MemberSteps | None) -> None:
        """Fit on scaled X and the learnable labels' columns of Y (``steps``: where a model
        that ``grows_in_steps`` records and reports them; None for the others)."""

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

    def _fit_varying(self, X, Y, steps=None) -> None:
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

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        """One logistic regression per label on the features and, on average, half the labels.
        On sparse features the earlier labels are stacked sparse too (scikit-learn's chain), so
        they count their nonzeros: on delicious 19 of 983 labels a row, a chain 1.5x binary
        relevance (timed: 1.45x), not the 28x that dense label columns would be."""
        label_columns = n_labels / 2 * (label_density if density < 1 else 1.0)
        return CostUnits(float(max(n_labels, 1) * (max(n_features * density, 1) + label_columns)))

    def _fit_varying(self, X, Y, steps=None) -> None:
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

    Grows one chain per step (with ``n_threads`` > 1, ``n_threads`` chains are fitted at
    once and reported one by one), reporting the validation score of the chains so far.
    """

    name = "ecc"
    defaults = {**CHAIN_DEFAULTS, "n_chains": 10}
    search_space = dict(CHAIN_SPACE)
    grows_in_steps = "members"
    pruner_warmup = PRUNER_WARMUP_CHAINS
    selection_grid: tuple[float, ...] | None = None  # the step score's thresholds (the worker sets them)

    @classmethod
    def steps(cls, params: dict[str, Any]) -> int:
        return int({**cls.defaults, **params}["n_chains"])  # one chain a step

    @classmethod
    def probe_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"n_chains": 1}

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        chain = ClassifierChainModel.cost_units(n_features, n_labels, params, density, label_density).row
        return CostUnits(cls.steps(params) * chain)

    def _fit_varying(self, X, Y, steps: MemberSteps | None = None) -> None:
        n_chains = int(self.params["n_chains"])
        if n_chains < 1:
            raise ValueError(f"n_chains must be >= 1, got {n_chains}")
        rng = np.random.default_rng(self.seed)
        orders = [self._permutation(rng) for _ in range(n_chains)]  # all drawn first: same chains when pruned
        method = self.params["chain_method"]
        self.chains_ = []
        for first in range(0, n_chains, self._n_jobs):
            batch = orders[first:first + self._n_jobs]
            t0, cpu0 = time.perf_counter(), time.process_time()
            if len(batch) == 1:
                fitted = [fit_chain(self._logistic(), batch[0], method, X, Y)]
            else:
                fitted = Parallel(n_jobs=self._n_jobs)(
                    delayed(fit_chain)(self._logistic(), order, method, X, Y) for order in batch)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
            for chain in fitted:
                self.chains_.append(chain)
                if steps is not None:
                    steps.add(lambda X_val: predict_chain(chain, X_val))
                    steps.done(1, seconds / len(fitted), cpu_seconds / len(fitted))

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
