"""CSV files with named label columns: one header row, one instance per row.

Parameters: ``labels`` (the label column names: a list, or one comma-separated
string as ``datasets info --labels a,b`` gives), optional ``delimiter`` (default
``,``). Files: ``csv`` (no published split) or both ``train`` and ``test`` (rows are
train then test; their headers must match).

Label cells must be 0/1. Numeric feature columns are kept as they are; a non-numeric
column is an ID (dropped with a notice) when every row holds a different value, one
0/1 column when it has two values, and one-hot encoded otherwise. An empty cell is an
error naming the file and line; ``nan``/``inf`` reach the common load checks, which
name the file, row and column.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from benchmark.data.arff import read_text
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.catalog import CliOption, DatasetFormat, DatasetSpec
from benchmark.errors import DatasetError, ParseError

ID_MIN_ROWS = 20  # below this, all-distinct values are as likely a small categorical


def label_list(value) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(name).strip() for name in names if str(name).strip()]


def read_csv(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and each row's line number; ragged rows are errors."""
    reader = csv.reader(read_text(path).splitlines(), delimiter=delimiter)
    header, rows, lines = None, [], []
    for lineno, row in enumerate(reader, start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            continue
        if len(row) != len(header):
            raise ParseError(path, f"{len(row)} values, the header has {len(header)} columns", lineno)
        rows.append([cell.strip() for cell in row])
        lines.append(lineno)
    if header is None:
        raise ParseError(path, "file is empty (no header row)")
    return header, rows, lines


class CsvFormat(DatasetFormat):
    """Loader for CSV files with named label columns."""

    format = "csv"
    file_roles = ("csv", "train", "test")
    cli_options = (CliOption("--labels", "labels", str, "csv format: comma-separated label column names"),)

    @classmethod
    def check_spec(cls, spec: DatasetSpec) -> None:
        if not label_list(spec.params.get("labels")):
            raise DatasetError(f"dataset {spec.name!r} (csv format): give its label columns ('labels')")
        if not ("csv" in spec.files or {"train", "test"} <= set(spec.files)):
            raise DatasetError(f"dataset {spec.name!r} (csv format): give 'csv', or both 'train' and 'test'")

    @classmethod
    def claims_path(cls, path: Path) -> bool:
        return path.name.endswith((".csv", ".csv.gz"))

    def load(self, spec: DatasetSpec, paths: dict[str, Path]) -> MultiLabelDataset:
        delimiter = str(spec.params.get("delimiter", ","))
        parts = ["train", "test"] if "train" in paths else ["csv"]
        blocks = [(paths[part], *read_csv(paths[part], delimiter)) for part in parts]
        header = blocks[0][1]
        for path, other, _, _ in blocks[1:]:
            if other != header:
                raise ParseError(path, f"header differs from that of {blocks[0][0].name}")
        labels = label_list(spec.params["labels"])
        missing = [name for name in labels if name not in header]
        if missing:
            raise DatasetError(f"{blocks[0][0]}: label column(s) {', '.join(missing)} not in the header "
                               f"(columns: {', '.join(header[:10])}{'...' if len(header) > 10 else ''})")
        rows = [row for _, _, block_rows, _ in blocks for row in block_rows]
        where = [(path, line) for path, _, _, block_lines in blocks for line in block_lines]
        Y = self._labels(rows, [header.index(name) for name in labels], labels, where)
        features = [j for j, name in enumerate(header) if name not in labels]
        X, names, notices = self._features(rows, features, header, where)
        split = {}
        if len(blocks) == 2:
            n_train = len(blocks[0][2])
            split = {"train": np.arange(n_train), "test": np.arange(n_train, len(rows))}
        return MultiLabelDataset(spec.name, X, Y, names, labels, split=split, notices=notices,
                                 row_sources=[(str(path), len(block_rows)) for path, _, block_rows, _ in blocks])

    @staticmethod
    def _labels(rows, columns, names, where) -> np.ndarray:
        Y = np.zeros((len(rows), len(columns)), dtype=np.uint8)
        for i, row in enumerate(rows):
            for k, j in enumerate(columns):
                if row[j] not in ("0", "1"):
                    raise ParseError(where[i][0], f"label {names[k]!r} is {row[j]!r}, expected 0 or 1", where[i][1])
                Y[i, k] = row[j] == "1"
        return Y

    @staticmethod
    def _features(rows, columns, header, where):
        blocks, names, dropped, notices = [], [], [], []
        for j in columns:
            values = [row[j] for row in rows]
            for i, value in enumerate(values):
                if value == "":
                    raise ParseError(where[i][0], f"empty value in column {header[j]!r}", where[i][1])
            try:
                blocks.append(np.array([float(v) for v in values], dtype=np.float64)[:, None])
                names.append(header[j])
                continue
            except ValueError:
                pass
            distinct = sorted(set(values))
            if len(values) >= ID_MIN_ROWS and len(distinct) == len(values):
                dropped.append(header[j])
            elif len(distinct) == 2:
                positive = next((v for v in distinct if v.lower() in ("yes", "y", "true", "t", "+")), distinct[1])
                blocks.append(np.array([v == positive for v in values], dtype=np.float64)[:, None])
                names.append(f"{header[j]}={positive}")
            else:
                blocks.append(np.array([[v == d for d in distinct] for v in values], dtype=np.float64))
                names.extend(f"{header[j]}={d}" for d in distinct)
        if dropped:
            notices.append(f"dropped {len(dropped)} ID-like column(s) (a different value in every row): "
                           f"{', '.join(dropped)}")
        X = np.hstack(blocks) if blocks else np.zeros((len(rows), 0))
        return np.ascontiguousarray(X, dtype=np.float32), names, notices
