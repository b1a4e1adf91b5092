"""The model interface every file under ``models/`` implements, and the registry.

A model is a small scikit-learn-like class::

    class BinaryRelevance(Model):
        name = "br"                       # registry key, used on the command line
        family = "classic"
        defaults = {"C": 1.0}             # every hyperparameter with its default
        search_space = {"C": FloatDistribution(1e-3, 1e2, log=True)}

        def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None): ...
        def predict_proba(self, X): ...   # (n, L) float scores in [0, 1]

Search spaces are Optuna distributions, so the tuner can ``study.ask(space)``
directly. Models that train in epochs set ``trains_in_epochs = True`` and call
``on_epoch(epoch, validation_score)`` after each epoch; models that grow in other steps
(trees, ensemble members) set ``grows_in_steps`` and call it after each step. The
callback may raise ``optuna.TrialPruned`` to stop a hopeless trial, which the model
lets propagate; ``pruner_warmup`` sets the steps before that may happen.
After ``fit``, ``fit_info`` holds what the results store records: every model sets
``fit_seconds``; epoch-trained models also ``n_epochs`` (epochs trained), ``best_epoch``
(the epoch whose weights are kept) and ``epoch_seconds`` (one entry per epoch); see
``FIT_INFO_FIELDS`` and ``EPOCH_FIT_INFO_FIELDS``. Models that learn label embeddings
(cgmvae, c2ae, lamp) also have ``label_embeddings()``: an (L, d) float array after ``fit``,
for the embedding report.

``stochastic`` says whether the seed changes the scores (checked by the behaviour
contract, ``tests/modelapi/test_model_contract.py``); left at ``None`` it follows
``trains_in_epochs`` (networks with random initialisation), see :meth:`Model.is_stochastic`.

The registry (:func:`available_models`, :func:`get_model`, :func:`model_declarations`)
is :class:`benchmark.discovery.Registry` over the model folders. Listing models must
not import torch for every file, so what ``models list`` shows is kept in a small
JSON cache (one file per checkout) keyed by the content of every model and engine file;
only a miss (a changed file, a fresh checkout) imports the model files. An unreadable or
implausible cache file is warned about once and rebuilt.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from benchmark import discovery
from benchmark.errors import BenchmarkError, UnknownNameError
from benchmark.files import UnusableCacheEntry, atomic_write, json_safe, warn_unusable

if TYPE_CHECKING:  # numpy costs 0.2 s, and `models list` needs none of it
    import numpy as np

EpochCallback = Callable[[int, float], None]

FIT_INFO_FIELDS = ("fit_seconds",)
EPOCH_FIT_INFO_FIELDS = ("n_epochs", "best_epoch", "epoch_seconds")


@dataclass(frozen=True)
class CostUnits:
    """Relative work of one fit: per training row (per epoch for a model trained in epochs)
    and per optimiser step (batch overhead). The cost model times each model on one small
    reference dataset and scales those seconds by these units to every other dataset and
    hyperparameter draw (:mod:`benchmark.cost.formula`): only ratios of units matter."""

    row: float
    step: float = 0.0


class Model(ABC):
    """Base class for every model; see the module docstring."""

    name: ClassVar[str]
    family: ClassVar[str] = "other"
    uses_gpu: ClassVar[bool] = False
    trains_in_epochs: ClassVar[bool] = False
    #: a model that grows in steps (trees added to a forest, chains to an ensemble) and calls
    #: ``on_epoch(step, validation_score)`` after each names them here ("trees", "members"):
    #: its tuning trials are prunable like an epoch-trained model's
    grows_in_steps: ClassVar[str | None] = None
    #: steps before the pruner may stop a trial of this model (None: the suite's
    #: ``pruner_warmup_epochs``); a 20-step forest needs fewer than a 100-epoch network
    pruner_warmup: ClassVar[int | None] = None
    stochastic: ClassVar[bool | None] = None  # None: same as trains_in_epochs
    #: bump when a change to the model changes its results for the same settings (a new
    #: default, a fixed bug): it is part of every cell's identity, so old cells are not reused
    revision: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}
    search_space: ClassVar[dict[str, Any]] = {}  # name -> optuna.distributions.*
    #: how a fit's work grows with its training rows (``rows ** row_exponent``), from the
    #: algorithm: small timed fits are too noisy to tell 0.5 from 1 (they did, and a
    #: linear model's cost on 13k rows came out 5x short)
    row_exponent: ClassVar[float] = 1.0
    #: the model learns only the labels that vary in its training rows (the others get a
    #: constant score), so a small fit on a large label set does a few labels' work: the cost
    #: probe counts them (delicious: 440 of 983 labels vary in 64 rows, 769 in 256)
    learns_varying_labels: ClassVar[bool] = False
    #: hyperparameters whose effect on a fit's time the cost units do not model (a solver's
    #: iterations under its regularisation): the cost probe times fits across their tuned
    #: range on each dataset (L-BFGS under C and class weights: x0.8 on bibtex, x1.3 on delicious)
    cost_blind_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seed: int = 0, device: str = "cpu", n_threads: int | None = None, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"model {self.name!r} has no hyperparameter(s) {unknown}; "
                f"known: {sorted(self.defaults)}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.seed = int(seed)
        self.device = device
        self.n_threads = n_threads
        self.fit_info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, X, Y: np.ndarray, X_val=None, Y_val=None, on_epoch: EpochCallback | None = None) -> "Model":
        """Train on ``X`` (dense or CSR, float32) and ``Y`` ((n, L) 0/1)."""

    @abstractmethod
    def predict_proba(self, X) -> np.ndarray:
        """Return an (n, L) float array of label scores in [0, 1]."""

    @classmethod
    def peak_bytes(cls, n_rows: int, n_features: int, n_labels: int, params: dict[str, Any]) -> int | None:
        """Predicted peak memory of one fit with ``params`` on data of this shape (None: not
        modelled). A model whose memory grows with the label count (a forest keeping class
        counts per leaf) says so here, and the planner refuses what would not fit."""
        return None

    @classmethod
    def cost_units(cls, n_features: int, n_labels: int, params: dict[str, Any], density: float = 1.0,
                   label_density: float = 1.0) -> CostUnits:
        """Relative work per training row of a fit with ``params`` (merged over the defaults)
        on data of this shape, ``density`` the share of nonzero features (sparse X),
        ``label_density`` the share of positive labels (a chain's label columns). The
        default, one unit per nonzero feature and label, is a per-label linear model's; a
        model whose work grows otherwise says so here."""
        return CostUnits(float(max(n_features * density, 1) * max(n_labels, 1)))

    @classmethod
    def probe_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Overrides for the one small fit that times this model on each dataset: the same
        work per unit, less of it (a forest's first trees, one chain); ``cost_units`` must
        count the difference. Default: none."""
        return {}

    @classmethod
    def steps(cls, params: dict[str, Any]) -> int | None:
        """How many steps a fit with ``params`` reports (a model that ``grows_in_steps``; None:
        not known before the fit). The pruner's horizon and the cost of a prunable trial."""
        return None

    @classmethod
    def reports_steps(cls) -> bool:
        """Whether ``fit`` reports a validation score per epoch or step (so trials are prunable)."""
        return bool(cls.trains_in_epochs or cls.grows_in_steps)

    @classmethod
    def is_stochastic(cls) -> bool:
        """Whether a different seed gives different scores."""
        return bool(cls.trains_in_epochs if cls.stochastic is None else cls.stochastic)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


REGISTRY = discovery.Registry(discovery.MODELS_PACKAGE, lambda: Model, key="name", what="model")
ENGINE_DIR = Path(__file__).resolve().parents[1]
DECLARATIONS_VERSION = 1


def available_models() -> dict[str, type[Model]]:
    """Every concrete ``Model`` subclass defined in the model folders, by name.

    Imports every model file; files that fail to import are left out (the
    declarations, :func:`model_declarations`, name them with their reason).
    """
    return REGISTRY.scan()[0]


def get_model(name: str) -> type[Model]:
    """Look a model up by name, importing only its file; an unknown name suggests close ones."""
    declarations, unavailable = model_declarations()
    if name in declarations:
        try:
            module = REGISTRY.import_file(declarations[name]["module_stem"])
        except Exception as exc:  # e.g. a package uninstalled since the declarations were cached
            raise BenchmarkError(f"model {name!r} is unavailable: {declarations[name]['file']}: "
                                 f"{discovery.one_line_reason(exc)}") from exc
        for cls in REGISTRY.classes_in(module):
            if cls.name == name:
                return cls
    close = difflib.get_close_matches(name, list(declarations), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    broken = "".join(f"; unavailable: {u.path.name} ({u.reason})" for u in unavailable)
    raise UnknownNameError(f"unknown model {name!r}{hint}; known models: {', '.join(declarations)}{broken}")


# ---------------------------------------------------------------------------- declarations


def describe_distribution(dist: Any) -> dict[str, Any]:
    """An Optuna distribution as a JSON-friendly dict (None: not tuned)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if dist is None:
        return {"type": "fixed"}
    if isinstance(dist, CategoricalDistribution):
        return {"type": "categorical", "choices": [json_safe(c) for c in dist.choices]}
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        kind = "float" if isinstance(dist, FloatDistribution) else "int"
        return {"type": kind, "low": dist.low, "high": dist.high, "log": dist.log, "step": dist.step}
    return {"type": type(dist).__name__}


def declare(cls: type[Model]) -> dict[str, Any]:
    """Everything ``models list``/``info`` show about a model class, as plain JSON data."""
    names = list(cls.defaults) + [name for name in cls.search_space if name not in cls.defaults]
    doc = inspect.cleandoc(cls.__doc__ or "")
    module = sys.modules[cls.__module__]
    return {
        "name": cls.name,
        "family": cls.family,
        "uses_gpu": bool(cls.uses_gpu),
        "trains_in_epochs": bool(cls.trains_in_epochs),
        "stochastic": cls.is_stochastic(),
        "summary": doc.splitlines()[0] if doc else "",
        "doc": doc,
        "module_doc": inspect.cleandoc(module.__doc__ or ""),
        "module": cls.__module__,
        "module_stem": cls.__module__.rsplit(".", 1)[-1],
        "file": str(Path(inspect.getfile(cls)).resolve()),
        "hyperparameters": [
            {
                "name": name,
                "default": json_safe(cls.defaults.get(name)),
                "default_repr": repr(cls.defaults.get(name)),
                "search": describe_distribution(cls.search_space.get(name)),
            }
            for name in names
        ],
    }


def _fingerprint(files: dict[str, Path]) -> str:
    """Changes whenever a model file, an engine file or the interpreter changes."""
    digest = hashlib.sha256(f"{DECLARATIONS_VERSION}|{sys.version}|{sys.prefix}".encode())
    for path in sorted(ENGINE_DIR.rglob("*.py")) + list(files.values()):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _cache_path() -> Path:
    """One file per checkout (keyed by its path): checkouts side by side no longer overwrite
    each other's entry on every command."""
    checkout = hashlib.sha256(str(ENGINE_DIR.parent).encode()).hexdigest()[:12]
    return discovery.cache_dir() / "registry" / f"models-{checkout}.json"


#: what every cached declaration must hold (see :func:`declare`)
DECLARATION_KEYS = ("name", "family", "module_stem", "file", "hyperparameters", "summary")


def _check_entry(cached: Any, key: str) -> dict[str, list[dict]]:
    """The per-file declarations of a cache entry, or UnusableCacheEntry when implausible."""
    if not isinstance(cached, dict) or not isinstance(cached.get("key"), str):
        raise UnusableCacheEntry("not an object with a key")
    if cached["key"] != key:
        return {}  # written for other files: stale, not broken
    files = cached.get("files")
    if not isinstance(files, dict):
        raise UnusableCacheEntry("its 'files' is not an object")
    for stem, decls in files.items():
        if not isinstance(decls, list):
            raise UnusableCacheEntry(f"the declarations of {stem!r} are not a list")
        for decl in decls:
            if not isinstance(decl, dict) or any(k not in decl for k in DECLARATION_KEYS):
                raise UnusableCacheEntry(f"a declaration of {stem!r} lacks {', '.join(DECLARATION_KEYS)}")
            if decl["module_stem"] != stem or not isinstance(decl["name"], str) or not decl["name"]:
                raise UnusableCacheEntry(f"a declaration filed under {stem!r} names {decl['module_stem']!r}")
            if not isinstance(decl["hyperparameters"], list):
                raise UnusableCacheEntry(f"the hyperparameters of {decl['name']!r} are not a list")
    return files


def _read_cache(key: str) -> dict[str, list[dict]]:
    """The cached declarations for ``key``; {} when absent or stale. An unreadable or
    implausible file is warned about once and treated as absent (rebuilt and overwritten)."""
    path = _cache_path()
    try:
        return _check_entry(json.loads(path.read_bytes()), key)
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - truncated, garbage or implausible: absent
        warn_unusable(path, "model registry", exc)
        return {}


def _write_cache(key: str, per_file: dict[str, list[dict]]) -> None:
    content = {"key": key, "checkout": str(ENGINE_DIR.parent), "files": per_file}
    try:
        atomic_write(_cache_path(), lambda fh: fh.write(json.dumps(content).encode()))
    except OSError:  # a read-only cache only makes listing slower
        pass


def model_declarations() -> tuple[dict[str, dict], list[discovery.Unavailable]]:
    """Declarations of every model by name, and the files that fail to import.

    Served from the cache when no file changed; files that failed are retried on
    every call (a missing package may have been installed since).
    """
    files = REGISTRY.files()
    key = _fingerprint(files)
    per_file = {stem: decls for stem, decls in _read_cache(key).items() if stem in files}
    todo = [stem for stem in files if stem not in per_file]
    unavailable: list[discovery.Unavailable] = []
    if todo:
        classes, unavailable = REGISTRY.scan(todo)
        failed = {u.module for u in unavailable}
        for stem in todo:
            if stem not in failed:
                per_file[stem] = [declare(cls) for cls in classes.values() if cls.__module__.endswith("." + stem)]
        _write_cache(key, {stem: per_file[stem] for stem in files if stem in per_file})
    found: dict[str, dict] = {}
    for stem in files:
        for decl in per_file.get(stem, []):
            if decl["name"] in found:
                raise ValueError(f"two models are named {decl['name']!r}: in {found[decl['name']]['file']} "
                                 f"and {decl['file']}")
            found[decl["name"]] = decl
    return dict(sorted(found.items())), unavailable
