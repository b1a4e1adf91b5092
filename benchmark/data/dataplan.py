"""Driver side: each dataset's fingerprint, split and training subsets, computed once.

The split and the nested fraction subsets depend only on the dataset's files, the split
settings and a seed, so the driver computes them once per run (not once per worker)
and caches them on disk under the cache directory, keyed by the dataset's sha256, the
seeds and the sizes. Jobs then carry plain index arrays.

Which seed draws what depends on the suite's ``resample`` setting (the named source of
the variance that ``±`` and bands show):

- ``model``: one split and one set of subsets (split seed); seeds vary the model only.
- ``subset`` (default): the split is fixed; each seed draws its own nested stratified
  training subset for fractions < 1 (fraction 1 is the whole pool, so there seeds
  vary the model only).
- ``split``: each seed draws its own validation share (and, for datasets without a
  published split, its own stratified train/val/test split) and its own subsets.

``protocol = "reference"`` replaces the stratified subsets by prefixes of the training
index, as the authors' ``--train_ratio`` does (``train_idx[:int(n * ratio)]``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.data.refs import DatasetRef, load_ref
from benchmark.data.sources import DatasetSpec, get_spec, locate, sha256_of
from benchmark.data.splits import make_split, nested_fractions

_SEED_STRIDE = 1_000_003


def mixed_seed(base: int, seed: int) -> int:
    """A seed derived from (base, seed) that differs from ``base`` itself for every seed."""
    return int((base * _SEED_STRIDE + seed + 1) % (2**31 - 1))


@dataclass(frozen=True)
class Parts:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def dataset_fingerprint(entry: DatasetRef, data_dir: str | None) -> dict[str, str]:
    """``{role: sha256}`` of a dataset's files (the catalog's checksums where it has them)."""
    spec = DatasetSpec.from_dict(dict(entry.declaration), Path("/")) if entry.declaration else get_spec(entry.name)
    digests = {}
    for role, ref in sorted(spec.files.items()):
        if ref.sha256:
            digests[role] = ref.sha256
        else:
            local = locate(ref, data_dir)
            digests[role] = sha256_of(local) if local is not None else "missing"
    return digests


class DataPlan:
    """Split and subsets of one dataset under one suite's split settings."""

    def __init__(self, entry: DatasetRef, fingerprint: dict[str, str], data_dir: str | None, split_seed: int,
                 val_size: float, resample: str, prefix_fractions: bool, cache: Path | None):
        self.entry = entry
        self.fingerprint = fingerprint
        self.data_dir = data_dir
        self.split_seed = split_seed
        self.val_size = val_size
        self.resample = resample
        self.prefix_fractions = prefix_fractions
        self.cache = cache
        self._dataset = None
        self._memo: dict[tuple, Parts] = {}

    def data_seed(self, seed: int) -> tuple[int, int]:
        """(split seed, subset seed) used for model seed ``seed``."""
        if self.resample == "model":
            return self.split_seed, self.split_seed
        if self.resample == "subset":
            return self.split_seed, mixed_seed(self.split_seed, seed)
        return mixed_seed(self.split_seed, seed), mixed_seed(self.split_seed, seed)

    def parts(self, fraction: float, seed: int) -> Parts:
        split_seed, subset_seed = self.data_seed(seed)
        key = (round(float(fraction), 6), split_seed, subset_seed)
        if key not in self._memo:
            self._memo[key] = self._cached(*key)
        return self._memo[key]

    def _cache_file(self, fraction: float, split_seed: int, subset_seed: int) -> Path | None:
        if self.cache is None:
            return None
        source = json.dumps([self.entry.name, self.fingerprint, self.val_size, fraction, split_seed,
                             subset_seed, self.prefix_fractions, 1], sort_keys=True)
        return self.cache / f"{self.entry.name}-{hashlib.sha256(source.encode()).hexdigest()[:20]}.npz"

    def _cached(self, fraction: float, split_seed: int, subset_seed: int) -> Parts:
        path = self._cache_file(fraction, split_seed, subset_seed)
        if path is not None and path.exists():
            try:
                with np.load(path) as data:
                    return Parts(data["train"], data["val"], data["test"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is recomputed
        parts = self._compute(fraction, split_seed, subset_seed)
        if path is not None:
            _atomic_savez(path, train=parts.train, val=parts.val, test=parts.test)
        return parts

    def _compute(self, fraction: float, split_seed: int, subset_seed: int) -> Parts:
        if self._dataset is None:
            self._dataset = load_ref(self.entry, self.data_dir)
        split = make_split(self._dataset, seed=split_seed, val_size=self.val_size)
        pool = split.train
        if fraction >= 1:
            train = pool
        elif self.prefix_fractions:
            train = pool[: int(len(pool) * fraction)]
        else:
            train = pool[nested_fractions(self._dataset.Y[pool], [fraction], seed=subset_seed)[fraction]]
        return Parts(np.asarray(train, dtype=np.int64), np.asarray(split.val, dtype=np.int64),
                     np.asarray(split.test, dtype=np.int64))


def _atomic_savez(path: Path, **arrays) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
