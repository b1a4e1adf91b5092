"""Synthetic multi-label data from scikit-learn's ``make_multilabel_classification``.

Cheap, seeded and dependency-free: for tests and smoke runs. Parameters (catalog entry
``synthetic`` or a spec dict): ``n_samples``, ``n_features``, ``n_labels`` (the number
of labels L), ``avg_labels`` (mean labels per row), ``seed`` and ``test_size`` (the
share of rows in the default seeded train/test split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.catalog import DatasetFormat, DatasetSpec
from benchmark.errors import DatasetError

DEFAULTS = {"n_samples": 1000, "n_features": 50, "n_labels": 10, "avg_labels": 2, "seed": 0, "test_size": 0.25}


class SyntheticFormat(DatasetFormat):
    """Generated data; no files."""

    format = "synthetic"
    cacheable = False
    for_benchmarks = False  # generated data is for tests, not for the benchmark

    @classmethod
    def summary(cls, spec: DatasetSpec) -> dict:
        p = {**DEFAULTS, **spec.params}
        return {"instances": p["n_samples"], "features": p["n_features"], "labels": p["n_labels"],
                "split": "seeded train/test"}

    @classmethod
    def check_spec(cls, spec: DatasetSpec) -> None:
        unknown = set(spec.params) - set(DEFAULTS)
        if unknown:
            raise DatasetError(f"dataset {spec.name!r}: unknown synthetic parameter(s) {', '.join(sorted(unknown))}"
                               f" (known: {', '.join(DEFAULTS)})")

    def load(self, spec: DatasetSpec, paths: dict[str, Path]) -> MultiLabelDataset:
        from sklearn.datasets import make_multilabel_classification

        p = {**DEFAULTS, **spec.params}
        X, Y = make_multilabel_classification(
            n_samples=int(p["n_samples"]), n_features=int(p["n_features"]), n_classes=int(p["n_labels"]),
            n_labels=int(p["avg_labels"]), allow_unlabeled=True, random_state=int(p["seed"]),
        )
        order = np.random.default_rng(int(p["seed"])).permutation(len(X))
        n_test = int(round(float(p["test_size"]) * len(X)))
        split = {"train": np.sort(order[n_test:]), "test": np.sort(order[:n_test])} if n_test else {}
        return MultiLabelDataset(
            spec.name, X.astype(np.float32), Y.astype(np.uint8),
            [f"f{i}" for i in range(X.shape[1])], [f"label{i}" for i in range(Y.shape[1])], split=split,
        )
