"""What datasets exist: the catalog of public sources, dataset specs and the format registry.

The catalog (``datasets/catalog.toml``) names every known dataset, its format, its files
(paths relative to a mirror-like data directory), their public URLs and sha256. The
loaders for each format live in ``datasets/<format>.py`` (classes derived from
:class:`DatasetFormat`), found through :mod:`benchmark.discovery`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from benchmark import discovery
from benchmark.data.dataset import MultiLabelDataset
from benchmark.discovery import DATASETS_DIR, DATASETS_PACKAGE
from benchmark.errors import (
    DatasetError,
    UnknownNameError,
)

CATALOG_PATH = DATASETS_DIR / "catalog.toml"


BUNDLED_DIR = DATASETS_DIR / "bundled"


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
