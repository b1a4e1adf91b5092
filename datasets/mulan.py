"""MULAN format: ARFF file(s) (dense or sparse, plain or gzip) plus a label XML file.

The XML decides which attributes are labels, wherever they sit among the attributes.
Features: numeric attributes and ``{0,1}`` nominals are one column each, other
nominals are one-hot encoded (``name=value`` columns), string/date attributes (IDs such
as genbase's ``protein``) are dropped with a notice. ``X`` is CSR when the ARFF rows
are sparse, a dense float32 array otherwise; ``Y`` is dense uint8.

Files: ``xml`` plus either ``train`` and ``test`` (the published split; rows are train
then test) or a single ``arff`` (no published split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.arff import ArffData, Attribute, read_arff, read_label_xml
from benchmark.data import MultiLabelDataset
from benchmark.datasource import DatasetFormat, DatasetSpec
from benchmark.errors import DatasetError, ParseError


def _column(codes, index: int) -> np.ndarray:
    column = codes[:, index]
    return np.asarray(column.toarray()).ravel() if sp.issparse(column) else np.asarray(column)


class MulanFormat(DatasetFormat):
    """Loader for MULAN ARFF + label XML datasets."""

    format = "mulan"
    file_roles = ("xml", "arff", "train", "test")
    cache_version = 1

    @classmethod
    def check_spec(cls, spec: DatasetSpec) -> None:
        roles = set(spec.files)
        if "xml" not in roles:
            raise DatasetError(f"dataset {spec.name!r}: a MULAN dataset needs its label XML file ('xml')")
        if not ("arff" in roles or {"train", "test"} <= roles):
            raise DatasetError(f"dataset {spec.name!r}: give 'arff', or both 'train' and 'test'")

    def load(self, spec: DatasetSpec, paths: dict[str, Path]) -> MultiLabelDataset:
        label_names = read_label_xml(paths["xml"])
        parts = ["train", "test"] if "train" in paths else ["arff"]
        parsed = [read_arff(paths[part]) for part in parts]
        for other in parsed[1:]:
            self._check_same_header(parsed[0], other)
        attributes = parsed[0].attributes
        label_index = self._label_columns(attributes, label_names, paths["xml"], parsed[0].path)
        codes = self._stack([p.codes for p in parsed])
        Y = self._labels(codes, label_index, parsed, label_names)
        X, feature_names, notices = self._features(codes, attributes, set(label_index))
        split = {}
        if len(parsed) == 2:
            n_train = parsed[0].n_rows
            split = {"train": np.arange(n_train), "test": np.arange(n_train, codes.shape[0])}
        n_missing = int(np.isnan(X.data if sp.issparse(X) else X).sum())
        if n_missing:
            notices.append(f"{n_missing} missing feature values (?) replaced by 0")
            if sp.issparse(X):
                X.data = np.nan_to_num(X.data, nan=0.0)
            else:
                X = np.nan_to_num(X, nan=0.0)
        n_zero = int((Y.sum(axis=1) == 0).sum())
        if n_zero:
            notices.append(f"{n_zero} rows have no label (kept)")
        return MultiLabelDataset(spec.name, X, Y, feature_names, label_names, split=split, notices=notices)

    @staticmethod
    def _check_same_header(first: ArffData, other: ArffData) -> None:
        names = [a.name for a in first.attributes]
        if [a.name for a in other.attributes] != names:
            raise ParseError(other.path, f"attributes differ from those of {first.path.name}")

    @staticmethod
    def _label_columns(attributes: list[Attribute], label_names, xml_path, arff_path) -> list[int]:
        position = {a.name: i for i, a in enumerate(attributes)}
        missing = [name for name in label_names if name not in position]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DatasetError(
                f"{xml_path}: {len(missing)} label(s) named in the XML are not attributes of {arff_path}: {shown}"
            )
        return [position[name] for name in label_names]

    @staticmethod
    def _stack(blocks):
        if any(sp.issparse(b) for b in blocks):
            return sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")
        return np.vstack(blocks)

    @staticmethod
    def _labels(codes, label_index, parsed, label_names) -> np.ndarray:
        Y = codes[:, label_index]
        if sp.issparse(Y):  # check the stored values before densifying (delicious: 16M cells)
            Y = sp.csr_matrix(Y)
            if ((Y.data == 0) | (Y.data == 1)).all():
                return Y.astype(np.uint8).toarray()
            Y = Y.toarray()
        Y = np.asarray(Y)
        bad_rows, bad_cols = np.nonzero((Y != 0) & (Y != 1))
        if bad_rows.size:
            row = int(bad_rows[0])
            for block in parsed:  # find the file and line of the offending row
                if row < block.n_rows:
                    raise ParseError(block.path, f"label {label_names[bad_cols[0]]!r} has value "
                                     f"{float(Y[bad_rows[0], bad_cols[0]]):g}, expected 0 or 1",
                                     int(block.row_lines[row]))
                row -= block.n_rows
        return Y.astype(np.uint8)

    @staticmethod
    def _features(codes, attributes: list[Attribute], label_set: set[int]):
        blocks, names, notices, dropped = [], [], [], []
        kept = []  # consecutive runs of directly usable columns, flushed before one-hots

        def flush():
            if kept:
                blocks.append(codes[:, kept] if sp.issparse(codes) else codes[:, kept])
                kept.clear()

        for index, attr in enumerate(attributes):
            if index in label_set:
                continue
            if attr.is_numeric_coded:
                kept.append(index)
                names.append(attr.name)
            elif attr.kind == "nominal":
                flush()
                column = _column(codes, index)
                onehot = (column[:, None] == np.arange(len(attr.values))[None, :]).astype(np.float64)
                blocks.append(sp.csr_matrix(onehot) if sp.issparse(codes) else onehot)
                names.extend(f"{attr.name}={value}" for value in attr.values)
            else:
                dropped.append(attr.name)
        flush()
        if dropped:
            notices.append(f"dropped {len(dropped)} {'/'.join(sorted({a.kind for a in attributes if a.name in dropped}))} "
                           f"attribute(s) (IDs, not features): {', '.join(dropped)}")
        n = codes.shape[0]
        if sp.issparse(codes):
            X = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))
            X = X.astype(np.float32)
            X.eliminate_zeros()
            X.sort_indices()
        else:
            X = np.hstack(blocks) if blocks else np.zeros((n, 0))
            X = np.ascontiguousarray(X, dtype=np.float32)
        return X, names, notices
