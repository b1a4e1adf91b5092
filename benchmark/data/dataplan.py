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
from typing import Iterable

import numpy as np

from benchmark.data.catalog import DatasetSpec, get_spec
from benchmark.data.download import locate, sha256_of
from benchmark.data.refs import DatasetRef, load_ref
from benchmark.data.splits import make_split, nested_fractions
from benchmark.files import UnusableCacheEntry, atomic_write, warn_unusable

MIN_TEST_ROWS = 30  # fewer test rows than this: a warning with the cell's numbers
SPLIT_CACHE_VERSION = 2  # 2: entries also hold the dataset's row count (checked on read)
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


@dataclass(frozen=True)
class DataFacts:
    """What a run plan reads of a dataset, read once when the plan is built."""

    n_rows: int  # training rows of the full pool (the split seed's draw)
    n_features: int
    n_labels: int
    density: float  # share of nonzero features (1 for dense X): sparse-aware models' work follows it
    label_density: float  # share of positive labels (cardinality / labels): a chain's label columns
    notices: tuple[str, ...]  # what reading it changed or found (dropped IDs, imputed values, ...)


class DataPlan:
    """Split and subsets of one dataset under one suite's split settings."""

    @classmethod
    def open(cls, entry: DatasetRef, data_dir: str | None, split_seed: int, val_size: float, resample: str,
             prefix_fractions: bool, cache: Path | None, draws: Iterable[tuple[float, int]] = ()) -> "DataPlan":
        """The data plan with its dataset read, checked and split now (a missing catalog file is
        downloaded), and the parts of every (fraction, seed) in ``draws``: a bad file is one
        error line here, before anything is planned in the store or timed, and the plan, the
        estimate and the runner read :attr:`facts` and :attr:`drawn` afterwards."""
        plan = cls(entry, dataset_fingerprint(entry, data_dir), data_dir, split_seed, val_size, resample,
                   prefix_fractions, cache)
        plan.drawn = {(fraction, seed): plan.parts(fraction, seed) for fraction, seed in draws}
        dataset = plan.dataset()
        X = dataset.X
        density = float(X.nnz) / max(1, X.shape[0] * X.shape[1]) if hasattr(X, "nnz") else 1.0
        plan.facts = DataFacts(len(plan.parts(1.0, split_seed).train), X.shape[1], dataset.Y.shape[1], density,
                               float(dataset.Y.mean()) if dataset.Y.size else 0.0, tuple(dataset.notices))
        return plan

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
        self.facts: DataFacts | None = None  # set by :meth:`open`
        self.drawn: dict[tuple[float, int], Parts] = {}  # (fraction, seed) -> its parts, drawn by :meth:`open`

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

    def dataset(self):
        """The dataset itself (parsed once per process; the split cache spares a run this)."""
        if self._dataset is None:
            self._dataset = load_ref(self.entry, self.data_dir)
        return self._dataset

    def warnings(self, fraction: float, seed: int) -> list[str]:
        """What a reader of the cell (fraction, seed)'s numbers must be told, one sentence each:
        a test set under :data:`MIN_TEST_ROWS` rows, labels positive in the test set but never
        in the training rows, imputed feature values in the split's rows. [] when none.

        The runner stores these with the cell and prints them:
        ``group.data.warnings(group.fraction, seed)``. Computed once per (split, subset)."""
        split_seed, subset_seed = self.data_seed(seed)
        key = ("warnings", round(float(fraction), 6), split_seed, subset_seed)
        if key not in self._memo:
            self._memo[key] = split_warnings(self.dataset(), self.parts(fraction, seed), fraction)
        return list(self._memo[key])

    def _cache_file(self, fraction: float, split_seed: int, subset_seed: int) -> Path | None:
        if self.cache is None:
            return None
        source = json.dumps([self.entry.name, self.fingerprint, self.val_size, fraction, split_seed,
                             subset_seed, self.prefix_fractions, SPLIT_CACHE_VERSION], sort_keys=True)
        return self.cache / f"{self.entry.name}-{hashlib.sha256(source.encode()).hexdigest()[:20]}.npz"

    def _cached(self, fraction: float, split_seed: int, subset_seed: int) -> Parts:
        path = self._cache_file(fraction, split_seed, subset_seed)
        if path is not None and path.exists():
            try:
                return read_parts(path)
            except Exception as exc:  # noqa: BLE001 - truncated, garbage or implausible: absent
                warn_unusable(path, "split", exc)
        parts = self._compute(fraction, split_seed, subset_seed)
        if path is not None:
            _save_parts(path, train=parts.train, val=parts.val, test=parts.test,
                          n_rows=np.asarray(self.dataset().n_instances, dtype=np.int64))
        return parts

    def _compute(self, fraction: float, split_seed: int, subset_seed: int) -> Parts:
        self.dataset()
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


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def split_warnings(dataset, parts: Parts, fraction: float = 1.0) -> list[str]:
    """The warnings of :meth:`DataPlan.warnings` for one dataset and its parts."""
    import scipy.sparse as sp

    out = []
    n_test = len(parts.test)
    if n_test < MIN_TEST_ROWS:
        out.append(f"the test set has only {n_test} rows (fewer than {MIN_TEST_ROWS}): one row moves a "
                   f"per-example metric by up to {1 / max(n_test, 1):.0%}, so differences between models "
                   "are mostly noise")
    Y = dataset.Y
    count = (lambda rows: np.asarray(Y[rows].sum(axis=0)).ravel()) if sp.issparse(Y) else \
        (lambda rows: np.asarray(Y[rows]).sum(axis=0))
    unseen = np.flatnonzero((count(parts.test) > 0) & (count(parts.train) == 0))
    if unseen.size:
        rows = f"{len(parts.train)} training rows" + (f" (fraction {fraction:g})" if fraction < 1 else "")
        out.append(f"{unseen.size} label(s) positive in the test set but never in the {rows}: "
                   f"{_names([dataset.label_names[j] for j in unseen])}; no model can learn them, "
                   "they count (near 0) in macro-F1")
    imputed = getattr(dataset, "imputed", None)
    if imputed is not None and len(imputed):
        rows = np.asarray(imputed)[:, 0]
        per_part = {name: int(np.isin(rows, getattr(parts, name)).sum()) for name in ("train", "val", "test")}
        if any(per_part.values()):
            out.append(f"{sum(per_part.values())} feature value(s) of this split were missing and imputed "
                       f"(train {per_part['train']}, validation {per_part['val']}, test {per_part['test']}); "
                       "how: the dataset's notice")
    return out


def read_parts(path: Path) -> Parts:
    """A cached split, checked: three 1-D integer index arrays within the dataset's rows
    (``n_rows``, stored beside them), without repeats, disjoint, train and test non-empty.
    Raises on anything else (a truncated file raises ``zipfile.BadZipFile`` or ``EOFError``)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: np.asarray(data[name]) for name in ("train", "val", "test", "n_rows")}
    n_rows = arrays.pop("n_rows")
    if n_rows.shape != () or n_rows.dtype.kind not in "iu" or int(n_rows) <= 0:
        raise UnusableCacheEntry(f"n_rows is {n_rows!r}")
    n_rows = int(n_rows)
    for name, index in arrays.items():
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise UnusableCacheEntry(f"{name} is a {index.dtype} array of shape {index.shape}, not row indices")
        if index.size and (index.min() < 0 or index.max() >= n_rows):
            raise UnusableCacheEntry(f"{name} holds indices outside the dataset's {n_rows} rows")
        if np.unique(index).size != index.size:
            raise UnusableCacheEntry(f"{name} repeats rows")
    if not arrays["train"].size or not arrays["test"].size:
        raise UnusableCacheEntry("an empty train or test part")
    together = np.concatenate(list(arrays.values()))
    if np.unique(together).size != together.size:
        raise UnusableCacheEntry("its parts share rows")
    return Parts(*(arrays[name].astype(np.int64) for name in ("train", "val", "test")))


def _save_parts(path: Path, **arrays) -> None:
    """Cache a split; a cache that cannot be written only costs a recomputation."""
    try:
        atomic_write(path, lambda fh: np.savez(fh, **arrays))
    except OSError:
        pass
