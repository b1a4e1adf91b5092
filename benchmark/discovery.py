"""One registry mechanism for the repository's ``models/`` and ``datasets/`` folders.

Neither folder is an installed import package: a top-level ``datasets`` package
would shadow Hugging Face's ``datasets`` (and ``models`` is just as generic).
Like benchopt, we load their files by path. To keep classes picklable and
importable in worker processes, each folder is exposed under a private alias
package (``mlcbench_models``, ``mlcbench_datasets``) whose ``__path__`` points at
the folder; importing :mod:`benchmark` installs the aliases.

Both folders are read by the same :class:`Registry`: every public ``*.py`` file is
imported on its own, the concrete subclasses of a base class that set a key
attribute (``name`` for models, ``format`` for dataset formats) are registered, and
a file that fails to import is recorded as :class:`Unavailable` with its reason
instead of breaking the others.

Extra model folders (for a user's own models kept outside the repository) can be
listed in the ``MLCBENCH_MODELS_PATH`` environment variable (``os.pathsep``-separated).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import platformdirs

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO_ROOT / "models"
DATASETS_DIR = REPO_ROOT / "datasets"

MODELS_PACKAGE = "mlcbench_models"
DATASETS_PACKAGE = "mlcbench_datasets"


def _install_alias(package: str, directories: list[Path]) -> types.ModuleType:
    module = sys.modules.get(package)
    paths = [str(d) for d in directories]
    if module is None:
        module = types.ModuleType(package, f"alias package for {', '.join(paths)}")
        module.__path__ = paths
        sys.modules[package] = module
    else:
        for path in paths:
            if path not in module.__path__:
                module.__path__.append(path)
    return module


def model_directories() -> list[Path]:
    extra = os.environ.get("MLCBENCH_MODELS_PATH", "")
    return [MODELS_DIR] + [Path(p).resolve() for p in extra.split(os.pathsep) if p]


def install_aliases() -> None:
    """Make ``mlcbench_models.<file>`` and ``mlcbench_datasets.<file>`` importable."""
    _install_alias(MODELS_PACKAGE, model_directories())
    _install_alias(DATASETS_PACKAGE, [DATASETS_DIR])


def cache_dir() -> Path:
    """User cache: ``MLCBENCH_CACHE_DIR`` or platformdirs' user cache dir for mlc-bench."""
    value = os.environ.get("MLCBENCH_CACHE_DIR")
    if value:
        return Path(value).expanduser()

    return Path(platformdirs.user_cache_dir("mlc-bench"))


def package_files(package: str) -> dict[str, Path]:
    """Public ``*.py`` files of an alias package by module stem (first folder wins)."""
    install_aliases()
    files: dict[str, Path] = {}
    for directory in sys.modules[package].__path__:
        for path in sorted(Path(directory).glob("*.py")):
            if not path.name.startswith("_"):
                files.setdefault(path.stem, path)
    return dict(sorted(files.items()))


@dataclass(frozen=True)
class Unavailable:
    """A registry file that could not be imported, and why (one line)."""

    module: str
    path: Path
    reason: str


def one_line_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Registry:
    """Classes registered by the files of one folder (alias package).

    ``base`` returns the base class (a callable, so that the base's module may
    import this one); ``key`` is the attribute naming a registered class.
    """

    def __init__(self, package: str, base: Callable[[], type], key: str, what: str):
        self.package, self._base, self.key, self.what = package, base, key, what

    def files(self) -> dict[str, Path]:
        return package_files(self.package)

    def classes_in(self, module: types.ModuleType) -> list[type]:
        """Concrete subclasses of the base defined in ``module`` that set the key."""
        base = self._base()
        return [
            cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, base) and cls.__module__ == module.__name__
            and not inspect.isabstract(cls) and getattr(cls, self.key, None)
        ]

    def import_file(self, stem: str) -> types.ModuleType:
        install_aliases()
        return importlib.import_module(f"{self.package}.{stem}")

    def scan(self, stems: list[str] | None = None) -> tuple[dict[str, type], list[Unavailable]]:
        """Import each file (all, or ``stems``); a failing file becomes Unavailable."""
        files = self.files()
        found: dict[str, type] = {}
        unavailable: list[Unavailable] = []
        for stem in stems if stems is not None else list(files):
            try:
                module = self.import_file(stem)
            except Exception as exc:  # any failure of one file must not hide the others
                unavailable.append(Unavailable(stem, files.get(stem, Path(stem)), one_line_reason(exc)))
                continue
            for cls in self.classes_in(module):
                name = getattr(cls, self.key)
                if name in found and found[name] is not cls:
                    raise ValueError(f"two {self.what}s are named {name!r}: {found[name]} and {cls}")
                found[name] = cls
        return dict(sorted(found.items())), unavailable


install_aliases()
