"""The MPVAE/C-GMVAE ``.npy`` format, the format of the C-GMVAE paper's own datasets.

``<name>_data.npy`` is one float matrix whose rows are
``[meta (meta_offset columns)] [labels (label_dim)] [features (feature_dim)]``, and
``<name>_{train,val,test}_idx.npy`` hold row indices of the published split. The
dimensions come from the catalog entry or a spec dict (``DatasetSpec.from_dict``);
a data file whose width differs from ``meta_offset + label_dim + feature_dim`` is an
error, never a silent misalignment. Meta columns (e.g. eBird's) go to
``dataset.meta``, not into ``X``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.catalog import CliOption, DatasetFormat, DatasetSpec, catalog
from benchmark.errors import DatasetError, ParseError

SPLIT_ROLES = {"train": "train_idx", "val": "val_idx", "test": "test_idx"}
DIMENSIONS = ("label_dim", "feature_dim", "meta_offset")


def _load_npy(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        raise ParseError(path, "file is empty")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ParseError(path, f"not a readable .npy array ({exc})") from None


def read_index_file(path: Path, n_rows: int | None = None) -> np.ndarray:
    """A split index file: a 1-d integer array of distinct row indices (in range)."""
    index = _load_npy(Path(path))
    if index.ndim != 1 or not (np.issubdtype(index.dtype, np.integer) or index.size == 0):
        raise ParseError(path, f"expected a 1-d integer index array, got {index.dtype} {index.shape}")
    if index.size and index.min() < 0:
        raise ParseError(path, f"negative row index {int(index.min())}")
    if n_rows is not None and index.size and index.max() >= n_rows:
        raise ParseError(path, f"row index {int(index.max())} out of range (data file has {n_rows} rows)")
    if np.unique(index).size != index.size:
        raise ParseError(path, "repeated row indices")
    return index.astype(np.int64)


class NpyFormat(DatasetFormat):
    """Loader for the ``.npy`` data + index files format."""

    format = "npy"
    file_roles = ("data", "train_idx", "val_idx", "test_idx")
    cacheable = False  # np.load is already as fast as a parsed cache
    cli_options = (
        CliOption("--label-dim", "label_dim", int, ".npy format: number of label columns"),
        CliOption("--feature-dim", "feature_dim", int, ".npy format: number of feature columns"),
        CliOption("--meta-offset", "meta_offset", int, ".npy format: number of leading meta columns"),
    )

    @classmethod
    def claims_path(cls, path: Path) -> bool:
        return path.name.endswith("_data.npy")

    @classmethod
    def spec_from_path(cls, path: Path, params: dict) -> DatasetSpec:
        """``<dir>/<name>_data.npy`` with its index files beside it; dimensions from the
        catalog entry of the same name, overridden by ``params``."""
        stem = path.name[: -len("_data.npy")]
        known = catalog().get(stem)
        merged = dict(known.params) if known is not None and known.format == cls.format else {}
        merged.update(params)
        merged.setdefault("meta_offset", 0)
        if "label_dim" not in merged or "feature_dim" not in merged:
            raise DatasetError(f"{path}: give --label-dim and --feature-dim for a .npy dataset")
        files = {"data": path}
        files.update({role: path.with_name(f"{stem}_{part}_idx.npy") for part, role in SPLIT_ROLES.items()})
        return DatasetSpec.from_dict({"name": stem, "format": cls.format,
                                      **{role: str(p) for role, p in files.items()}, **merged})

    @classmethod
    def summary(cls, spec: DatasetSpec) -> dict:
        pub, params = spec.published, spec.params
        sizes = f" {pub['train']}/{pub['val']}/{pub['test']}" if {"train", "val", "test"} <= set(pub) else ""
        return {"instances": pub.get("instances", ""), "features": pub.get("features", params.get("feature_dim", "")),
                "labels": pub.get("labels", params.get("label_dim", "")), "split": "train/val/test" + sizes}

    @classmethod
    def check_spec(cls, spec: DatasetSpec) -> None:
        missing = [role for role in cls.file_roles if role not in spec.files]
        missing += [dim for dim in DIMENSIONS if dim not in spec.params]
        if missing:
            raise DatasetError(f"dataset {spec.name!r} (npy format) needs {', '.join(missing)}")
        for dim in DIMENSIONS:
            value = spec.params[dim]
            if not isinstance(value, int) or value < 0 or (dim != "meta_offset" and value == 0):
                raise DatasetError(f"dataset {spec.name!r}: {dim} must be a positive integer, got {value!r}")

    def load(self, spec: DatasetSpec, paths: dict[str, Path]) -> MultiLabelDataset:
        label_dim, feature_dim, meta_offset = (int(spec.params[d]) for d in DIMENSIONS)
        data = _load_npy(paths["data"])
        width = meta_offset + label_dim + feature_dim
        if data.ndim != 2 or data.shape[1] != width:
            raise ParseError(
                paths["data"],
                f"shape {data.shape} does not match meta_offset {meta_offset} + label_dim {label_dim} "
                f"+ feature_dim {feature_dim} = {width} columns",
            )
        labels = data[:, meta_offset : meta_offset + label_dim]
        if not np.isin(labels, (0, 1)).all():
            raise ParseError(paths["data"], f"label columns {meta_offset}..{meta_offset + label_dim - 1} "
                             "hold values other than 0/1: check label_dim and meta_offset")
        split = {part: read_index_file(paths[role], data.shape[0]) for part, role in SPLIT_ROLES.items()}
        X = np.ascontiguousarray(data[:, meta_offset + label_dim :], dtype=np.float32)
        meta = np.array(data[:, :meta_offset]) if meta_offset else None
        self._check_disjoint(split, paths)
        return MultiLabelDataset(
            spec.name, X, labels.astype(np.uint8),
            [f"f{i}" for i in range(feature_dim)], [f"label{i}" for i in range(label_dim)],
            split=split, meta=meta, row_sources=[(str(paths["data"]), data.shape[0])],
        )

    @staticmethod
    def _check_disjoint(split: dict[str, np.ndarray], paths: dict[str, Path]) -> None:
        """Overlapping index files would put test rows into training: an error."""
        parts = list(SPLIT_ROLES)
        for i, first in enumerate(parts):
            for second in parts[i + 1:]:
                common = np.intersect1d(split[first], split[second])
                if common.size:
                    raise DatasetError(
                        f"{paths[SPLIT_ROLES[first]]} and {paths[SPLIT_ROLES[second]]} share {common.size} "
                        f"row index(es) (first: {int(common[0])}); the {first} and {second} parts must not overlap")
