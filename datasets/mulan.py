"""MULAN format: ARFF file(s) (dense or sparse, plain or gzip) plus a label XML file.

The XML decides which attributes are labels, wherever they sit among the attributes.
Labels are read by *value*: numeric and ``{0,1}`` label attributes hold 0/1, a nominal
label declared with other values (``{YES,NO}``, ``{true,false}``) is 1 where its value is
a yes-like word (``1``, ``yes``, ``true``...) and 0 where it is a no-like one, whatever
the declared order (the declared index would read ``{YES,NO}`` upside down).
Features: numeric attributes and ``{0,1}`` nominals are one column each; any other
two-valued nominal (``{YES,NO}``) is one 0/1 column named ``name=<positive value>``;
other nominals are one-hot encoded (``name=value`` columns), with a notice naming them.
ID-like attributes are dropped with a notice naming them: string/date attributes, and
nominals that identify rows rather than describe them (:func:`_is_id_like`: almost every
row holds its own value, or the attribute declares about as many values as the dataset
has rows). genbase's ``protein`` is one: 662 declared values for 662 rows, one protein
appearing in both train and test; one-hot encoded it added 662 columns (1,847 features
instead of the published 1,185).

Missing feature values (``?``) are imputed with the column's mean over the published
training file (over all rows when the dataset has no published split), with a notice
saying so; the imputed cells are kept in ``dataset.imputed`` so that a split can say
which of its parts hold them. ``X`` is CSR when the ARFF rows are sparse, a dense
float32 array otherwise; ``Y`` is dense uint8.

Files: ``xml`` plus either ``train`` and ``test`` (the published split; rows are train
then test) or a single ``arff`` (no published split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.data.arff import ArffData, Attribute, read_arff, read_label_xml
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.catalog import DatasetFormat, DatasetSpec
from benchmark.errors import DatasetError, ParseError


def _column(codes, index: int) -> np.ndarray:
    column = codes[:, index]
    return np.asarray(column.toarray()).ravel() if sp.issparse(column) else np.asarray(column)


class MulanFormat(DatasetFormat):
    """Loader for MULAN ARFF + label XML datasets."""

    format = "mulan"
    file_roles = ("xml", "arff", "train", "test")
    cache_version = 3  # 3: robust ID rule, labels by value, mean imputation; 2: ID-like nominals dropped

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
        Y = self._labels(codes, label_index, attributes, parsed, label_names)
        X, feature_names, notices = self._features(codes, attributes, set(label_index))
        split = {}
        if len(parsed) == 2:
            n_train = parsed[0].n_rows
            split = {"train": np.arange(n_train), "test": np.arange(n_train, codes.shape[0])}
        X, imputed, notice = impute_column_means(X, split.get("train"), feature_names)
        if notice:
            notices.append(notice)
        n_zero = int((Y.sum(axis=1) == 0).sum())
        if n_zero:
            notices.append(f"{n_zero} rows have no label (kept)")
        sources = [(str(p.path), p.n_rows) for p in parsed]
        return MultiLabelDataset(spec.name, X, Y, feature_names, label_names, split=split, notices=notices,
                                 row_sources=sources, imputed=imputed)

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
    def _labels(codes, label_index, attributes, parsed, label_names) -> np.ndarray:
        Y = codes[:, label_index]
        by_value = {j: _label_values(attributes[i]) for j, i in enumerate(label_index)
                    if attributes[i].kind == "nominal" and not attributes[i].is_binary_nominal}
        if sp.issparse(Y):  # check the stored values before densifying (delicious: 16M cells)
            Y = sp.csr_matrix(Y)
            if not by_value and ((Y.data == 0) | (Y.data == 1)).all():
                return Y.astype(np.uint8).toarray()
            Y = Y.toarray()
        Y = np.array(Y, dtype=np.float64)
        for j, values in by_value.items():  # declared-value index -> 1/0 by the value's meaning
            column = Y[:, j]
            known = ~np.isnan(column)
            column[known] = values[column[known].astype(np.intp)]
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

        n_binary, one_hot, binary = 0, [], set()
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
                binary.add(attr.name)
                n_binary += 1
            elif attr.kind == "nominal" and not (why := _is_id_like(_column(codes, index), attr)):
                column = _column(codes, index)
                add((column[:, None] == np.arange(len(attr.values))[None, :]).astype(np.float64))
                names.extend(f"{attr.name}={value}" for value in attr.values)
                one_hot.append(attr)
            else:
                dropped.append((attr, why if attr.kind == "nominal" else f"{attr.kind} attribute"))
        flush()
        if dropped:
            notices.append(f"dropped {len(dropped)} ID-like attribute(s) (identifiers, not features): "
                           + "; ".join(f"{a.name} ({why})" for a, why in dropped))
        if one_hot:
            notices.append(f"one-hot encoded {len(one_hot)} nominal attribute(s) into "
                           f"{sum(len(a.values) for a in one_hot)} columns: "
                           + _shown([f"{a.name} ({len(a.values)} values)" for a in one_hot]))
        if n_binary:
            notices.append(f"{n_binary} two-valued nominal attribute(s) encoded as one 0/1 column each "
                           f"(1 = the yes-like value, else the second declared one): "
                           + _shown([f"{n}" for n in names if "=" in n and n.split("=", 1)[0] in binary]))
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
NEGATIVE_WORDS = ("no", "n", "false", "f", "0", "-", "neg", "negative", "-1")


def _shown(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _positive_value(values: list[str]) -> str:
    """The value coded 1 in a two-valued nominal: a yes-like word, else the second value."""
    for value in values:
        if value.strip().lower() in POSITIVE_WORDS:
            return value
    return values[1]


def _label_values(attr: Attribute) -> np.ndarray:
    """For a nominal label attribute, the 0/1 meaning of each declared value (by value, not index)."""
    meaning = []
    for value in attr.values:
        word = value.strip().lower()
        if word in POSITIVE_WORDS:
            meaning.append(1.0)
        elif word in NEGATIVE_WORDS:
            meaning.append(0.0)
        else:
            raise DatasetError(f"label attribute {attr.name!r} is declared {{{','.join(attr.values)}}}: "
                               f"{value!r} is neither a yes-like ({'/'.join(POSITIVE_WORDS)}) nor a no-like "
                               f"({'/'.join(NEGATIVE_WORDS)}) value, so which rows are positive is unknown")
    return np.asarray(meaning)


ID_MIN_ROWS = 20  # below this, all-distinct values are as likely a small categorical
ID_DISTINCT_SHARE = 0.9  # rows holding their own value: "almost all" distinct


def _is_id_like(column: np.ndarray, attr: Attribute) -> str:
    """Why a nominal looks like a row identifier ("" when it does not).

    An identifier, not a feature: in a dataset of at least ID_MIN_ROWS rows, the attribute
    declares at least as many values as there are rows, or at least ID_DISTINCT_SHARE of
    the rows hold a value no other row holds. Requiring *every* row to be distinct (the
    old rule) missed genbase's ``protein``: one protein appears in both train and test.
    """
    n = column.size
    if n < ID_MIN_ROWS:
        return ""
    if len(attr.values) >= n:
        return f"{len(attr.values)} declared values for {n} rows"
    present = column[~np.isnan(column)]
    _, counts = np.unique(present, return_counts=True)
    unique_rows = int((counts == 1).sum())
    if unique_rows >= ID_DISTINCT_SHARE * n:
        return f"{unique_rows} of {n} rows hold a value no other row holds"
    return ""


def impute_column_means(X, train_rows: np.ndarray | None, feature_names: list[str]):
    """Missing values (NaN) replaced by their column's mean over ``train_rows`` (all rows when None).

    Returns ``(X, imputed, notice)``: ``imputed`` the ``(row, column)`` cells replaced
    (None when none), ``notice`` one sentence saying exactly what was done ("" when nothing).
    A column missing in every one of those rows gets 0. For sparse ``X`` the rows' implicit
    zeros count as zeros in the mean (they are zeros in the file).
    """
    n = X.shape[0]
    rows = np.arange(n) if train_rows is None else np.asarray(train_rows)
    if sp.issparse(X):
        X = X.tocsr()
        bad = np.isnan(X.data)
        if not bad.any():
            return X, None, ""
        entry_rows = np.repeat(np.arange(n), np.diff(X.indptr))
        cells = np.stack([entry_rows[bad], X.indices[bad]], axis=1)
        in_rows = np.isin(entry_rows, rows)
        ok = in_rows & ~bad
        sums = np.bincount(X.indices[ok], weights=X.data[ok], minlength=X.shape[1])
        missing = np.bincount(X.indices[in_rows & bad], minlength=X.shape[1])
    else:
        mask = np.isnan(X)
        if not mask.any():
            return X, None, ""
        cells = np.argwhere(mask)
        sub = X[rows]
        sums = np.where(np.isnan(sub), 0.0, sub).sum(axis=0, dtype=np.float64)
        missing = np.isnan(sub).sum(axis=0)
    counts = len(rows) - missing
    means = np.divide(sums, counts, out=np.zeros(X.shape[1]), where=counts > 0)
    if sp.issparse(X):
        X.data[bad] = means[X.indices[bad]]
    else:
        X = X.copy()
        X[mask] = means[cells[:, 1]]
    columns = np.unique(cells[:, 1])
    all_missing = [feature_names[c] for c in columns if counts[c] == 0]
    over = ("the published training file's rows" if train_rows is not None else
            "all rows (no published split: the test rows, drawn later, take part in the mean; "
            "feature values only, never labels)")
    notice = (f"{len(cells)} missing feature value(s) (?) in {len(columns)} column(s) "
              f"({_shown([feature_names[c] for c in columns], 5)}) imputed with the column's mean over {over}, "
              "not 0" + (f"; missing in all of them, set to 0: {_shown(all_missing, 5)}" if all_missing else ""))
    return X, cells.astype(np.int64), notice
