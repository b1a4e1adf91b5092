"""Suites: what a benchmark run computes, read from a small TOML file.

The shipped suites live in ``benchmark/suites/`` (smoke, quick, paper, full, ablation);
any other TOML file can be given by path. A suite is validated completely when it is
loaded (types and ranges of every field, fixed hyperparameters against each model's
declared types and search space, files of ``[[dataset]]`` declarations): a bad suite
stops with one line before anything is planned or stored. Schema (every key optional
except ``name``)::

    name = "smoke"
    datasets = ["emotions", "yeast"]        # required: fetched when missing (unless offline)
    optional_datasets = ["mirflickr"]        # used only when their files are already local
    include_available = false                # also every other catalog dataset available locally
    models = "all"                           # or a list of model names (registered or declared below)
    fractions = [0.5, 1.0]                   # training-set fractions (of the training pool)
    seeds = [0]                              # model seeds; one cell per seed
    trials = 2                               # Optuna trials per (dataset, model, fraction)
    budget = "30m"                           # optional time budget per study (s, m, h); stops asking
    epochs = 5                               # epoch budget of epoch-trained models (omit: model default)
    split_seed = 0                           # seed of the validation split and fraction subsets
    val_size = 0.15                          # validation share of the training file
    resample = "subset"                      # model | subset | split: what a seed redraws (dataplan.py)
    protocol = "harness"                     # harness | reference (the authors' code, see below)
    objective = "mean_f1"                    # mean_f1 | maF1 | miF1 | ebF1 (validation, best thresholds)
    device = "auto"                          # auto | cpu | cuda | cuda:i
    workers = 1                              # local worker processes; "auto": one per core (CPU) or GPU
    pruner = "median"                        # median | hyperband | none
    pruner_startup_trials = 3                # MedianPruner: completed trials before pruning
    pruner_warmup_epochs = 2                 # MedianPruner: epochs before a trial can be pruned
    val_grid = [0.05, ..., 0.95]             # thresholds of the "val" protocol (default VAL_GRID)
    oracle_grid = [0.1, ..., 0.9]            # thresholds of the "oracle" protocol
    halving = { min_rows = 1000, factor = 3, startup = 3 }   # successive halving over training
                                             # rows for tuning (off when absent; halving.py)

    [[dataset]]                              # a dataset declared by path (DatasetSpec.from_dict)
    name = "mydata"
    format = "mulan"
    xml = "data/mydata.xml"                  # relative to the suite file
    arff = "data/mydata.arff"

    [model.cgmvae]                           # a fixed configuration instead of tuning
    trials = 0
    params = { latent_dim = 64, lr = 0.001 }

    [model.mpvae]                            # the model's published per-dataset settings, fixed,
    reference = true                         # except the hyperparameters listed in `tune`
    tune = ["lr", "dropout", "weight_decay"]

    [model.lamp.datasets.delicious]          # settings for one dataset only, over the model's
    params = { label_block = 64, epochs = 20 }   # own table (a dataset not named keeps those);
    tune = ["lr", "dropout"]                 # a dataset's `tune` replaces the model's

    [model."cgmvae-nocl"]                    # a named variant: another model's code, own settings
    base = "cgmvae"
    params = { contrastive_weight = 0.0 }    # fixed; the rest of the base's space is tuned

    [model.br]
    halving = false                          # this model tunes on all rows (or its own table)

``halving`` tunes by successive halving over training rows (:mod:`benchmark.execution.halving`):
trials start on ``min_rows`` stratified training rows and the better ones are refitted on
``factor`` times more, up to all rows; the seeds of the chosen configuration always train
on all rows. It applies to a (dataset, model) only where the training rows allow more
than one rung, and is then part of its cells' identity; elsewhere it changes nothing.

``protocol = "reference"`` reproduces the authors' evaluation code: training fractions
are prefixes of the training index, the oracle grid is the nine points 0.1..0.9, models
keep the checkpoint with the best validation macro-F1 on that grid, and features are not
standardised (for models that declare ``standardize`` / ``epoch_selection``).

The trial budget is the suite's, the same for every model; a model table may only set
``trials = 0`` (fixed ``params``, no study). Command-line flags override suite values
(:func:`load_suite` keyword arguments). The suite hash is a sha256 of the resolved
content; each cell's own identity is in :mod:`benchmark.store.identity`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.data.catalog import DatasetSpec, catalog, get_format, get_spec
from benchmark.data.download import is_available
from benchmark.data.refs import DatasetRef
from benchmark.errors import BenchmarkError, ParseError, UnknownNameError
from benchmark.evaluation.thresholds import ORACLE_GRID, VAL_GRID
from benchmark.execution.halving import Halving
from benchmark.lazy import lazy
from benchmark.modelapi.base import get_model, model_declarations
from benchmark.vocabulary import (
    DEVICE_CHOICES,
    OBJECTIVES,
    PRUNERS,
    RESAMPLE_MODES,
    SPLIT_PROTOCOLS,
    parse_device,
)

optuna = lazy("optuna")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parents[1] / "suites"

KNOWN_KEYS = {
    "name", "description", "datasets", "optional_datasets", "include_available", "models",
    "fractions", "seeds", "trials", "epochs", "split_seed", "val_size", "device", "pruner",
    "pruner_startup_trials", "pruner_warmup_epochs", "val_grid", "oracle_grid", "dataset", "model",
    "workers", "objective", "resample", "protocol", "budget", "halving",
}
MODEL_TABLE_KEYS = {"trials", "params", "base", "tune", "reference", "datasets", "halving"}
HALVING_KEYS = {"min_rows", "factor", "startup"}
DATASET_TABLE_KEYS = {"params", "tune"}
OVERRIDABLE = (
    "datasets", "models", "fractions", "seeds", "trials", "epochs", "device", "split_seed", "val_size", "workers",
)


class SuiteError(BenchmarkError):
    """A suite file or an override is invalid."""


@dataclass
class ModelConfig:
    """One model column of a suite: a registered model, or a named variant of one."""

    name: str
    base: str = ""  # the registered model whose code runs (= name unless a variant)
    fixed: bool = False  # trials = 0: use ``params`` as they are, no study
    params: dict[str, Any] = field(default_factory=dict)
    tune: list[str] | None = None  # only these are searched (None: the whole space)
    reference: bool = False  # start from the model's per-dataset reference settings
    datasets: dict[str, DatasetSettings] = field(default_factory=dict)  # per-dataset overrides
    halving: Halving | bool | None = None  # None: the suite's; False: off; a Halving: its own
    cls: type | None = field(default=None, compare=False, repr=False)  # the base's class, resolved once; not hashed

    def __post_init__(self) -> None:
        self.base = self.base or self.name
        if self.cls is None:  # load_suite passes the class it checked the params against
            self.cls = get_model(self.base)


@dataclass
class DatasetSettings:
    """A model's settings on one dataset (``[model.NAME.datasets.DATASET]``)."""

    params: dict[str, Any] = field(default_factory=dict)
    tune: list[str] | None = None


@dataclass
class Suite:
    name: str
    datasets: list[DatasetRef]
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
    objective: str = "mean_f1"
    resample: str = "subset"
    protocol: str = "harness"
    budget_seconds: float | None = None
    halving: Halving | None = None  # successive halving over training rows when tuning (off: None)
    include_available: bool = False
    workers: int | str = 1  # how to run, not what: not part of the hash
    source: str = ""
    notices: list[str] = field(default_factory=list)
    # the grids resolved once (the defaults where the suite gives none); the hash covers the given ones
    val_thresholds: tuple[float, ...] = field(init=False)
    oracle_thresholds: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.val_thresholds = tuple(float(t) for t in (self.val_grid if self.val_grid is not None else VAL_GRID))
        oracle = self.oracle_grid if self.oracle_grid is not None else ORACLE_GRID  # the reference's nine points too
        self.oracle_thresholds = tuple(float(t) for t in oracle)

    def model(self, name: str) -> ModelConfig:
        return next(m for m in self.models if m.name == name)

    def resolved_val_grid(self) -> list[float]:
        return list(self.val_thresholds)

    def resolved_oracle_grid(self) -> list[float]:
        return list(self.oracle_thresholds)

    def resolved(self) -> dict[str, Any]:
        """The content the hash covers: everything that changes what a cell computes."""
        content = asdict(self)
        for key in ("source", "notices", "workers", "val_thresholds", "oracle_thresholds"):
            content.pop(key)
        if content["halving"] is None:  # suites without halving keep the hash they had
            content.pop("halving")
        for model in content["models"]:
            model.pop("cls")
            if model["halving"] is None:
                model.pop("halving")
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
            close = difflib.get_close_matches(name_or_path, shipped_suites(), n=2, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UnknownNameError(
                f"unknown suite {name_or_path!r}{hint}; shipped suites: {', '.join(shipped_suites())} "
                "(or give a path to a .toml file)"
            )
        path = shipped
    if not path.exists():
        raise SuiteError(f"suite file not found: {path}")
    try:
        return tomllib.loads(path.read_text()), path.resolve()
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(path, f"invalid TOML: {exc}") from None


# ----------------------------------------------------------------------------- field checks

def _as_list(value: Any, kind, what: str) -> list:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise SuiteError(f"{what} must be a non-empty list, got {value!r}")
    try:
        items = [_convert(v.strip() if isinstance(v, str) else v, kind) for v in value]
    except (TypeError, ValueError):
        raise SuiteError(f"{what}: cannot read {value!r} as {kind.__name__} values") from None
    return items


def _convert(value: Any, kind):
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if kind is float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    return kind(value)


def _integer(raw: dict, key: str, default: int | None, minimum: int | None = None, where: str = "") -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    name = f"{where}: {key}" if where else key
    try:
        number = _convert(value, int)
    except (TypeError, ValueError):
        raise SuiteError(f"{name} must be an integer, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise SuiteError(f"{name} must be >= {minimum}, not {number}")
    return number


def _choice(raw: dict, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = raw.get(key, default)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SuiteError(f"{key} must be one of {', '.join(choices)}, not {value!r}{hint}")
    return str(value)


def _grid(raw: dict, key: str) -> list[float] | None:
    if key not in raw:
        return None
    values = _as_list(raw[key], float, key)
    if any(not 0 < t < 1 for t in values):
        raise SuiteError(f"{key}: thresholds must lie strictly between 0 and 1, got {values}")
    return sorted(set(values))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_duration(value: Any) -> float | None:
    """``"30m"``, ``"2h"``, ``"90s"`` or a number of seconds; None for no budget."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise SuiteError(f'budget must be a positive duration such as "30m", "2h" or "90s", not {value!r}')
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _workers(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise SuiteError(f'workers must be a positive integer or "auto", not {value!r}')


def _device(value: Any) -> str:
    try:
        return parse_device(value)
    except BenchmarkError:
        raise SuiteError(f"device must be {DEVICE_CHOICES}, not {value!r}") from None


# ----------------------------------------------------------------------------- models

def check_param(model: str, cls, name: str, value: Any) -> None:
    """A fixed hyperparameter against the model's declared default type and search space."""
    default = cls.defaults[name]
    dist = cls.search_space.get(name)

    def fail(expected: str):
        raise SuiteError(f"[model.{model}] {name} = {value!r}: expected {expected}")

    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        if value not in dist.choices:
            fail(f"one of {list(dist.choices)}")
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail("true or false")
    elif isinstance(default, int) or isinstance(dist, optuna.distributions.IntDistribution):
        if isinstance(value, bool) or not isinstance(value, int):
            fail("an integer")
    elif isinstance(default, float) or isinstance(dist, optuna.distributions.FloatDistribution):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("a number")
    elif isinstance(default, str) and not isinstance(value, str):
        fail("a string")
    low = getattr(dist, "low", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        integer = isinstance(default, int) and not isinstance(default, bool)
        if integer and ((low is not None and low >= 1) or (dist is None and default > 0)) and value < 1:
            fail(f"an integer >= 1 (its default is {default})")  # epochs, sizes, counts
        if integer and dist is None and default == 0 and value < 0:  # 0 = "off" / "as the model says"
            fail("an integer >= 0 (its default is 0)")  # lamp's label_block, mpvae's rank
        if low is not None and low >= 0 and value < 0:
            fail(f"a number >= 0 (its search space is {low}..{dist.high})")


def _model_config(name: str, table: dict[str, Any], declared: frozenset[str] = frozenset()) -> ModelConfig:
    unknown = set(table) - MODEL_TABLE_KEYS
    if unknown:
        raise SuiteError(f"[model.{name}]: unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(MODEL_TABLE_KEYS))})")
    base = str(table.get("base", name))
    cls = get_model(base)  # an unknown base fails with suggestions
    trials = table.get("trials")
    if trials not in (None, 0) or isinstance(trials, bool):
        raise SuiteError(f"[model.{name}]: trials may only be 0 (fixed params); the trial budget is the "
                         "suite's and the same for every model")
    params = _params_table(f"[model.{name}]", name, cls, table.get("params", {}))
    tune = _tune_list(f"[model.{name}]", base, cls, table.get("tune"))
    per_dataset = table.get("datasets", {})
    if not isinstance(per_dataset, dict):
        raise SuiteError(f"[model.{name}] datasets must be tables [model.{name}.datasets.NAME], not {per_dataset!r}")
    datasets = {dataset: _dataset_settings(name, base, cls, dataset, sub, declared)
                for dataset, sub in per_dataset.items()}
    halving = _halving(table["halving"], f"[model.{name}] halving", allow_false=True) if "halving" in table else None
    reference = table.get("reference", False)
    if not isinstance(reference, bool):
        raise SuiteError(f"[model.{name}] reference must be true or false, not {reference!r}")
    if reference and not hasattr(cls, "reference_params"):
        raise SuiteError(f"[model.{name}] reference = true: {base} publishes no reference settings")
    return ModelConfig(name=name, base=base, fixed=trials == 0, params=dict(params), tune=tune, reference=reference,
                       datasets=datasets, halving=halving, cls=cls)


def _halving(value: Any, where: str, allow_false: bool = False) -> Halving | bool:
    """``{ min_rows = N, factor = F, startup = S }`` (factor 3 and startup 3 by default)."""
    if value is False and allow_false:
        return False
    example = "{ min_rows = 1000, factor = 3 }" + (" or false" if allow_false else "")
    if not isinstance(value, dict):
        raise SuiteError(f"{where} must be a table such as {example}, not {value!r}")
    unknown = sorted(set(value) - HALVING_KEYS)
    if unknown:
        raise SuiteError(f"{where}: unknown keys {unknown} (allowed: {', '.join(sorted(HALVING_KEYS))})")
    if "min_rows" not in value:
        raise SuiteError(f"{where} needs min_rows, the training rows of the first rung: {example}")
    min_rows = _integer(value, "min_rows", None, minimum=1, where=where)
    startup = _integer(value, "startup", 3, minimum=0, where=where)
    factor = value.get("factor", 3)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 1:
        raise SuiteError(f"{where}: factor must be a number > 1, not {factor!r}")
    return Halving(min_rows=min_rows, factor=float(factor), startup=startup)


def _params_table(where: str, name: str, cls, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise SuiteError(f"{where}: params must be a table, not {params!r}")
    bad = sorted(set(params) - set(cls.defaults))
    if bad:
        raise SuiteError(f"{where}: unknown hyperparameters {bad}; known: {sorted(cls.defaults)}")
    for key, value in params.items():
        check_param(name, cls, key, value)
    return dict(params)


def _tune_list(where: str, base: str, cls, tune: Any) -> list[str] | None:
    if tune is None:
        return None
    tune = _as_list(tune, str, f"{where} tune")
    outside = sorted(set(tune) - set(cls.search_space))
    if outside:
        raise SuiteError(f"{where} tune: {outside} not in the search space of {base} "
                         f"({', '.join(sorted(cls.search_space)) or 'empty'})")
    return tune


def _dataset_settings(name: str, base: str, cls, dataset: str, table: Any,
                      declared: frozenset[str]) -> DatasetSettings:
    where = f"[model.{name}.datasets.{dataset}]"
    if not isinstance(table, dict):
        raise SuiteError(f"{where} must be a table, not {table!r}")
    unknown = sorted(set(table) - DATASET_TABLE_KEYS)
    if unknown:
        raise SuiteError(f"{where}: unknown keys {unknown} (allowed: {', '.join(sorted(DATASET_TABLE_KEYS))})")
    known = set(catalog()) | declared
    if dataset not in known:  # a typo would otherwise silently leave the dataset on the model's settings
        close = difflib.get_close_matches(dataset, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SuiteError(f"{where}: {dataset!r} is not a catalog dataset{hint}")
    return DatasetSettings(params=_params_table(where, name, cls, table.get("params", {})),
                           tune=_tune_list(where, base, cls, table.get("tune")))


def _resolve_models(raw: dict[str, Any], tables: dict[str, Any]) -> list[ModelConfig]:
    """The suite's model columns. Names are checked against the cached declarations first,
    so a mistyped name fails before any model file (and torch) is imported."""
    if not isinstance(tables, dict):
        raise SuiteError("[model] must be a table of model tables")
    known = model_declarations()[0]
    variants = {name for name, table in tables.items() if isinstance(table, dict) and "base" in table}
    declared = frozenset(raw.get("_declared", ()))  # [[dataset]] names, before --datasets filters them
    wanted = raw.get("models", "all")
    if wanted == "all":
        names = list(known) + sorted(variants - set(known))
    else:
        names = _as_list(wanted, str, "models")
    for name in names:
        table = tables.get(name, {})
        if not isinstance(table, dict):
            raise SuiteError(f"[model.{name}] must be a table")
        if name not in known and "base" not in table:
            get_model(name)  # unknown names fail here with suggestions, importing nothing
    configs = [_model_config(name, tables.get(name, {}), declared) for name in names]
    unused = set(tables) - set(names)
    if unused:
        raise SuiteError(f"[model.*] tables for models not in the suite: {sorted(unused)}")
    return configs


# ----------------------------------------------------------------------------- datasets

def _declared_datasets(tables: list[dict[str, Any]], base_dir: Path) -> list[DatasetRef]:
    entries = []
    for table in tables:
        if not isinstance(table, dict) or "name" not in table:
            raise SuiteError("every [[dataset]] table needs a name")
        spec = DatasetSpec.from_dict(dict(table), base_dir)  # validates, fails early
        missing = [str(ref.absolute) for ref in spec.files.values() if ref.absolute and not ref.absolute.is_file()]
        if missing:
            raise SuiteError(f"[[dataset]] {spec.name}: file(s) not found: {', '.join(missing)}")
        declaration = dict(table)
        for role, ref in spec.files.items():  # workers get absolute paths
            declaration[role] = str(ref.absolute)
        entries.append(DatasetRef(name=spec.name, declaration=declaration))
    return entries


def _resolve_datasets(raw: dict[str, Any], data_dir: str | None, notices: list[str]) -> list[DatasetRef]:
    wanted = _as_list(raw["datasets"], str, "datasets") if raw.get("datasets") else []
    optional = _as_list(raw["optional_datasets"], str, "optional_datasets") if raw.get("optional_datasets") else []
    declared = _declared_datasets(raw.get("dataset", []), Path(raw["_base_dir"]))
    declared_names = {d.name for d in declared}
    entries: list[DatasetRef] = []
    for name in wanted:
        if name in declared_names:
            continue
        get_spec(name)  # unknown names fail with suggestions
        entries.append(DatasetRef(name=name))
    entries += declared
    for name in optional:
        if any(e.name == name for e in entries):
            continue
        if is_available(get_spec(name), data_dir):
            entries.append(DatasetRef(name=name))
        else:
            notices.append(f"skipping dataset {name}: its files are not in the data directory")
    if raw.get("include_available"):
        for name, spec in catalog().items():
            if not get_format(spec.format).for_benchmarks:
                continue  # generated data is for tests, not for the benchmark
            if not any(e.name == name for e in entries) and is_available(spec, data_dir):
                entries.append(DatasetRef(name=name))
    if not entries:
        raise SuiteError("the suite has no dataset")
    return entries


# ----------------------------------------------------------------------------- loading

def _check_keys(raw: dict[str, Any], path: Path) -> None:
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.6)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise SuiteError(f"{path}: unknown keys {', '.join(hints)}")


def load_suite(name_or_path: str, data_dir: str | None = None, **overrides: Any) -> Suite:
    """Read a shipped suite or a TOML file, apply overrides, validate everything, resolve names.

    ``overrides`` are the command-line flags (``None`` means "not given"):
    datasets, models, fractions, seeds, trials, epochs, device, split_seed, val_size, workers.
    """
    raw, path = _read_toml(name_or_path)
    _check_keys(raw, path)
    bad = set(overrides) - set(OVERRIDABLE)
    if bad:
        raise SuiteError(f"cannot override {sorted(bad)}")
    for key, value in overrides.items():
        if value is not None:
            raw[key] = value
    raw["_declared"] = [str(t.get("name")) for t in raw.get("dataset", []) if isinstance(t, dict)]
    if overrides.get("datasets") is not None:  # an explicit list replaces the suite's
        raw.pop("optional_datasets", None)
        raw.pop("include_available", None)
        given = set(_as_list(overrides["datasets"], str, "datasets"))
        raw["dataset"] = [t for t in raw.get("dataset", []) if t.get("name") in given]
    if overrides.get("models") is not None and isinstance(raw.get("model"), dict):  # tables of the others go
        chosen = set(_as_list(overrides["models"], str, "models"))
        raw["model"] = {name: table for name, table in raw["model"].items() if name in chosen}
    raw["_base_dir"] = str(path.parent)
    notices: list[str] = []
    fractions = _as_list(raw.get("fractions", [1.0]), float, "fractions")
    if any(not 0 < f <= 1 for f in fractions):
        raise SuiteError(f"fractions must lie in (0, 1], got {fractions}")
    seeds = _as_list(raw.get("seeds", [0]), int, "seeds")
    if any(s < 0 for s in seeds):
        raise SuiteError(f"seeds must be >= 0, got {seeds}")
    try:
        val_size = _convert(raw.get("val_size", 0.15), float)
    except (TypeError, ValueError):
        raise SuiteError(f"val_size must be a number, not {raw.get('val_size')!r}") from None
    if not 0 < val_size < 1:
        raise SuiteError(f"val_size must lie in (0, 1), not {val_size}")
    include = raw.get("include_available", False)
    if not isinstance(include, bool):
        raise SuiteError(f"include_available must be true or false, not {include!r}")
    plain = dict(  # every plain field first: a typo fails before any model file is imported
        trials=_integer(raw, "trials", 0, minimum=0),
        epochs=_integer(raw, "epochs", None, minimum=1),
        split_seed=_integer(raw, "split_seed", 0, minimum=0),
        val_size=val_size,
        device=_device(raw.get("device", "auto")),
        pruner=_choice(raw, "pruner", "median", PRUNERS),
        pruner_startup_trials=_integer(raw, "pruner_startup_trials", 3, minimum=0),
        pruner_warmup_epochs=_integer(raw, "pruner_warmup_epochs", 2, minimum=0),
        val_grid=_grid(raw, "val_grid"),
        oracle_grid=_grid(raw, "oracle_grid"),
        objective=_choice(raw, "objective", "mean_f1", OBJECTIVES),
        resample=_choice(raw, "resample", "subset", RESAMPLE_MODES),
        protocol=_choice(raw, "protocol", "harness", SPLIT_PROTOCOLS),
        budget_seconds=parse_duration(raw.get("budget")),
        halving=_halving(raw["halving"], "halving") if "halving" in raw else None,
        include_available=include,
        workers=_workers(raw.get("workers", 1)),
    )
    suite = Suite(
        name=str(raw.get("name", path.stem)),
        datasets=[],
        models=_resolve_models(raw, raw.get("model", {})),
        fractions=sorted({round(f, 6) for f in fractions}),
        seeds=sorted(set(seeds)),
        source=str(path),
        notices=notices,
        **plain,
    )
    suite.datasets = _resolve_datasets(raw, data_dir, notices)
    return suite
