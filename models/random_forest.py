"""Random forests: the multi-output forest (``rf``) and its projected-output variant (``rfp``).

``rf``: scikit-learn's ``RandomForestClassifier``, multi-output.
Tree ensembles are among the strongest multi-label methods in large comparative studies
(Bogatinovski et al., 2022, where random forests of predictive clustering trees rank at
the top). scikit-learn's forest fitted on the whole (n, L) label matrix grows *one* tree
per estimator whose splits reduce the impurity summed over all labels: that is the
multi-output (PCT-style) forest, cheaper than L separate forests and able to share splits
between co-occurring labels. A label's score is the fraction of the trees' leaf votes
for its positive class.

``rfp``: the same forest with its splits chosen on q random projections of the label
matrix (Joly, Geurts and Wehenkel, 2014, "Random forests with random projections of the
output space for high dimensional multi-label classification"), a named variant beside
``rf`` (DESIGN.md: a cheaper variant that changes what a model computes is never a silent
replacement). See :class:`ProjectedRandomForest`.

Both:

- grow in steps of :data:`STEP_TREES` trees (scikit-learn's ``warm_start``, which grows
  exactly the trees of a one-shot fit with the same ``random_state``) and, given
  validation data and ``on_epoch``, call ``on_epoch(step, score)`` after each step, so
  tuning trials are prunable (``grows_in_steps = "trees"``). The score is the tuning
  objective ``mean_f1``: the mean of example-, micro- and macro-F1, each at its best
  threshold of the validation grid (:func:`step_score`).
- No feature scaling: trees are invariant to monotone transforms.
- CSR input is passed as sparse (scikit-learn trees split sparse columns natively).
- ``n_jobs`` is the model's ``n_threads`` (1 when unset), so parallel cells do not
  oversubscribe; the forest's ``random_state`` is the model seed, and scikit-learn's
  forests give the same trees for any ``n_jobs``.
- predict their peak memory (:meth:`RandomForest.peak_bytes`), so the planner refuses a
  forest that would not fit: ``rf`` keeps (nodes x labels x 2) float64 class fractions per
  tree (~170 MB a tree on delicious), ``rfp`` (nodes x q) float64 per tree.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from optuna.distributions import CategoricalDistribution, IntDistribution
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from benchmark.evaluation.thresholds import VAL_GRID, sweep
from benchmark.modelapi.base import CostUnits, Model
from benchmark.modelapi.sklearn_utils import (
    LabelPartition,
    check_features,
    check_labels,
    check_xy,
)

#: trees added per step (the last step may be smaller)
STEP_TREES = 25
#: the F1s whose mean (each at its best grid threshold) is the per-step validation score
STEP_SCORE_METRICS = ("ebF1", "miF1", "maF1")

# ---------------------------------------------------------------------------- memory model
# Calibrated on bibtex and delicious (benchmarks/bench_forests.py, benchmarks/results/forests.txt).

#: bytes of one node's record in a scikit-learn Tree (children, feature, threshold, impurity,
#: sample counts, missing-value flag: 8 fields of 8 bytes)
NODE_BYTES = 64
#: leaves per distinct in-bag row of a fully grown tree (min_samples_leaf = 1): at most 1, as
#: every leaf holds an in-bag row; measured 0.82 (delicious) and 0.89 (bibtex), rf and rfp alike
LEAVES_PER_ROW = 1.0
#: a leaf of a tree grown with min_samples_leaf = m >= 2 holds about this many times m distinct
#: rows; measured 1.5-2.2 (bibtex) and 2.9-4.1 (delicious) for m = 2..10: 1.5 is an upper bound
ROWS_PER_LEAF_FACTOR = 1.5
#: memory of a worker before the fit (interpreter, numpy, scipy, scikit-learn, the dataset):
#: measured 0.17-0.20 GiB on bibtex and delicious
BASE_BYTES = 300 * 2**20
#: per-tree memory over the arrays counted: scikit-learn grows a tree's arrays by doubling
#: and trims them after, and the allocator keeps some freed pages; measured 1.00 (bibtex rf)
#: to 1.05 (delicious rf, 190 MB a tree for 179 MB of class fractions)
GROWTH_SLACK = 1.1


def tree_steps(n_estimators: int, step: int = STEP_TREES) -> list[int]:
    """The forest's size after each step: 25, 50, ..., n_estimators (the last step may be smaller)."""
    n = int(n_estimators)
    if n < 1:
        raise ValueError(f"n_estimators must be >= 1, got {n_estimators!r}")
    return list(range(step, n, step)) + [n]


def step_score(Y_val: np.ndarray, scores: np.ndarray, grid=None) -> float:
    """Mean of example-, micro- and macro-F1, each at its best threshold of ``grid`` (default:
    the validation grid): the tuning objective ``mean_f1`` (benchmark.execution.worker), so a
    trial's last reported step is scored as the trial itself is."""
    values = sweep(Y_val, scores, VAL_GRID if grid is None else grid)
    score = float(np.mean([np.max(values[m]) for m in STEP_SCORE_METRICS]))
    return score if math.isfinite(score) else 0.0


def expected_leaves(n_rows: int, params: dict[str, Any]) -> float:
    """Leaves of one tree grown on ``n_rows`` training rows with ``params``, an upper estimate.

    A tree splits until its leaves are pure or hold ``min_samples_leaf`` distinct in-bag rows
    (scikit-learn's bootstrap is a weight per row, and ``min_samples_leaf`` counts rows): a
    bootstrap draw of ``max_samples * n`` rows holds ``n * (1 - exp(-max_samples))`` distinct
    ones. ``max_depth = d`` caps the leaves at 2^d, a loose bound (measured 150-1,400 leaves at
    d = 10 and 20 on bibtex and delicious); the planner only needs the largest setting, None.
    """
    n = max(1, int(n_rows))
    bootstrap = bool(params.get("bootstrap", True))
    share = params.get("max_samples")
    share = 1.0 if (share is None or not bootstrap) else float(share)
    distinct = n * (1.0 - math.exp(-share)) if bootstrap else float(n)
    m = max(1, int(params.get("min_samples_leaf", 1)))
    leaves = distinct * LEAVES_PER_ROW if m == 1 else distinct / (ROWS_PER_LEAF_FACTOR * m)
    depth = params.get("max_depth")
    if depth is not None:
        leaves = min(leaves, 2.0 ** int(depth))
    return max(1.0, leaves)


def expected_nodes(n_rows: int, params: dict[str, Any]) -> float:
    """Nodes of one tree (a binary tree with ``k`` leaves has ``2k - 1`` nodes)."""
    return 2.0 * expected_leaves(n_rows, params) - 1.0


def features_per_split(n_features: int, max_features: Any) -> float:
    """How many features a split tries (scikit-learn's rule for "sqrt", "log2" and fractions)."""
    d = max(1, int(n_features))
    if max_features in (None, 1.0):
        return float(d)
    if max_features == "sqrt":
        return max(1.0, math.floor(math.sqrt(d)))
    if max_features == "log2":
        return max(1.0, math.floor(math.log2(d)))
    if isinstance(max_features, int):
        return float(min(max_features, d))
    return max(1.0, math.floor(float(max_features) * d))


#: a tree's levels at the defaults (fully grown, ~2^12-2^15 leaves on the paper's datasets):
#: ``max_depth`` below it and a larger ``min_samples_leaf`` shorten the work per row
NOMINAL_DEPTH = 20.0
SORT_WORK = 12.0  # per row and feature at a node, the sort's share against one output's update


def tree_units(n_features: int, outputs: float, params: dict[str, Any], density: float = 1.0) -> float:
    """Relative work per training row of a forest: every level a row descends, each tried
    feature is sorted (its nonzeros, for sparse X) and the split criterion updated over the
    outputs (labels or projections)."""
    p = params
    depth = NOMINAL_DEPTH - math.log2(max(1, int(p.get("min_samples_leaf", 1))))
    if p.get("max_depth") is not None:
        depth = min(depth, float(p["max_depth"]))
    share = p.get("max_samples")
    share = 1.0 if (share is None or not p.get("bootstrap", True)) else float(share)
    tried = features_per_split(n_features, p["max_features"])
    if density < 0.5:  # sparse X: most tried features are empty in a node and skipped at once
        tried = math.sqrt(tried * features_per_split(n_features, "sqrt"))
    work = int(p["n_estimators"]) * share * depth * tried
    return work * (SORT_WORK * density + outputs)


def data_bytes(n_rows: int, n_features: int) -> int:
    """The fit's copies of X as float32, dense (CSR and CSC copies of sparse X hold less)."""
    return 2 * 4 * int(n_rows) * int(n_features)


class _SteppedForest(Model):
    """What both forests share: growing in steps with a validation score after each."""

    family = "trees"
    grows_in_steps = "trees"
    row_exponent = 1.15  # n log n sorts, deeper trees
    pruner_warmup = 2  # steps (50 trees): validation rankings at 25-50 trees already correlate 0.86-0.93 with the final ones
    selection_grid: tuple[float, ...] | None = None  # set by the worker: the suite's validation grid

    @classmethod
    def steps(cls, params: dict[str, Any]) -> int:
        return len(tree_steps({**cls.defaults, **params}["n_estimators"]))

    @classmethod
    def probe_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"n_estimators": min(int(params["n_estimators"]), STEP_TREES)}  # one step of trees

    @classmethod
    def outputs(cls, n_labels: int, params: dict[str, Any]) -> float:
        """The outputs a split criterion updates per row: the labels (rf) or projections (rfp)."""
        return float(n_labels)

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        p = {**cls.defaults, **params}
        return CostUnits(tree_units(n_features, cls.outputs(n_labels, p), p, density))

    def _grow(self, forest, X, y, X_val, Y_val, on_epoch, after_step) -> dict[str, Any]:
        """Grow ``forest`` (warm_start) in steps on (X, y); after each step ``after_step(new trees)``
        runs, then, when reporting, ``on_epoch`` gets the step's validation score (the model's
        ``_validation_scores`` keeps a running sum, so each tree is evaluated once)."""
        steps = tree_steps(forest.n_estimators)
        report = on_epoch is not None and X_val is not None and Y_val is not None
        Y_val = check_labels(Y_val, X_val.shape[0]) if report else None
        step_seconds, val_scores, grown = [], [], 0
        forest.set_params(warm_start=True)
        for step, n_trees in enumerate(steps, start=1):
            started = time.perf_counter()
            forest.set_params(n_estimators=n_trees)
            with warnings.catch_warnings():  # class_weight presets under warm_start: the data never
                warnings.filterwarnings("ignore", message=".*not recommended for warm_start.*")  # change here
                forest.fit(X, y)
            new = forest.estimators_[grown:n_trees]
            grown = n_trees
            after_step(new)
            step_seconds.append(time.perf_counter() - started)
            if report:
                val_scores.append(step_score(Y_val, self._validation_scores(new, X_val, n_trees), self.selection_grid))
                on_epoch(step, val_scores[-1])  # may raise optuna.TrialPruned: it propagates
        forest.set_params(warm_start=False)
        return {"n_steps": len(steps), "step_trees": steps, "step_seconds": step_seconds,
                **({"val_scores": val_scores} if report else {})}

    @staticmethod
    def _fit_input(X):
        """X as the forest's fit converts it (float32, CSC when sparse), converted once, not per step."""
        return X.tocsc() if sp.issparse(X) else X


class RandomForest(_SteppedForest):
    """Multi-output random forest, grown in steps of 25 trees; see the module docstring."""

    name = "rf"
    learns_varying_labels = True
    defaults: dict[str, Any] = {
        "n_estimators": 200,
        "max_features": "sqrt",     # features tried per split: "sqrt", "log2" or a fraction
        "min_samples_leaf": 1,
        "max_depth": None,          # None grows trees until leaves are pure or min_samples_leaf
        "bootstrap": True,
        "max_samples": None,        # bootstrap sample size as a fraction of n (None = n)
        "criterion": "gini",
        "class_weight": None,       # or "balanced_subsample" (reweights each label per bootstrap);
                                    # not searched: it gave useless forests (objective 0.04-0.10
                                    # against 0.25-0.33) and half the random start-up trials drew it
    }
    search_space: dict[str, Any] = {
        "n_estimators": IntDistribution(100, 500, step=100),
        "max_features": CategoricalDistribution(["sqrt", "log2", 0.1, 0.3, 0.5]),
        "min_samples_leaf": IntDistribution(1, 10),
        "max_depth": CategoricalDistribution([None, 10, 20, 40]),
        "max_samples": CategoricalDistribution([None, 0.5, 0.8]),
        "criterion": CategoricalDistribution(["gini", "entropy"]),
    }  # class_weight is not searched (issue 21: balanced_subsample leaves the space on another branch too)

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "RandomForest":
        start = time.perf_counter()
        X, Y = check_xy(X, Y)
        self.n_features_ = X.shape[1]
        self.partition_ = LabelPartition.of(Y)
        self.forest_ = None
        steps: dict[str, Any] = {}
        if self.partition_.varying.size:
            targets = Y[:, self.partition_.varying]
            self.forest_ = self._forest()
            if X_val is not None:
                X_val = check_features(X_val, self.n_features_)
            self._val_sum = None
            steps = self._grow(self.forest_, self._fit_input(X), targets[:, 0] if targets.shape[1] == 1 else targets,
                               X_val, Y_val, on_epoch, after_step=lambda new: None)
            del self._val_sum
        self.fit_info = {
            "fit_seconds": time.perf_counter() - start,
            "constant_labels": self.partition_.constant.tolist(),
            "n_leaves_mean": float(np.mean([t.get_n_leaves() for t in self.forest_.estimators_]))
            if self.forest_ is not None else 0.0,
            **steps,
        }
        return self

    def _validation_scores(self, new_trees, X_val, n_trees: int) -> np.ndarray:
        """The forest's validation scores after this step, from a running sum over its trees
        (each tree is evaluated once, not once per later step)."""
        for tree in new_trees:
            self._val_sum = _add(self._val_sum, self._tree_positive(tree, X_val))
        return np.clip(self.partition_.assemble(self._val_sum / n_trees, X_val.shape[0]), 0.0, 1.0)

    @staticmethod
    def _tree_positive(tree, X) -> np.ndarray:
        per_label = tree.predict_proba(X)  # every fitted label has both classes in the forest
        if not isinstance(per_label, list):
            per_label = [per_label]
        return np.column_stack([p[:, 1] for p in per_label])

    def predict_proba(self, X) -> np.ndarray:
        X = check_features(X, self.n_features_)
        varying = None
        if self.forest_ is not None:
            per_label = self.forest_.predict_proba(X)  # list of (n, 2): every fitted label has both classes
            if not isinstance(per_label, list):
                per_label = [per_label]
            varying = np.column_stack([p[:, 1] for p in per_label])
        return np.clip(self.partition_.assemble(varying, X.shape[0]), 0.0, 1.0)

    def _forest(self) -> RandomForestClassifier:
        p = self.params
        return RandomForestClassifier(
            n_estimators=int(p["n_estimators"]),
            max_features=p["max_features"],
            min_samples_leaf=int(p["min_samples_leaf"]),
            max_depth=None if p["max_depth"] is None else int(p["max_depth"]),
            bootstrap=bool(p["bootstrap"]),
            max_samples=None if (p["max_samples"] is None or not p["bootstrap"]) else float(p["max_samples"]),
            criterion=p["criterion"],
            class_weight=p["class_weight"],
            n_jobs=int(self.n_threads) if self.n_threads else 1,
            random_state=self.seed,
        )

    @classmethod
    def peak_bytes(cls, n_rows: int, n_features: int, n_labels: int, params: dict[str, Any]) -> int:
        """Each tree keeps (nodes x labels x 2) float64 class fractions beside its node records;
        the fit holds y as (n x labels) float64 and a prediction (n x labels x 2) float64."""
        p = {**cls.defaults, **params}
        per_tree = expected_nodes(n_rows, p) * (NODE_BYTES + 2 * 8 * int(n_labels))
        trees = int(p["n_estimators"]) * per_tree * GROWTH_SLACK
        arrays = 8 * n_rows * n_labels + 2 * 8 * n_rows * n_labels
        return int(BASE_BYTES + data_bytes(n_rows, n_features) + arrays + trees)


class ProjectedRandomForest(_SteppedForest):
    """Random forest split on q random projections of the labels (Joly et al., 2014); leaves
    score the labels' in-bag means. A named variant beside ``rf``; see the module docstring.

    - Trees: scikit-learn ``RandomForestRegressor`` (bootstrap rows, best split among
      ``max_features`` drawn features, squared error) on Z = Y P, P an (L, q) Gaussian matrix
      with N(0, 1/q) entries drawn from the model seed. Same randomisation as ``rf``, and a split's
      variance reduction on Z is, in expectation (Johnson-Lindenstrauss), its reduction of the
      summed label variances, i.e. of half rf's summed Gini impurity: rfp approximates rf's
      split choice at q instead of L outputs. (Extra-trees semantics would change two things at
      once, the randomisation and the targets.) One P serves every tree.
    - Leaves: a label's score in a leaf is the mean of the label over the tree's in-bag
      training rows in that leaf, weighted by their bootstrap counts (exactly the leaf value a
      regression tree of the same structure fitted on Y would hold: Z's leaf value is that
      mean times P); a forest's score is the mean over its trees. These means are never stored
      per leaf: each tree keeps its sparse (leaves x training rows) membership matrix B, row-
      normalised by the bootstrap counts (O(in-bag rows) per tree, whatever the label count or
      cardinality), and scores are A B Y, A the (rows x leaves) matrix of the leaves that
      ``apply()`` finds, averaged over the trees. The training labels are kept once, sparse.
    """

    name = "rfp"
    defaults: dict[str, Any] = {
        "n_estimators": 200,
        "max_features": "sqrt",
        "min_samples_leaf": 1,
        "max_depth": None,
        "bootstrap": True,
        "max_samples": None,
        "n_projections": 64,        # q: columns of the label projection the splits are chosen on
    }
    search_space: dict[str, Any] = {
        "n_estimators": IntDistribution(100, 500, step=100),
        "max_features": CategoricalDistribution(["sqrt", "log2", 0.1, 0.3, 0.5]),
        "min_samples_leaf": IntDistribution(1, 10),
        "max_depth": CategoricalDistribution([None, 10, 20, 40]),
        "max_samples": CategoricalDistribution([None, 0.5, 0.8]),
    }
    #: rows scored at once by predict_proba (bounds the (rows x training rows) kernel)
    chunk_rows = 2048

    @classmethod
    def outputs(cls, n_labels: int, params: dict[str, Any]) -> float:
        return float(min(int(params["n_projections"]), max(n_labels, 1)))

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "ProjectedRandomForest":
        start = time.perf_counter()
        X, Y = check_xy(X, Y)
        self.n_features_ = X.shape[1]
        n, L = Y.shape
        self.Y_ = sp.csr_matrix(Y, dtype=np.float64)
        self.projection_ = self._projection(L)
        Z = np.asarray(self.Y_ @ self.projection_)
        self.forest_ = self._forest()
        X_apply = X  # apply() wants CSR, fit CSC: both are kept for the fit
        if X_val is not None:
            X_val = check_features(X_val, self.n_features_)
        self.blocks_: list[_Block] = []
        self._val_sum = None

        def after_step(new_trees):
            grown = sum(b.n_trees for b in self.blocks_)
            samples = self.forest_.estimators_samples_[grown:]
            self.blocks_.append(_Block.of(new_trees, samples, X_apply, n))

        steps = self._grow(self.forest_, self._fit_input(X), Z[:, 0] if Z.shape[1] == 1 else Z, X_val, Y_val,
                           on_epoch, after_step)
        del self._val_sum
        leaves = [t.get_n_leaves() for t in self.forest_.estimators_]
        self.fit_info = {"fit_seconds": time.perf_counter() - start, "n_leaves_mean": float(np.mean(leaves)),
                         "n_projections": int(self.projection_.shape[1]), **steps}
        return self

    def _projection(self, n_labels: int) -> np.ndarray:
        q = int(self.params["n_projections"])
        if q < 1:
            raise ValueError(f"n_projections must be >= 1, got {q}")
        rng = np.random.default_rng([self.seed, 0x7270])  # a stream apart from the forest's
        return rng.standard_normal((n_labels, q)) / math.sqrt(q)

    def _validation_scores(self, new_trees, X_val, n_trees: int) -> np.ndarray:
        block = self.blocks_[-1]
        leaves = np.column_stack([tree.apply(X_val) for tree in new_trees])
        self._val_sum = _add(self._val_sum, block.label_sums(leaves, self.Y_))
        return np.clip(self._val_sum / n_trees, 0.0, 1.0)

    def predict_proba(self, X) -> np.ndarray:
        """Mean over trees of the leaves' label means, summed step by step in the order the
        fit's validation scores were (so both are the same floats, threshold ties included)."""
        X = check_features(X, self.n_features_)
        trees = len(self.forest_.estimators_)
        out = np.empty((X.shape[0], self.Y_.shape[1]), dtype=np.float64)
        for lo in range(0, X.shape[0], self.chunk_rows):
            part = X[lo:lo + self.chunk_rows]
            leaves = self.forest_.apply(part)  # (rows, trees) node ids
            total, first = None, 0
            for block in self.blocks_:
                total = _add(total, block.label_sums(leaves[:, first:first + block.n_trees], self.Y_))
                first += block.n_trees
            out[lo:lo + part.shape[0]] = total / trees
        return np.clip(out, 0.0, 1.0)

    def _forest(self) -> RandomForestRegressor:
        p = self.params
        return RandomForestRegressor(
            n_estimators=int(p["n_estimators"]),
            criterion="squared_error",
            max_features=p["max_features"],
            min_samples_leaf=int(p["min_samples_leaf"]),
            max_depth=None if p["max_depth"] is None else int(p["max_depth"]),
            bootstrap=bool(p["bootstrap"]),
            max_samples=None if (p["max_samples"] is None or not p["bootstrap"]) else float(p["max_samples"]),
            n_jobs=int(self.n_threads) if self.n_threads else 1,
            random_state=self.seed,
        )

    @classmethod
    def peak_bytes(cls, n_rows: int, n_features: int, n_labels: int, params: dict[str, Any]) -> int:
        """Each tree keeps (nodes x q) float64 leaf values beside its node records, a node map
        and its in-bag membership (<= n rows x 16 bytes); the fit holds Y (sparse, at most dense)
        and Z (n x q float64), a prediction chunk its kernel and scores."""
        p = {**cls.defaults, **params}
        q = int(p["n_projections"])
        per_tree = expected_nodes(n_rows, p) * (NODE_BYTES + 8 * q + 8) + 16 * n_rows
        trees = int(p["n_estimators"]) * per_tree * GROWTH_SLACK
        arrays = 12 * n_rows * n_labels + 8 * n_rows * q + 3 * 8 * cls.chunk_rows * n_labels
        return int(BASE_BYTES + data_bytes(n_rows, n_features) + arrays + trees)


class _Block:
    """The trees of one step of rfp: their in-bag leaf memberships, stacked.

    ``membership``: (leaves of these trees x training rows) CSR, a leaf's row holding its
    in-bag rows' bootstrap counts normalised to sum 1; ``node_rows``: per tree, its node id's
    row of ``membership`` (-1 for split nodes), concatenated, each tree's from ``node_offsets``.
    """

    def __init__(self, n_trees: int, membership: sp.csr_matrix, node_rows: np.ndarray, node_offsets: np.ndarray):
        self.n_trees = n_trees
        self.membership = membership
        self.node_rows = node_rows
        self.node_offsets = node_offsets

    @classmethod
    def of(cls, trees, samples, X, n_rows: int) -> "_Block":
        parts, maps, leaves_so_far = [], [], 0
        for tree, inbag in zip(trees, samples):
            counts = np.bincount(inbag, minlength=n_rows)
            rows = np.flatnonzero(counts)
            nodes, leaf = np.unique(tree.apply(X[rows]), return_inverse=True)
            weight = counts[rows].astype(np.float64)
            weight /= np.bincount(leaf, weights=weight)[leaf]
            parts.append(sp.csr_matrix((weight, (leaf, rows)), shape=(len(nodes), n_rows)))
            node_rows = np.full(tree.tree_.node_count, -1, dtype=np.int64)
            node_rows[nodes] = leaves_so_far + np.arange(len(nodes))
            maps.append(node_rows)
            leaves_so_far += len(nodes)
        offsets = np.cumsum([0] + [len(m) for m in maps])[:-1]
        return cls(len(parts), sp.vstack(parts, format="csr"), np.concatenate(maps), offsets)

    def label_sums(self, leaves: np.ndarray, Y: sp.csr_matrix) -> np.ndarray:
        """(rows, labels): summed over this block's trees, the label means of the leaves that
        ``leaves`` ((rows, trees) node ids) name: A (membership Y), A the rows' leaf indicator."""
        n, trees = leaves.shape
        rows = self.node_rows[leaves + self.node_offsets[None, :]]
        A = sp.csr_matrix((np.ones(n * trees), rows.ravel(), np.arange(0, n * trees + 1, trees)),
                          shape=(n, self.membership.shape[0]))
        return np.asarray(((A @ self.membership) @ Y).todense())


def _add(total: np.ndarray | None, part: np.ndarray) -> np.ndarray:
    return part.copy() if total is None else total + part
