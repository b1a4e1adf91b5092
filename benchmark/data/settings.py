"""Where the data layer reads and writes: the data directory, the cache directory, offline mode.

Each setting is read from its command-line value or its environment variable
(``MLCBENCH_DATA_DIR``, ``MLCBENCH_CACHE_DIR``, ``MLCBENCH_OFFLINE``) in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark import discovery


def data_dir_setting(data_dir: str | Path | None = None) -> Path | None:
    """The mirror-like data directory: the argument, else ``MLCBENCH_DATA_DIR``."""
    value = data_dir if data_dir is not None else os.environ.get("MLCBENCH_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """User cache: ``MLCBENCH_CACHE_DIR`` or platformdirs' user cache dir for mlc-bench."""
    return discovery.cache_dir()


def offline() -> bool:
    return os.environ.get("MLCBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes")
