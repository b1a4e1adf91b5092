"""ML-ARAM (Benites & Sapozhnikova, ICDMW 2015) from scikit-multilearn-ng.

An ARTMAP network: each training row either joins the most active prototype ("neuron")
of its label combination whose match exceeds ``vigilance`` (the prototype's hyperbox
grows to cover it) or founds a new prototype. A test row activates the prototypes; those
within ``threshold`` (relative) of the winner vote with their labels, weighted by
activation. We wrap ``skmultilearn.adapt.MLARAM`` and fix what the harness needs:

- *Copies in*: the library keeps and mutates what it is given (the first row's label
  vector becomes a prototype's vote counter and is incremented in place), so it only
  ever sees private copies of X and Y.
- *Scaling from training data only*: the library rescales each matrix it sees by that
  matrix's own global min and max, so a test set would be scaled by its own statistics.
  We min-max scale every feature to [0, 1] with the training rows' minimum and maximum
  (test values clipped to [0, 1]); the library then leaves the data as it is. CSR input
  is scaled by each column's maximum absolute value (zeros stay zeros; negative entries,
  which non-negative text features do not have, are clipped to 0) and then densified:
  ARAM's complement coding [x, 1 - x] is dense anyway, and the library's sparse path
  fails on current SciPy (row-vs-matrix ``minimum``). Prediction densifies in row blocks.
- *Scores in [0, 1]*: the library's scores are activation-weighted sums of prototype
  vote *counts*, divided by the sum of activations, so they exceed 1 for prototypes that
  absorbed several rows. We fit with one extra all-ones label column: it changes neither
  the label combinations nor the activations, and its score is the same weighted sum of
  the prototypes' member counts. Dividing each label's score by it gives the count- and
  activation-weighted fraction of the voting rows that carry the label: in [0, 1], the
  library's ranking within each row unchanged.
- *Single-class labels* are set aside (constant 0.0 or 1.0), as for the classic baselines.

Cost: training is one Python step per row over the prototypes of its label combination;
prediction one vectorised activation per row. Seconds on yeast/scene; the network does
not depend on the seed (the row order is the data's).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from optuna.distributions import FloatDistribution

from benchmark.modelapi.base import CostUnits, Model
from benchmark.modelapi.sklearn_utils import (
    LabelPartition,
    check_features,
    check_xy,
    predict_in_chunks,
)


def _label_combination_key(indicator) -> str:
    """A hashable key of a label set: its positive indices' bytes as latin-1 (any byte is valid).

    scikit-multilearn-ng decodes those bytes as UTF-8, which fails as soon as a label index
    has a byte >= 0x80 (bibtex's label 150: "can't decode byte 0x96"): every dataset with
    more than 127 labels. Its module function is replaced by this bijective version.
    """
    return indicator.nonzero()[0].tobytes().decode("latin-1")


def _patch_library() -> None:
    from skmultilearn.adapt import mlaram as library

    library._get_label_combination_representation = _label_combination_key


class MLARAM(Model):
    """Multi-label ARAM network with [0, 1] scores; see the module docstring."""

    name = "mlaram"
    family = "art network"
    learns_varying_labels = True
    row_exponent = 1.9  # each row is matched against prototypes that grow with the rows (bibtex, delicious: 1.9-2.0)
    defaults: dict[str, Any] = {"vigilance": 0.9, "threshold": 0.02}  # the library's defaults
    search_space: dict[str, Any] = {
        "vigilance": FloatDistribution(0.8, 0.999),
        "threshold": FloatDistribution(0.001, 0.5, log=True),
    }

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        """Each row is matched against the prototypes over its features and labels."""
        return CostUnits(float(max(n_features * density, 1) + max(n_labels, 1)))

    def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None) -> "MLARAM":
        _patch_library()
        from skmultilearn.adapt import MLARAM as SkmlMLARAM

        start = time.perf_counter()
        X, Y = check_xy(X, Y)
        self.n_features_ = X.shape[1]
        self.partition_ = LabelPartition.of(Y)
        self._fit_scaling(X)
        self.estimator_ = None
        if self.partition_.varying.size:
            Y_fit = np.hstack([Y[:, self.partition_.varying], np.ones((Y.shape[0], 1), dtype=Y.dtype)])
            estimator = SkmlMLARAM(vigilance=float(self.params["vigilance"]),
                                   threshold=float(self.params["threshold"]), neurons=[])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the library imports numpy.core.umath
                estimator.fit(self._scale(X), np.array(Y_fit, dtype=np.int64, copy=True))
            self.estimator_ = estimator
        self.fit_info = {
            "fit_seconds": time.perf_counter() - start,
            "constant_labels": self.partition_.constant.tolist(),
            "n_prototypes": len(self.estimator_.neurons) if self.estimator_ is not None else 0,
        }
        return self

    def predict_proba(self, X) -> np.ndarray:
        X = check_features(X, self.n_features_)
        varying = None
        if self.estimator_ is not None:
            n_out = self.partition_.varying.size
            varying = predict_in_chunks(self._scores, X, n_out, chunk_rows=1024)
        return np.clip(self.partition_.assemble(varying, X.shape[0]), 0.0, 1.0)

    def _scores(self, X) -> np.ndarray:
        """The library's scores for a block of rows, divided by the all-ones column's."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the library imports numpy.core.umath
            raw = np.asarray(self.estimator_.predict_proba(self._scale(X)), dtype=np.float64)
        raw = raw.reshape(X.shape[0], -1)
        return raw[:, :-1] / np.maximum(raw[:, -1:], 1e-300)

    # -- scaling to [0, 1] with training statistics --------------------------------

    def _fit_scaling(self, X) -> None:
        if sp.issparse(X):
            self.offset_ = None
            max_abs = np.asarray(abs(X).max(axis=0).todense(), dtype=np.float64).ravel()
            self.scale_ = np.where(max_abs > 0, max_abs, 1.0)
        else:
            low, high = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
            self.offset_ = low
            self.scale_ = np.where(high > low, high - low, 1.0)

    def _scale(self, X) -> np.ndarray:
        """A new dense float64 matrix in [0, 1] (never the caller's)."""
        if sp.issparse(X):
            Xs = sp.csr_matrix(X, dtype=np.float64, copy=True) @ sp.diags(1.0 / self.scale_)
            return np.clip(Xs.toarray(), 0.0, 1.0)
        return np.clip((np.asarray(X, dtype=np.float64) - self.offset_) / self.scale_, 0.0, 1.0)
