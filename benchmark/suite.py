"""Suites: what a benchmark run computes, read from a small TOML file.

The shipped suites live in ``benchmark/suites/`` (smoke, quick, paper, full); any
other TOML file can be given by path. Schema (every key optional except ``name``)::

    name = "smoke"
    datasets = ["emotions", "yeast"]        # required: fetched when missing (unless offline)
    optional_datasets = ["mirflickr"]        # used only when their files are already local
    include_available = false                # also every other catalog dataset available locally
    models = "all"                           # or a list of registered model names
    fractions = [0.5, 1.0]                   # training-set fractions (of the training pool)
    seeds = [0]                              # model seeds; one cell per seed
    trials = 2                               # Optuna trials per (dataset, model, fraction)
    epochs = 5                               # epoch budget of epoch-trained models (omit: model default)
    split_seed = 0                           # seed of the validation split and fraction subsets
    val_size = 0.15                          # validation share of the training file
    device = "auto"                          # auto | cpu | cuda | cuda:i
    workers = 1                              # local worker processes; "auto": one per core (CPU) or GPU
    pruner = "median"                        # median | hyperband | none
    pruner_startup_trials = 3                # MedianPruner: completed trials before pruning
    pruner_warmup_epochs = 2                 # MedianPruner: epochs before a trial can be pruned
    val_grid = [0.05, ..., 0.95]             # thresholds of the "val" protocol (default VAL_GRID)
    oracle_grid = [0.1, ..., 0.9]            # thresholds of the "oracle" protocol

    [[dataset]]                              # a dataset declared by path (DatasetSpec.from_dict)
    name = "mydata"
    format = "mulan"
    xml = "data/mydata.xml"                  # relative to the suite file
    arff = "data/mydata.arff"

    [model.cgmvae]                           # a fixed configuration instead of tuning
    trials = 0
    params = { latent_dim = 64, lr = 0.001 }

The trial budget is the suite's, the same for every model; a model table may only
set ``trials = 0`` (fixed ``params``, no study). Command-line flags override suite
values (:func:`load_suite` keyword arguments). The suite hash is a sha256 of the
resolved content, stored with every result row.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError, ParseError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parent / "suites"

KNOWN_KEYS = {
    "name", "description", "datasets", "optional_datasets", "include_available", "models",
    "fractions", "seeds", "trials", "epochs", "split_seed", "val_size", "device", "pruner",
    "pruner_startup_trials", "pruner_warmup_epochs", "val_grid", "oracle_grid", "dataset", "model",
    "workers",
}
OVERRIDABLE = (
    "datasets", "models", "fractions", "seeds", "trials", "epochs", "device", "split_seed", "val_size",
)


class SuiteError(BenchmarkError):
    """A suite file or an override is invalid."""


@dataclass
class DatasetEntry:
    """A dataset a suite uses: a catalog name, or a declaration by path.

    ``declaration`` is the ``[[dataset]]`` table with paths made absolute, the
    plain data a worker needs to rebuild the spec (``DatasetSpec.from_dict``).
    """

    name: str
    declaration: dict[str, Any] | None = None
    required: bool = True

    def payload(self) -> dict[str, Any]:
        return {"name": self.name, "declaration": self.declaration}


@dataclass
class ModelConfig:
    name: str
    fixed: bool = False  # trials = 0: use ``params`` as they are, no study
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Suite:
    name: str
    datasets: list[DatasetEntry]
    models: list[ModelConfig]
    fractions: list[float]
    seeds: list[int]
    trials: int = 0
    epochs: int | None = None
    split_seed: int = 0
    val_size: float = 0.15
    device: str = "auto"
    pruner: str = "median"
    pruner_startup_trials: int = 3
    pruner_warmup_epochs: int = 2
    val_grid: list[float] | None = None
    oracle_grid: list[float] | None = None
    include_available: bool = False
    workers: int | str = 1  # how to run, not what: not part of the hash
    source: str = ""
    notices: list[str] = field(default_factory=list)

    def model(self, name: str) -> ModelConfig:
        return next(m for m in self.models if m.name == name)

    def resolved(self) -> dict[str, Any]:
        """The content the hash covers: everything that changes what a cell computes."""
        content = asdict(self)
        for key in ("source", "notices", "workers"):
            content.pop(key)
        return content

    @property
    def hash(self) -> str:
        text = json.dumps(self.resolved(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def cells(self) -> list[tuple[str, str, float, int]]:
        """Every (dataset, model, fraction, seed) of the suite, in run order."""
        return [
            (d.name, m.name, f, s)
            for d in self.datasets
            for m in self.models
            for f in self.fractions
            for s in self.seeds
        ]


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def _read_toml(name_or_path: str) -> tuple[dict[str, Any], Path]:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        shipped = SUITES_DIR / f"{name_or_path}.toml"
        if not shipped.exists():
            raise UnknownNameError(
                f"unknown suite {name_or_path!r}; shipped suites: {', '.join(shipped_suites())} "
                "(or give a path to a .toml file)"
            )
        path = shipped
    if not path.exists():
        raise SuiteError(f"suite file not found: {path}")
    try:
        return tomllib.loads(path.read_text()), path.resolve()
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(path, f"invalid TOML: {exc}") from None


def _as_list(value: Any, kind, what: str) -> list:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise SuiteError(f"{what} must be a non-empty list, got {value!r}")
    try:
        return [kind(v.strip() if isinstance(v, str) else v) for v in value]
    except (TypeError, ValueError):
        raise SuiteError(f"{what}: cannot read {value!r} as {kind.__name__} values") from None


def _resolve_models(raw: dict[str, Any], tables: dict[str, Any]) -> list[ModelConfig]:
    from benchmark.model_api import available_models, get_model

    wanted = raw.get("models", "all")
    names = list(available_models()) if wanted == "all" else _as_list(wanted, str, "models")
    configs = []
    for name in names:
        cls = get_model(name)  # unknown names fail here with suggestions
        table = dict(tables.get(name, {}))
        unknown = set(table) - {"trials", "params"}
        if unknown:
            raise SuiteError(f"[model.{name}]: unknown keys {sorted(unknown)} (allowed: trials, params)")
        trials = table.get("trials")
        if trials not in (None, 0):
            raise SuiteError(
                f"[model.{name}]: trials may only be 0 (fixed params); the trial budget is the "
                "suite's and the same for every model"
            )
        params = dict(table.get("params", {}))
        bad = sorted(set(params) - set(cls.defaults))
        if bad:
            raise SuiteError(f"[model.{name}]: unknown hyperparameters {bad}; known: {sorted(cls.defaults)}")
        configs.append(ModelConfig(name=name, fixed=trials == 0, params=params))
    unused = set(tables) - set(names)
    if unused:
        raise SuiteError(f"[model.*] tables for models not in the suite: {sorted(unused)}")
    return configs


def _declared_datasets(tables: list[dict[str, Any]], base_dir: Path) -> list[DatasetEntry]:
    from benchmark.datasource import DatasetSpec

    entries = []
    for table in tables:
        if "name" not in table:
            raise SuiteError("every [[dataset]] table needs a name")
        spec = DatasetSpec.from_dict(dict(table), base_dir)  # validates, fails early
        declaration = dict(table)
        for key, value in table.items():  # paths relative to the suite file become absolute
            if isinstance(value, str) and key not in ("name", "format") and (base_dir / value).exists():
                declaration[key] = str((base_dir / value).resolve())
        entries.append(DatasetEntry(name=spec.name, declaration=declaration))
    return entries


def _resolve_datasets(raw: dict[str, Any], data_dir: str | None, notices: list[str]) -> list[DatasetEntry]:
    from benchmark.datasource import catalog, get_spec

    declared = _declared_datasets(raw.get("dataset", []), Path(raw["_base_dir"]))
    declared_names = {d.name for d in declared}
    entries: list[DatasetEntry] = []
    names = raw.get("datasets", [])
    for name in _as_list(names, str, "datasets") if names else []:
        if name in declared_names:
            continue
        get_spec(name)  # unknown names fail with suggestions
        entries.append(DatasetEntry(name=name))
    entries += declared
    for name in raw.get("optional_datasets", []):
        if any(e.name == name for e in entries):
            continue
        if get_spec(name).is_available(data_dir):
            entries.append(DatasetEntry(name=name, required=False))
        else:
            notices.append(f"skipping dataset {name}: its files are not in the data directory")
    if raw.get("include_available"):
        for name, spec in catalog().items():
            if spec.format == "synthetic":  # generated data is for tests, not for the benchmark
                continue
            if not any(e.name == name for e in entries) and spec.is_available(data_dir):
                entries.append(DatasetEntry(name=name, required=False))
    if not entries:
        raise SuiteError("the suite has no dataset")
    return entries


def _workers(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise SuiteError(f'workers must be a positive integer or "auto", not {value!r}')


def load_suite(name_or_path: str, data_dir: str | None = None, **overrides: Any) -> Suite:
    """Read a shipped suite or a TOML file, apply overrides, resolve names.

    ``overrides`` are the command-line flags (``None`` means "not given"):
    datasets, models, fractions, seeds, trials, epochs, device, split_seed, val_size.
    """
    raw, path = _read_toml(name_or_path)
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        raise SuiteError(f"{path}: unknown keys {sorted(unknown)}")
    bad = set(overrides) - set(OVERRIDABLE)
    if bad:
        raise SuiteError(f"cannot override {sorted(bad)}")
    for key, value in overrides.items():
        if value is not None:
            raw[key] = value
    if overrides.get("datasets") is not None:  # an explicit list replaces the suite's
        raw.pop("optional_datasets", None)
        raw.pop("include_available", None)
        given = set(_as_list(overrides["datasets"], str, "datasets"))
        raw["dataset"] = [t for t in raw.get("dataset", []) if t.get("name") in given]
    raw["_base_dir"] = str(path.parent)
    notices: list[str] = []
    fractions = _as_list(raw.get("fractions", [1.0]), float, "fractions")
    if any(not 0 < f <= 1 for f in fractions):
        raise SuiteError(f"fractions must lie in (0, 1], got {fractions}")
    trials = int(raw.get("trials", 0))
    if trials < 0:
        raise SuiteError("trials must be >= 0")
    epochs = raw.get("epochs")
    if epochs is not None and int(epochs) < 1:
        raise SuiteError("epochs must be >= 1")
    pruner = str(raw.get("pruner", "median"))
    if pruner not in ("median", "hyperband", "none"):
        raise SuiteError(f"pruner must be median, hyperband or none, not {pruner!r}")
    val_size = float(raw.get("val_size", 0.15))
    if not 0 < val_size < 1:
        raise SuiteError("val_size must lie in (0, 1)")
    return Suite(
        name=str(raw.get("name", path.stem)),
        datasets=_resolve_datasets(raw, data_dir, notices),
        models=_resolve_models(raw, raw.get("model", {})),
        fractions=sorted({round(f, 6) for f in fractions}),
        seeds=sorted(set(_as_list(raw.get("seeds", [0]), int, "seeds"))),
        trials=trials,
        epochs=None if epochs is None else int(epochs),
        split_seed=int(raw.get("split_seed", 0)),
        val_size=val_size,
        device=str(raw.get("device", "auto")),
        pruner=pruner,
        pruner_startup_trials=int(raw.get("pruner_startup_trials", 3)),
        pruner_warmup_epochs=int(raw.get("pruner_warmup_epochs", 2)),
        val_grid=[float(t) for t in raw["val_grid"]] if "val_grid" in raw else None,
        oracle_grid=[float(t) for t in raw["oracle_grid"]] if "oracle_grid" in raw else None,
        include_available=bool(raw.get("include_available", False)),
        workers=_workers(raw.get("workers", 1)),
        source=str(path),
        notices=notices,
    )
