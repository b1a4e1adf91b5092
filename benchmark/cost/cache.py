"""Reference timings on disk, one JSON file per machine, shared by concurrent runs.

Keyed by machine (CPU model, threads), code version (the sha256 of the model file and
of the engine files a fit runs, ``FIT_ENGINE``), the reference's dataset (its files'
sha256) and fixed settings, so a second dry run is instant. An unreadable or implausible
entry is recalibrated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import math
from pathlib import Path
from typing import Any, Callable

from benchmark import discovery
from benchmark.cost.formula import Probe, Reference, SpaceFactor
from benchmark.files import UnusableCacheEntry, atomic_write, warn_unusable
from benchmark.store import provenance

# 7: tuned logistic spaces timed by fits alone on up to 1024 rows, 16-row warm-ups; 6: networks
# probed after a warm-up fit, tuned logistic spaces timed; 5: small fits counted at the labels
# their rows vary; 4: one reference timing per model
CACHE_VERSION = 7


#: the engine files a fit executes (besides the model's own file): a change to one of them
#: can change a fit's cost, a change to the driver, the suite reader or the report cannot
FIT_ENGINE = ("execution/worker.py", "modelapi/base.py", "modelapi/torch_training.py", "modelapi/torch_device.py",
              "modelapi/torch_loop.py", "modelapi/torch_layers.py", "modelapi/epoch_selection.py",
              "modelapi/sklearn_utils.py", "evaluation/metrics.py", "evaluation/thresholds.py",
              "data/dataset.py", "data/splits.py")


def _code_version(model_cls: type) -> str:
    digest = hashlib.sha256()
    digest.update(Path(inspect.getfile(model_cls)).read_bytes())
    for name in FIT_ENGINE:
        digest.update((discovery.REPO_ROOT / "benchmark" / name).read_bytes())
    return digest.hexdigest()[:16]


def _machine(threads: int) -> str:
    return f"{provenance.device_name('cpu')}|threads={threads}"


class CostCache:
    """Reference timings on disk, one JSON file per machine, shared by concurrent runs."""

    def __init__(self, directory: Path, threads: int, gpu: str = ""):
        self.threads = threads
        self.gpu = gpu  # the GPU's name: GPU calibrations (wall seconds) belong to it
        self.path = directory / f"cost-{hashlib.sha256(_machine(threads).encode()).hexdigest()[:12]}.json"
        self.entries = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            entries = json.loads(self.path.read_bytes())
            if not isinstance(entries, dict):
                raise UnusableCacheEntry(f"a JSON {type(entries).__name__}, not an object")
        except FileNotFoundError:
            return {}
        except Exception as exc:  # noqa: BLE001 - unreadable in any way: absent, recalibrated
            warn_unusable(self.path, "cost", exc)
            return {}
        return entries if entries.get("_version") == CACHE_VERSION else {}

    def _entry(self, cls, key: str):
        """A cached calibration, or None when absent or implausible (negative, not finite)."""
        entry = self.entries.get(key)
        if not entry:
            return None
        try:
            value = cls(**entry)
            numbers = [v for v in dataclasses.astuple(value) if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if not all(math.isfinite(v) and v >= 0 for v in numbers):
                raise UnusableCacheEntry(f"{key}: a negative or non-finite number")
            return value
        except (TypeError, ValueError) as exc:
            warn_unusable(f"{self.path} [{key}]", "cost", exc)
            self.entries.pop(key, None)
            return None

    def key(self, group) -> str:
        content = [group.data.fingerprint, group.model.base, group.model.params, _code_version(group.model.cls),
                   group.data.split_seed, group.data.val_size, group.model.resource]
        if group.model.resource == "gpu":
            content.append(self.gpu)
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def get(self, group) -> Reference | None:
        return self._entry(Reference, self.key(group))

    def reference(self, group, measure: Callable[[], Reference]) -> Reference:
        """The model's reference timing on ``group``: cached, or measured now and cached."""
        return self._get_or_measure(Reference, self.key(group), measure)

    def probe(self, group, measure: Callable[[], Probe]) -> Probe:
        """The formula's correction on ``group``'s dataset: cached, or measured now and cached."""
        return self._get_or_measure(Probe, "probe-" + self.key(group), measure)

    def space_factor(self, group, grid: list[dict[str, Any]], measure: Callable[[], SpaceFactor]) -> SpaceFactor:
        """``group``'s dataset's cost factor over ``grid`` (the cost-blind hyperparameters'
        points): cached, or measured now and cached."""
        points = hashlib.sha256(json.dumps(grid, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return self._get_or_measure(SpaceFactor, f"space-{self.key(group)}-{points}", measure)

    def _get_or_measure(self, cls, key: str, measure):
        value = self._entry(cls, key)
        if value is None:
            value = measure()
            self.put_entry(key, dataclasses.asdict(value))
        return value

    def put_entry(self, key: str, entry: dict[str, Any]) -> None:
        """Merge one calibration into the file under a lock, written whole by a rename.

        Two runs on one machine (a dry run beside a run, two users) each add theirs: a
        plain rewrite from this process's memory would drop what the other one added since
        (tens of minutes of calibration on the paper suite).
        """
        self.entries[key] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.path.with_suffix(".lock")):
            merged = {**self._read(), **self.entries, "_version": CACHE_VERSION}
            atomic_write(self.path, lambda fh: fh.write(json.dumps(merged, indent=1, sort_keys=True).encode()))
        self.entries = merged


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock (POSIX ``flock``); without fcntl, no lock (the rename
    still keeps the file whole, but a concurrent calibration may be lost)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
