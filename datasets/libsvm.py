"""The LIBSVM multi-label / Extreme Classification Repository text format.

Each row is ``l1,l2,... f:v f:v ...`` (labels, then sparse ``index:value`` features);
a row with no label starts with a feature (or a space). An optional first line
``n_samples n_features n_labels`` (the XC repository's header) gives the dimensions;
without it they come from the params ``n_features``/``n_labels`` or from the largest
index seen. Feature indices are 0-based when the header is present (XC convention),
otherwise 1-based unless an index 0 occurs (LIBSVM convention); the ``zero_based``
param (true/false) overrides. Labels are 0-based. ``X`` is CSR float32.

Files: ``data`` (no published split) or ``train`` and ``test``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.data.arff import read_text
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.catalog import DatasetFormat, DatasetSpec
from benchmark.errors import DatasetError, ParseError


def _header(line: str) -> tuple[int, int, int] | None:
    tokens = line.split()
    if len(tokens) == 3 and ":" not in line and "," not in line and all(t.isdigit() for t in tokens):
        return tuple(int(t) for t in tokens)  # type: ignore[return-value]
    return None


def read_rows(path: Path):
    """Parse one file: (header or None, label lists, feature (index, value) lists, lines)."""
    lines = read_text(path).splitlines()
    header = _header(lines[0]) if lines else None
    labels, features, where = [], [], []
    for lineno, line in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens = line.split()
        row_labels: list[int] = []
        if not line[0].isspace() and ":" not in tokens[0]:
            try:
                row_labels = [int(t) for t in tokens.pop(0).split(",") if t]
            except ValueError:
                raise ParseError(path, f"labels {line.split()[0]!r} are not comma-separated integers", lineno) from None
        row_features = []
        for token in tokens:
            index, sep, value = token.partition(":")
            try:
                row_features.append((int(index), float(value)))
            except ValueError:
                raise ParseError(path, f"feature {token!r} is not index:value", lineno) from None
            if not sep:
                raise ParseError(path, f"feature {token!r} is not index:value", lineno)
        labels.append(row_labels)
        features.append(row_features)
        where.append(lineno)
    if header and header[0] != len(labels):
        raise ParseError(path, f"header says {header[0]} rows, the file has {len(labels)}", 1)
    return header, labels, features, where


class LibsvmFormat(DatasetFormat):
    """Loader for LIBSVM / XC-repository multi-label text files."""

    format = "libsvm"
    file_roles = ("data", "train", "test")

    @classmethod
    def check_spec(cls, spec: DatasetSpec) -> None:
        if not ("data" in spec.files or {"train", "test"} <= set(spec.files)):
            raise DatasetError(f"dataset {spec.name!r} (libsvm format): give 'data', or both 'train' and 'test'")

    @classmethod
    def claims_path(cls, path: Path) -> bool:
        return path.name.endswith((".svm", ".libsvm", ".svmlight", ".txt", ".svm.gz", ".txt.gz"))

    def load(self, spec: DatasetSpec, paths: dict[str, Path]) -> MultiLabelDataset:
        parts = ["train", "test"] if "train" in paths else ["data"]
        parsed = [(paths[part], *read_rows(paths[part])) for part in parts]
        headers = [h for _, h, _, _, _ in parsed if h]
        zero_based = spec.params.get("zero_based")
        if zero_based is None:
            any_zero = any(i == 0 for _, _, _, feats, _ in parsed for row in feats for i, _ in row)
            zero_based = bool(headers) or any_zero
        offset = 0 if zero_based else 1
        n_features = self._dimension("n_features", spec, headers, 1, parsed, lambda p: [i - offset for row in p[3] for i, _ in row])
        n_labels = self._dimension("n_labels", spec, headers, 2, parsed, lambda p: [k for row in p[2] for k in row])
        X_blocks, Y_blocks = [], []
        for path, _, labels, features, where in parsed:
            X_blocks.append(self._matrix(path, features, where, n_features, offset))
            Y_blocks.append(self._label_matrix(path, labels, where, n_labels))
        X = sp.vstack(X_blocks, format="csr").astype(np.float32)
        X.sum_duplicates()
        Y = np.vstack(Y_blocks)
        split = {}
        if len(parsed) == 2:
            n_train = Y_blocks[0].shape[0]
            split = {"train": np.arange(n_train), "test": np.arange(n_train, Y.shape[0])}
        return MultiLabelDataset(spec.name, X, Y, [f"f{j}" for j in range(n_features)],
                                 [f"label{k}" for k in range(n_labels)], split=split,
                                 row_sources=[(str(p[0]), len(p[2])) for p in parsed])

    @staticmethod
    def _dimension(param, spec, headers, position, parsed, indices) -> int:
        if param in spec.params:
            return int(spec.params[param])
        if headers:
            values = {h[position] for h in headers}
            if len(values) > 1:
                raise DatasetError(f"dataset {spec.name!r}: the files' headers disagree on {param}: {sorted(values)}")
            return values.pop()
        seen = [max(indices(p), default=-1) for p in parsed]
        return max(seen) + 1

    @staticmethod
    def _matrix(path, features, where, n_features, offset) -> sp.csr_matrix:
        indptr = np.cumsum([0] + [len(row) for row in features])
        cols = np.array([i - offset for row in features for i, _ in row], dtype=np.int64)
        data = np.array([v for row in features for _, v in row], dtype=np.float64)
        bad = np.flatnonzero((cols < 0) | (cols >= n_features))
        if bad.size:
            row = int(np.searchsorted(indptr, bad[0], side="right") - 1)
            raise ParseError(path, f"feature index {int(cols[bad[0]]) + offset} out of range "
                             f"({n_features} features, {'0' if offset == 0 else '1'}-based)", where[row])
        return sp.csr_matrix((data, cols, indptr), shape=(len(features), n_features))

    @staticmethod
    def _label_matrix(path, labels, where, n_labels) -> np.ndarray:
        Y = np.zeros((len(labels), n_labels), dtype=np.uint8)
        for i, row in enumerate(labels):
            for k in row:
                if not 0 <= k < n_labels:
                    raise ParseError(path, f"label {k} out of range ({n_labels} labels, 0-based)", where[i])
                Y[i, k] = 1
        return Y
