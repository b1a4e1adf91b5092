"""Random forest (scikit-learn ``RandomForestClassifier``), multi-output.

Tree ensembles are among the strongest multi-label methods in large comparative studies
(Bogatinovski et al., 2022, where random forests of predictive clustering trees rank at
the top). scikit-learn's forest fitted on the whole (n, L) label matrix grows *one* tree
per estimator whose splits reduce the impurity summed over all labels: that is the
multi-output (PCT-style) forest, cheaper than L separate forests and able to share splits
between co-occurring labels. A label's score is the fraction of the trees' leaf votes
for its positive class.

- No feature scaling: trees are invariant to monotone transforms.
- CSR input is passed as CSR (scikit-learn trees split sparse columns natively).
- Labels with a single class in the training data are set aside (as for the classic
  baselines, ``benchmark.modelapi.sklearn_utils.LabelPartition``): each scores its training
  frequency (0.0 or 1.0); only the others are fitted.
- ``n_jobs`` is the model's ``n_threads`` (1 when unset), so parallel cells do not
  oversubscribe; the forest's ``random_state`` is the model seed, and scikit-learn's
  forests give the same trees for any ``n_jobs``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from optuna.distributions import (
    CategoricalDistribution,
    IntDistribution,
)
from sklearn.ensemble import RandomForestClassifier

from benchmark.modelapi.base import Model
from benchmark.modelapi.sklearn_utils import LabelPartition, check_features, check_xy


class RandomForest(Model):
    """Multi-output random forest; see the module docstring."""

    name = "rf"
    family = "trees"
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
    }

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "RandomForest":
        start = time.perf_counter()
        X, Y = check_xy(X, Y)
        self.n_features_ = X.shape[1]
        self.partition_ = LabelPartition.of(Y)
        self.forest_ = None
        if self.partition_.varying.size:
            targets = Y[:, self.partition_.varying]
            self.forest_ = self._forest().fit(X, targets[:, 0] if targets.shape[1] == 1 else targets)
        self.fit_info = {
            "fit_seconds": time.perf_counter() - start,
            "constant_labels": self.partition_.constant.tolist(),
            "n_leaves_mean": float(np.mean([t.get_n_leaves() for t in self.forest_.estimators_]))
            if self.forest_ is not None else 0.0,
        }
        return self

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
