"""Parsed datasets kept on disk, so a dataset's files are parsed once per version.

Entries are ``.npz`` + ``.json`` in the cache dir (never in the data dir, which may be
read-only), keyed by the sha256 of the source files and of the parser's code; an
unreadable or implausible entry is warned about once and parsed again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmark.data.catalog import DatasetFormat, DatasetSpec, formats
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.settings import cache_dir
from benchmark.files import UnusableCacheEntry, atomic_write, warn_unusable


def _array_digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _to_arrays(dataset: MultiLabelDataset) -> dict[str, np.ndarray]:
    arrays = {"Y_bits": np.packbits(dataset.Y.astype(bool), axis=1),
              "Y_shape": np.asarray(dataset.Y.shape, dtype=np.int64)}
    if dataset.is_sparse:
        X = dataset.X.tocsr()
        arrays.update(X_data=X.data, X_indices=X.indices, X_indptr=X.indptr,
                      X_shape=np.asarray(X.shape, dtype=np.int64))
    else:
        arrays["X"] = np.asarray(dataset.X)
    for part, index in dataset.split.items():
        arrays[f"split_{part}"] = np.asarray(index, dtype=np.int64)
    if dataset.meta is not None:
        arrays["meta"] = np.asarray(dataset.meta)
    if dataset.imputed is not None:
        arrays["imputed"] = np.asarray(dataset.imputed, dtype=np.int64).reshape(-1, 2)
    return arrays


def _from_arrays(name: str, arrays: dict, info: dict) -> MultiLabelDataset:
    """The dataset an entry holds, after checks that it is one this code could have written."""
    implausible = UnusableCacheEntry
    n, n_labels = (int(v) for v in arrays["Y_shape"])
    if n <= 0 or n_labels <= 0:
        raise implausible(f"label matrix shape {(n, n_labels)}")
    Y = np.unpackbits(arrays["Y_bits"], axis=1, count=n_labels)
    if Y.shape != (n, n_labels):
        raise implausible(f"label matrix has shape {Y.shape}, expected {(n, n_labels)}")
    if "X" in arrays:
        X = arrays["X"]
        if X.ndim != 2 or X.dtype.kind != "f":
            raise implausible(f"feature matrix of shape {X.shape} and dtype {X.dtype}")
    else:
        X = sp.csr_matrix((arrays["X_data"], arrays["X_indices"], arrays["X_indptr"]),
                          shape=tuple(int(v) for v in arrays["X_shape"]))
        X.check_format(full_check=True)
    if X.shape[0] != n:
        raise implausible(f"{X.shape[0]} feature rows for {n} label rows")
    names, labels, notices = info["feature_names"], info["label_names"], info["notices"]
    if not (isinstance(names, list) and isinstance(labels, list) and isinstance(notices, list)
            and all(isinstance(v, str) for v in [*names, *labels, *notices])):
        raise implausible("feature names, label names or notices are not lists of strings")
    if len(names) != X.shape[1] or len(labels) != n_labels:
        raise implausible(f"{len(names)} feature names for {X.shape[1]} columns, "
                          f"{len(labels)} label names for {n_labels} labels")
    split = {}
    for part in info["split_parts"]:
        index = np.asarray(arrays[f"split_{part}"])
        if index.ndim != 1 or index.dtype.kind not in "iu" or (index.size and (index.min() < 0 or index.max() >= n)):
            raise implausible(f"split part {part!r} holds indices outside the {n} rows")
        split[part] = index
    imputed = arrays.get("imputed")
    if imputed is not None and (imputed.ndim != 2 or imputed.shape[1] != 2 or
                                (imputed.size and (imputed.min() < 0 or imputed[:, 0].max() >= n
                                                   or imputed[:, 1].max() >= X.shape[1]))):
        raise implausible("imputed cells outside the matrix")
    return MultiLabelDataset(name, X, Y, names, labels, split=split, meta=arrays.get("meta"),
                             notices=list(notices), imputed=imputed)


def _cache_paths(name: str, key: str) -> tuple[Path, Path]:
    base = cache_dir() / "parsed" / f"{name}-{key[:20]}"
    return base.with_suffix(".npz"), base.with_suffix(".json")


def read_cache(name: str, key: str) -> MultiLabelDataset | None:
    """The cached parse, or None when absent, stale, corrupt or implausible (never trusted
    blindly: the arrays' content hash must equal the one recorded when they were written,
    and the arrays must form a dataset, see :func:`_from_arrays`). An unusable entry is
    warned about once and rebuilt by the caller, which overwrites it."""
    npz_path, json_path = _cache_paths(name, key)
    if not (npz_path.exists() and json_path.exists()):
        return None
    try:
        info = json.loads(json_path.read_text())
        if not isinstance(info, dict):
            raise UnusableCacheEntry(f"the JSON holds a {type(info).__name__}, not an object")
        if info.get("key") != key:
            raise UnusableCacheEntry("its key is not the one it is filed under")
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if _array_digest(arrays) != info["content_sha256"]:
            raise UnusableCacheEntry("content hash mismatch")
        return _from_arrays(name, arrays, info)
    except Exception as exc:  # unreadable or implausible in any way: absent
        warn_unusable(npz_path, "parsed-dataset", exc)
        return None


def write_cache(dataset: MultiLabelDataset, key: str) -> None:
    """Write the parsed dataset (npz first, JSON last: the JSON marks it complete)."""
    npz_path, json_path = _cache_paths(dataset.name, key)
    arrays = _to_arrays(dataset)
    info = {
        "key": key,
        "name": dataset.name,
        "content_sha256": _array_digest(arrays),
        "feature_names": list(dataset.feature_names),
        "label_names": list(dataset.label_names),
        "notices": list(dataset.notices),
        "split_parts": list(dataset.split),
    }
    try:
        npz_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(npz_path, lambda fh: np.savez(fh, **arrays))
        atomic_write(json_path, lambda fh: fh.write(json.dumps(info).encode()))
    except OSError as exc:  # a read-only cache is not an error, just slower
        print(f"warning: cannot write parsed cache in {npz_path.parent} ({exc})", file=sys.stderr)


#: the engine files whose code shapes a parsed dataset (besides the format's own file)
PARSER_FILES = ("arff.py", "dataset.py", "catalog.py", "parse_cache.py", "loading.py")


@lru_cache(maxsize=None)
def parser_code_version(format_cls: type[DatasetFormat]) -> str:
    """sha256 of the code that turns files into a dataset: the format's module and
    :data:`PARSER_FILES`. Part of the parse-cache key, so a changed parser never serves a
    parse of the old one (``cache_version`` alone relied on someone remembering to bump it)."""
    import inspect

    digest = hashlib.sha256()
    digest.update(Path(inspect.getfile(format_cls)).read_bytes())
    for name in PARSER_FILES:
        digest.update((Path(__file__).resolve().parent / name).read_bytes())
    return digest.hexdigest()[:16]


def parse_key(spec: DatasetSpec, format_cls: type[DatasetFormat], hashes: dict[str, str]) -> str:
    """The parse-cache key: format, its version and code, parameters and the files' sha256."""
    key_source = {"format": spec.format, "version": format_cls.cache_version,
                  "code": parser_code_version(format_cls),
                  "params": spec.params, "files": hashes, "name": spec.name}
    return hashlib.sha256(json.dumps(key_source, sort_keys=True, default=str).encode()).hexdigest()


def cached_notices(spec: DatasetSpec) -> list[str] | None:
    """The notices of the dataset's current parse, read from the parse cache without
    parsing or hashing anything (``datasets list``); None when it was not parsed by this
    code yet (or a file has no catalog sha256, so the key needs the file hashed)."""
    table = formats()
    if spec.format not in table or not table[spec.format].cacheable or not spec.files:
        return None
    if any(not ref.sha256 for ref in spec.files.values()):
        return None
    key = parse_key(spec, table[spec.format], {role: ref.sha256 for role, ref in spec.files.items()})
    try:
        info = json.loads(_cache_paths(spec.name, key)[1].read_text())
        notices = info["notices"] if info.get("key") == key else None
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return list(notices) if isinstance(notices, list) and all(isinstance(n, str) for n in notices) else None
