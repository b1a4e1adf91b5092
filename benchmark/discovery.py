"""Load the repository's ``models/`` and ``datasets/`` folders by path.

Neither folder is an installed import package: a top-level ``datasets`` package
would shadow Hugging Face's ``datasets`` (and ``models`` is just as generic).
Like benchopt, we load their files by path. To keep classes picklable and
importable in worker processes, each folder is exposed under a private alias
package (``mlcbench_models``, ``mlcbench_datasets``) whose ``__path__`` points at
the folder; importing :mod:`benchmark` installs the aliases.

Extra model folders (for a user's own models kept outside the repository) can be
listed in the ``MLCBENCH_MODELS_PATH`` environment variable (``os.pathsep``-separated).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def import_all(package: str) -> list[types.ModuleType]:
    """Import every public ``*.py`` file of an alias package, in name order."""
    install_aliases()
    stems = sorted(
        {
            path.stem
            for directory in sys.modules[package].__path__
            for path in Path(directory).glob("*.py")
            if not path.name.startswith("_")
        }
    )
    return [importlib.import_module(f"{package}.{stem}") for stem in stems]


install_aliases()
