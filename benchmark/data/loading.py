"""Turning a dataset's files into a checked :class:`MultiLabelDataset`.

:func:`load_dataset` resolves a name or spec, finds and verifies the files, reads the
parse cache or parses them with the format's loader, and checks what it got (shapes,
non-finite values named by file and row) before anything trains on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.data.catalog import DatasetSpec, get_format, get_spec
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.download import check_file, fetch_file
from benchmark.data.parse_cache import parse_key, read_cache, write_cache
from benchmark.errors import (
    DatasetError,
)


def resolve_spec(name_or_spec) -> DatasetSpec:
    if isinstance(name_or_spec, DatasetSpec):
        return name_or_spec
    if isinstance(name_or_spec, dict):
        return DatasetSpec.from_dict(name_or_spec)
    return get_spec(str(name_or_spec))


def load_dataset(name_or_spec, data_dir: str | Path | None = None, use_cache: bool = True) -> MultiLabelDataset:
    """Load a catalog dataset by name, or a :class:`DatasetSpec` / spec dict.

    Files are found (or downloaded) and checked against their sha256, then parsed by
    the format's loader; the parse is cached in the user cache dir.
    """
    spec = resolve_spec(name_or_spec)
    format_cls = get_format(spec.format)
    format_cls.check_spec(spec)
    paths, hashes = {}, {}
    for role, ref in spec.files.items():
        local = fetch_file(ref, data_dir, dataset=spec.name)
        if ref.sha256 or format_cls.cacheable:
            hashes[role] = check_file(ref, local)
        paths[role] = local.path
    key = None
    if use_cache and format_cls.cacheable:
        key = parse_key(spec, format_cls, hashes)
        cached = read_cache(spec.name, key)
        if cached is not None:
            return cached
    dataset = format_cls().load(spec, paths)
    check_dataset(dataset)
    if key is not None:
        write_cache(dataset, key)
    return dataset


def _locate_row(dataset: MultiLabelDataset, row: int) -> str:
    """``file row r`` for a global row index, from the dataset's ``row_sources``."""
    for path, n_rows in dataset.row_sources:
        if row < n_rows:
            return f"{path}: data row {row + 1}"
        row -= n_rows
    return f"{dataset.name}: row {row + 1}"


def _first_non_finite(X) -> tuple[int, int, int, float] | None:
    """(count, row, column, value) of the first non-finite value in row order, or None."""
    if sp.issparse(X):
        X = X.tocsr()
        bad = ~np.isfinite(X.data)
        if not bad.any():
            return None
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        cells = sorted(zip(rows[bad], X.indices[bad], X.data[bad]))
        row, col, value = cells[0]
        return int(bad.sum()), int(row), int(col), float(value)
    mask = ~np.isfinite(X)
    if not mask.any():
        return None
    row, col = (int(v) for v in np.argwhere(mask)[0])
    return int(mask.sum()), row, col, float(X[row, col])


def check_dataset(dataset: MultiLabelDataset) -> None:
    """Checks every format's output passes, so a bad dataset stops at load, not per cell.

    Non-finite features, overlapping split parts and a label matrix with no positive
    are errors; labels never positive are a warning (a notice).
    """
    found = _first_non_finite(dataset.X)
    if found is not None:
        n_bad, row, col, value = found
        name = dataset.feature_names[col] if col < len(dataset.feature_names) else f"column {col}"
        raise DatasetError(f"{_locate_row(dataset, row)}, feature column {col} ({name}) is {value}: "
                           f"{n_bad} non-finite feature value(s) (NaN/inf); fix or remove them")
    parts = list(dataset.split)
    for i, first in enumerate(parts):
        for second in parts[i + 1:]:
            common = np.intersect1d(dataset.split[first], dataset.split[second])
            if common.size:
                raise DatasetError(f"{dataset.name}: {first} and {second} share {common.size} row(s) "
                                   f"(first: row {int(common[0])}); the split parts must not overlap")
    if dataset.n_instances and dataset.n_labels:
        positives = np.asarray(dataset.Y.sum(axis=0)).ravel()
        if not positives.any():
            raise DatasetError(f"{dataset.name}: no label is ever positive (all {dataset.n_labels} label "
                               "columns are 0): check which columns are labels")
        never = [dataset.label_names[j] for j in np.flatnonzero(positives == 0)]
        if never:
            shown = ", ".join(never[:5]) + (f" and {len(never) - 5} more" if len(never) > 5 else "")
            notice = f"warning: {len(never)} label(s) never positive (they score nothing but count in macro averages): {shown}"
            if notice not in dataset.notices:
                dataset.notices.append(notice)
