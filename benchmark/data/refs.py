"""How a run names a dataset, and how a process loads it once.

A :class:`DatasetRef` is a catalog name, or a ``[[dataset]]`` declaration with absolute
paths: the plain data a suite lists, the driver plans splits from and a worker gets in
its job. :func:`load_ref` parses the dataset once per process (the two most recent are
kept), so a worker that runs many jobs of one dataset reads its files once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.data.catalog import DatasetSpec
from benchmark.data.dataset import MultiLabelDataset
from benchmark.data.loading import load_dataset

_LOADED: dict[Any, MultiLabelDataset] = {}
_LOADED_SIZE = 2


@dataclass(frozen=True)
class DatasetRef:
    """A catalog dataset (``declaration`` None) or one declared by path in a suite."""

    name: str
    declaration: dict[str, Any] | None = None

    def spec(self) -> DatasetSpec | str:
        """What :func:`~benchmark.data.loading.load_dataset` takes: a spec, or the catalog name."""
        if self.declaration:
            return DatasetSpec.from_dict(dict(self.declaration), Path("/"))  # paths are absolute already
        return self.name


def load_ref(ref: DatasetRef, data_dir: str | None) -> MultiLabelDataset:
    """The dataset, parsed once per process."""
    key = (ref.name, repr(sorted((ref.declaration or {}).items())), data_dir)
    if key not in _LOADED:
        if len(_LOADED) >= _LOADED_SIZE:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_dataset(ref.spec(), data_dir=data_dir)
    return _LOADED[key]
