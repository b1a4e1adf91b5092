"""The in-memory form of a multi-label dataset, shared by loaders, runner and models."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass
class MultiLabelDataset:
    """Features, labels and the published split of one dataset.

    ``X`` is float32, dense ``np.ndarray`` or ``scipy.sparse.csr_matrix`` when the
    source is sparse; ``Y`` is a dense ``uint8`` 0/1 matrix. ``split`` maps
    ``"train"``/``"val"``/``"test"`` to row indices for datasets with a published
    split (empty otherwise). ``meta`` holds the ``.npy`` format's meta columns,
    kept apart from the features. ``row_sources`` lists ``(file, n_rows)`` in row
    order, so that load checks can name the file a bad row came from. ``imputed``: the
    ``(row, column)`` cells whose value was missing in the file and was imputed by the
    loader (None: nothing imputed), so that a split can say which of its parts hold them.
    """

    name: str
    X: np.ndarray | sp.csr_matrix
    Y: np.ndarray
    feature_names: list[str]
    label_names: list[str]
    split: dict[str, np.ndarray] = field(default_factory=dict)
    meta: np.ndarray | None = None
    notices: list[str] = field(default_factory=list)
    row_sources: list[tuple[str, int]] = field(default_factory=list)
    imputed: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.X.shape[0] != self.Y.shape[0]:
            raise ValueError(f"{self.name}: X has {self.X.shape[0]} rows, Y has {self.Y.shape[0]}")

    @property
    def n_instances(self) -> int:
        return int(self.Y.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_labels(self) -> int:
        return int(self.Y.shape[1])

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.X)

    def stats(self) -> dict:
        """Summary statistics, as printed by ``benchmark datasets info``."""
        label_counts = self.Y.sum(axis=1)
        distinct = len({row.tobytes() for row in np.packbits(self.Y.astype(bool), axis=1)})
        return {
            "name": self.name,
            "n_instances": self.n_instances,
            "n_features": self.n_features,
            "n_labels": self.n_labels,
            "cardinality": float(label_counts.mean()) if self.n_instances else 0.0,
            "density": float(self.Y.mean()) if self.Y.size else 0.0,
            "n_distinct_labelsets": distinct,
            "n_zero_label_rows": int((label_counts == 0).sum()),
            "sparse": self.is_sparse,
            "split": {part: int(len(idx)) for part, idx in self.split.items()},
        }
