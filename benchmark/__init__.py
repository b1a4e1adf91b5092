"""mlc-bench: a benchmark harness for multi-label classification.

The engine lives in this package. Models and datasets are plain files under the
repository's ``models/`` and ``datasets/`` folders, loaded by path (see
:mod:`benchmark.discovery`).
"""

__version__ = "0.1.0"

from benchmark import discovery as _discovery  # noqa: E402  (installs the alias packages)

del _discovery
