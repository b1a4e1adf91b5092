"""One way to write a file: whole or not at all.

Every writer of a file the harness keeps (parse and split caches, the cost cache, the
model registry cache, a cell's artifacts) writes through :func:`atomic_write`: into a
unique temporary file beside the target, then an atomic rename. A reader never sees a
half-written file, two writers never share a temporary name, and a failed write leaves
no temporary file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = True) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
