"""Where dataset files come from, and turning them into a :class:`MultiLabelDataset`.

The catalog (``datasets/catalog.toml``) names every known dataset, its format, its
files (paths relative to a mirror-like data directory), their public URLs and sha256.
A file is looked for, in order, in

1. the data directory (``--data-dir`` or ``MLCBENCH_DATA_DIR``), laid out like the
   mirror (same relative paths as its ``MANIFEST.tsv``);
2. the bundled copies in ``datasets/bundled/`` (gzip-compressed; their checksum is that
   of the decompressed file, so it equals the catalog's);
3. the user cache (``MLCBENCH_CACHE_DIR`` or the platform's user cache dir) under
   ``files/``;
4. the catalog URL (``MLCBENCH_DOWNLOAD_BASE`` replaces the URL's host part with a
   mirror base URL), unless ``MLCBENCH_OFFLINE=1``.

Every file with a catalog checksum is re-hashed before it is parsed, so a corrupt or
edited file is an error rather than a silently different dataset. Parsed datasets
are cached as ``.npz`` + ``.json`` in the cache dir (never in the data dir, which may
be read-only), keyed by the sha256 of the source files.

The loaders for each format live in ``datasets/<format>.py`` (classes derived from
:class:`DatasetFormat`), found through :mod:`benchmark.modelapi.discovery`.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from benchmark.data.dataset import MultiLabelDataset
from benchmark.errors import (
    BenchmarkError,
    ChecksumError,
    DatasetError,
    UnknownNameError,
)
from benchmark.files import UnusableCacheEntry, atomic_write, warn_unusable
from benchmark.modelapi import discovery
from benchmark.modelapi.discovery import DATASETS_DIR, DATASETS_PACKAGE

CATALOG_PATH = DATASETS_DIR / "catalog.toml"
BUNDLED_DIR = DATASETS_DIR / "bundled"
CHUNK = 1 << 20


# ---------------------------------------------------------------------------- settings


def data_dir_setting(data_dir: str | Path | None = None) -> Path | None:
    """The mirror-like data directory: the argument, else ``MLCBENCH_DATA_DIR``."""
    value = data_dir if data_dir is not None else os.environ.get("MLCBENCH_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """User cache: ``MLCBENCH_CACHE_DIR`` or platformdirs' user cache dir for mlc-bench."""
    return discovery.cache_dir()


def offline() -> bool:
    return os.environ.get("MLCBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes")


# ---------------------------------------------------------------------------- specs


@dataclass
class FileRef:
    """One file of a dataset: its mirror-relative path (or an absolute path for a
    user-declared dataset), and where known its sha256, size and public URL."""

    rel: str
    sha256: str | None = None
    url: str | None = None
    size: int | None = None
    absolute: Path | None = None
    hint: str | None = None  # how to get a file that has no public URL

    @property
    def label(self) -> str:
        return str(self.absolute) if self.absolute else self.rel


@dataclass
class DatasetSpec:
    """A dataset: name, format, files by role (``xml``, ``train``, ...) and parameters."""

    name: str
    format: str
    files: dict[str, FileRef] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)
    description: str = ""
    reference: str = ""

    @classmethod
    def from_dict(cls, d: dict, base_dir: str | Path = ".") -> "DatasetSpec":
        """A dataset declared by paths (suite files, command line); see CONTRACTS.md."""
        d = dict(d)
        try:
            name, fmt = d.pop("name"), d.pop("format")
        except KeyError as exc:
            raise DatasetError(f"dataset declaration needs {exc.args[0]!r}: {d}") from None
        format_cls = get_format(fmt)
        base_dir = Path(base_dir)
        files = {}
        for role in list(d):
            if role in format_cls.file_roles:
                path = Path(d.pop(role)).expanduser()
                path = path if path.is_absolute() else base_dir / path
                files[role] = FileRef(rel=path.name, absolute=path.resolve())
        spec = cls(name=name, format=fmt, files=files, params=d)
        format_cls.check_spec(spec)
        return spec

    def is_available(self, data_dir: str | Path | None = None) -> bool:
        """All files present locally (data dir, bundled or cache): no download needed."""
        return all(locate(ref, data_dir) is not None for ref in self.files.values())


@dataclass(frozen=True)
class CliOption:
    """A ``datasets info`` flag a format adds, stored into ``spec.params[param]``."""

    flag: str
    param: str
    type: type
    help: str


class DatasetFormat:
    """Base class of the per-format loaders in ``datasets/*.py``.

    A subclass sets ``format`` (the catalog's format name) and ``file_roles`` and
    implements :meth:`load`, which receives the spec and the local path of each file.
    ``cache_version`` invalidates parsed caches when the loader's output changes.

    Everything else about a format is a hook with a default here, so that a new
    format is exactly one new file in ``datasets/``: ``cli_options`` (flags of
    ``datasets info``), :meth:`claims_path`/:meth:`spec_from_path` (``datasets info
    PATH``), :meth:`summary` (the ``datasets list`` row) and ``for_benchmarks``
    (False: test data that ``include_available`` suites skip). Every loaded dataset then
    goes through the same checks (:func:`check_dataset`).
    """

    format: ClassVar[str] = ""
    file_roles: ClassVar[tuple[str, ...]] = ()
    cacheable: ClassVar[bool] = True
    cache_version: ClassVar[int] = 1
    for_benchmarks: ClassVar[bool] = True
    cli_options: ClassVar[tuple[CliOption, ...]] = ()

    @classmethod
    def check_spec(cls, spec: DatasetSpec) -> None:
        """Raise DatasetError when the spec lacks something this format needs."""

    @classmethod
    def claims_path(cls, path: Path) -> bool:
        """Whether ``datasets info PATH`` means a dataset of this format."""
        return False

    @classmethod
    def spec_from_path(cls, path: Path, params: dict) -> DatasetSpec:
        """The spec of the dataset at ``path`` (absolute), with command-line ``params``."""
        return DatasetSpec.from_dict({"name": path.stem, "format": cls.format, cls.file_roles[0]: str(path),
                                      **params})

    @classmethod
    def summary(cls, spec: DatasetSpec) -> dict:
        """Instances, features, labels and split of the ``datasets list`` row."""
        pub = spec.published
        split = "none"
        if {"train", "test"} <= set(spec.files):
            sizes = f" {pub['train']}/{pub['test']}" if "train" in pub and "test" in pub else ""
            split = "train/test" + sizes
        return {"instances": pub.get("instances", ""), "features": pub.get("features", ""),
                "labels": pub.get("labels", ""), "split": split}

    def load(self, spec: DatasetSpec, paths: dict[str, Path]) -> MultiLabelDataset:
        raise NotImplementedError


FORMATS = discovery.Registry(DATASETS_PACKAGE, lambda: DatasetFormat, key="format", what="dataset format")


@lru_cache(maxsize=1)
def _scan_formats() -> tuple[dict[str, type[DatasetFormat]], list[discovery.Unavailable]]:
    return FORMATS.scan()


def formats() -> dict[str, type[DatasetFormat]]:
    """Format name -> loader class, from the ``datasets/*.py`` files that import."""
    return dict(_scan_formats()[0])


def unavailable_formats() -> list[discovery.Unavailable]:
    """Files of ``datasets/`` that fail to import, with their reasons."""
    return list(_scan_formats()[1])


def get_format(name: str) -> type[DatasetFormat]:
    table = formats()
    if name not in table:
        broken = "".join(f"; unavailable: {u.path.name} ({u.reason})" for u in unavailable_formats())
        raise DatasetError(f"unknown dataset format {name!r} (known: {', '.join(sorted(table))}){broken}")
    return table[name]


# ---------------------------------------------------------------------------- catalog


def _file_ref(rel: str, files_table: dict) -> FileRef:
    entry = files_table.get(rel, {})
    return FileRef(
        rel=rel,
        sha256=entry.get("sha256"),
        url=entry.get("url"),
        size=entry.get("bytes"),
        hint=entry.get("hint"),
    )


@lru_cache(maxsize=4)
def _read_catalog(path: Path) -> dict[str, DatasetSpec]:
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    files_table = raw.get("files", {})
    specs = {}
    for name, entry in raw.get("datasets", {}).items():
        entry = dict(entry)
        fmt = entry.pop("format")
        file_roles = entry.pop("files", {})
        specs[name] = DatasetSpec(
            name=name,
            format=fmt,
            files={role: _file_ref(rel, files_table) for role, rel in file_roles.items()},
            params=entry.pop("params", {}),
            published=entry.pop("published", {}),
            description=entry.pop("description", ""),
            reference=entry.pop("reference", ""),
        )
    return specs


def catalog() -> dict[str, DatasetSpec]:
    """Every dataset the catalog knows, by name."""
    return dict(_read_catalog(CATALOG_PATH))


def get_spec(name: str) -> DatasetSpec:
    """The catalog entry for ``name`` (case-insensitive); suggests close names if unknown."""
    specs = catalog()
    if name in specs:
        return specs[name]
    lowered = {key.lower(): key for key in specs}
    if name.lower() in lowered:
        return specs[lowered[name.lower()]]
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(lowered[c] for c in close)}?" if close else ""
    raise UnknownNameError(
        f"unknown dataset {name!r}{hint} (`python -m benchmark datasets list` shows all)"
    )


# ---------------------------------------------------------------------------- files


@dataclass
class LocalFile:
    """A file found on this machine. ``gz_copy``: a bundled gzip copy of a plain file."""

    path: Path
    origin: str  # "path", "data-dir", "bundled", "cache"
    gz_copy: bool = False


def downloads_dir() -> Path:
    return cache_dir() / "files"


def locate(ref: FileRef, data_dir: str | Path | None = None) -> LocalFile | None:
    """Where the file is on this machine, in the documented order; None if nowhere."""
    if ref.absolute is not None:
        return LocalFile(ref.absolute, "path") if ref.absolute.is_file() else None
    root = data_dir_setting(data_dir)
    if root is not None and (root / ref.rel).is_file():
        return LocalFile(root / ref.rel, "data-dir")
    bundled = BUNDLED_DIR / (ref.rel + ".gz")
    if bundled.is_file():
        return LocalFile(bundled, "bundled", gz_copy=True)
    cached = downloads_dir() / ref.rel
    if cached.is_file():
        return LocalFile(cached, "cache")
    return None


def sha256_of(local: LocalFile) -> str:
    """sha256 of the file's published bytes (a bundled gzip copy is decompressed)."""
    digest = hashlib.sha256()
    opener = gzip.open if local.gz_copy else open
    try:
        with opener(local.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{local.path}: cannot read ({exc})") from None
    return digest.hexdigest()


def check_file(ref: FileRef, local: LocalFile) -> str:
    """Hash the file; raise ChecksumError when it differs from the catalog's sha256."""
    actual = sha256_of(local)
    if ref.sha256 and actual != ref.sha256:
        raise ChecksumError(
            f"{local.path}: sha256 mismatch (expected {ref.sha256[:12]}..., got {actual[:12]}...): "
            f"the file is corrupt or not the published {ref.rel}; delete it and run "
            f"`python -m benchmark datasets fetch`"
        )
    return actual


def download_url(ref: FileRef) -> str | None:
    base = os.environ.get("MLCBENCH_DOWNLOAD_BASE")
    if base and ref.url:
        return base.rstrip("/") + "/" + ref.rel
    return ref.url


def how_to_get(ref: FileRef, data_dir: str | Path | None = None, dataset: str = "") -> str:
    """One sentence telling the user how to make the file available."""
    root = data_dir_setting(data_dir)
    where = f"{root / ref.rel}" if root else f"<data dir>/{ref.rel} (with --data-dir or MLCBENCH_DATA_DIR)"
    if ref.url:
        return (f"run `python -m benchmark datasets fetch {dataset or '<name>'}` with network access, "
                f"or download {ref.url} to {where}")
    return f"{ref.hint or 'it has no public download URL'}; put it at {where}"


def download(ref: FileRef, target: Path) -> Path:
    """Stream the file to a temp file beside ``target``, check sha256, then move it in.

    Any failure (network, interruption, checksum) removes the temp file: nothing
    half-written is ever left at ``target``.
    """
    url = download_url(ref)
    if url is None:
        raise DatasetError(f"{ref.rel} is not available locally: {how_to_get(ref)}")
    def stream(out) -> None:  # a failure here leaves no file behind (atomic_write)
        digest, size = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if ref.size is not None and size != ref.size:
            raise ChecksumError(f"{url}: got {size} bytes, expected {ref.size} (interrupted download)")
        if ref.sha256 and digest.hexdigest() != ref.sha256:
            raise ChecksumError(
                f"{url}: sha256 mismatch (expected {ref.sha256[:12]}..., got {digest.hexdigest()[:12]}...)"
            )

    try:
        atomic_write(target, stream)
    except BenchmarkError:
        raise
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        raise DatasetError(
            f"downloading {ref.rel} from {url} failed: {exc}; without network access, put the file at "
            f"<data dir>/{ref.rel} and pass --data-dir DIR or set MLCBENCH_DATA_DIR "
            f"(MLCBENCH_OFFLINE=1 never downloads)"
        ) from None
    return target


def fetch_file(ref: FileRef, data_dir=None, into: Path | None = None, dataset: str = "") -> LocalFile:
    """The file's local copy, downloading it (into ``into`` or the cache) if needed."""
    local = locate(ref, data_dir)
    if into is not None and (into / ref.rel).is_file():
        local = LocalFile(into / ref.rel, "data-dir")
    if local is not None:
        return local
    if ref.absolute is not None:
        raise DatasetError(f"{ref.absolute}: file not found")
    if not ref.url:
        raise DatasetError(f"{ref.rel} is not available locally: {how_to_get(ref, data_dir, dataset)}")
    if offline():
        raise DatasetError(
            f"{ref.rel} is not available locally and MLCBENCH_OFFLINE=1 forbids downloading: "
            f"{how_to_get(ref, data_dir, dataset)}"
        )
    target = (into if into is not None else downloads_dir()) / ref.rel
    return LocalFile(download(ref, target), "cache" if into is None else "data-dir")


# ---------------------------------------------------------------------------- parsed cache


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


# ---------------------------------------------------------------------------- loading


def resolve_spec(name_or_spec) -> DatasetSpec:
    if isinstance(name_or_spec, DatasetSpec):
        return name_or_spec
    if isinstance(name_or_spec, dict):
        return DatasetSpec.from_dict(name_or_spec)
    return get_spec(str(name_or_spec))


#: the engine files whose code shapes a parsed dataset (besides the format's own file)
PARSER_FILES = ("arff.py", "dataset.py", "sources.py")


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


# ---------------------------------------------------------------------------- checks


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
