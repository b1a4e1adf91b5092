"""Heavy third-party libraries, imported on first use.

torch, optuna, ray, scikit-learn, matplotlib (and the other large ones below) take
seconds to import; the CLI answers ``--help``, ``models list`` or a mistyped name in a
fraction of that because engine modules name them through :func:`lazy` at the top
instead of importing them::

    from benchmark.lazy import lazy

    optuna = lazy("optuna")

    def check(dist):
        return isinstance(dist, optuna.distributions.FloatDistribution)  # imported here, once

A submodule the package does not import itself (``sklearn.linear_model``) is imported
when it is first named. Everything else an engine module needs is imported at its top.
"""

from __future__ import annotations

import importlib
import types


class _LazyModule(types.ModuleType):
    """A stand-in that imports the real module (or a submodule) on first attribute access."""

    def __getattr__(self, attr: str):
        module = importlib.import_module(self.__name__)  # after the first time, a sys.modules lookup
        try:
            return getattr(module, attr)
        except AttributeError:
            return importlib.import_module(f"{self.__name__}.{attr}")


def lazy(name: str) -> types.ModuleType:
    """``name`` (a heavy library or one of its submodules), imported when first used."""
    return _LazyModule(name)
