"""MULAN format: ARFF file(s) (dense or sparse, plain or gzip) plus a label XML file.

The XML decides which attributes are labels, wherever they sit among the attributes.
Features: numeric attributes and ``{0,1}`` nominals are one column each; any other
two-valued nominal (``{YES,NO}``) is one 0/1 column named ``name=<positive value>``;
other nominals are one-hot encoded (``name=value`` columns). ID-like attributes are
dropped with a notice: string/date attributes, and nominals whose rows all hold a
different value (genbase's ``protein``, declared nominal with one value per row, would
otherwise become 662 one-hot columns: genbase has 1185 features, not 3032). ``X`` is CSR when the ARFF rows
are sparse, a dense float32 array otherwise; ``Y`` is dense uint8.

Files: ``xml`` plus either ``train`` and ``test`` (the published split; rows are train
then test) or a single ``arff`` (no published split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.data.arff import ArffData, Attribute, read_arff, read_label_xml
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.sources import DatasetFormat, DatasetSpec
from benchmark.errors import DatasetError, ParseError


def _column(codes, index: int) -> np.ndarray:
    column = codes[:, index]
    return np.asarray(column.toarray()).ravel() if sp.issparse(column) else np.asarray(column)


class MulanFormat(DatasetFormat):
    """Loader for MULAN ARFF + label XML datasets."""

    format = "mulan"
    file_roles = ("xml", "arff", "train", "test")
    cache_version = 2  # 2: ID-like nominals dropped, two-valued nominals one column

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
        sources = [(str(p.path), p.n_rows) for p in parsed]
        return MultiLabelDataset(spec.name, X, Y, feature_names, label_names, split=split, notices=notices,
                                 row_sources=sources)

    @classmethod
    def claims_path(cls, path: Path) -> bool:
        return path.name.endswith((".arff", ".arff.gz"))

    @classmethod
    def spec_from_path(cls, path: Path, params: dict) -> DatasetSpec:
        """``NAME.arff`` (or ``NAME-train.arff`` with ``NAME-test.arff``) and ``NAME.xml`` beside it."""
        stem = path.name.split(".arff")[0]
        base = stem[: -len("-train")] if stem.endswith("-train") else stem
        files = {"xml": path.with_name(base + ".xml")}
        test = path.with_name(base + "-test" + path.name[len(stem):])
        if stem.endswith("-train") and test.exists():
            files.update(train=path, test=test)
        else:
            files["arff"] = path
        if not files["xml"].exists():
            raise DatasetError(f"{path}: a MULAN dataset needs its label file {files['xml']}")
        return DatasetSpec.from_dict({"name": base, "format": cls.format,
                                      **{role: str(p) for role, p in files.items()}, **params})

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
        kept = []  # consecutive runs of directly usable columns, flushed before encoded ones

        def flush():
            if kept:
                blocks.append(codes[:, kept])
                kept.clear()

        def add(dense_column_block):
            flush()
            blocks.append(sp.csr_matrix(dense_column_block) if sp.issparse(codes) else dense_column_block)

        n_binary = 0
        for index, attr in enumerate(attributes):
            if index in label_set:
                continue
            if attr.is_numeric_coded:
                kept.append(index)
                names.append(attr.name)
            elif attr.kind == "nominal" and len(attr.values) == 2:
                positive = _positive_value(attr.values)
                add((_column(codes, index) == attr.values.index(positive)).astype(np.float64)[:, None])
                names.append(f"{attr.name}={positive}")
                n_binary += 1
            elif attr.kind == "nominal" and not _is_id_like(_column(codes, index)):
                column = _column(codes, index)
                add((column[:, None] == np.arange(len(attr.values))[None, :]).astype(np.float64))
                names.extend(f"{attr.name}={value}" for value in attr.values)
            else:
                dropped.append(attr)
        flush()
        if dropped:
            kinds = "/".join(sorted({"ID-like nominal" if a.kind == "nominal" else a.kind for a in dropped}))
            notices.append(f"dropped {len(dropped)} {kinds} attribute(s) (IDs, not features): "
                           f"{', '.join(a.name for a in dropped)}")
        if n_binary:
            notices.append(f"{n_binary} two-valued nominal attribute(s) encoded as one 0/1 column each")
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


POSITIVE_WORDS = ("yes", "y", "true", "t", "1", "+", "pos", "positive")


def _positive_value(values: list[str]) -> str:
    """The value coded 1 in a two-valued nominal: a yes-like word, else the second value."""
    for value in values:
        if value.strip().lower() in POSITIVE_WORDS:
            return value
    return values[1]


ID_MIN_ROWS = 20  # below this, all-distinct values are as likely a small categorical


def _is_id_like(column: np.ndarray) -> bool:
    """A nominal holding a different value in every row (of at least ID_MIN_ROWS): an identifier."""
    present = column[~np.isnan(column)]
    return column.size >= ID_MIN_ROWS and present.size == column.size and np.unique(present).size == column.size
