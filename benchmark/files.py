"""The files the harness keeps: written whole or not at all, read with suspicion.

Every writer of a file (parse and split caches, the cost cache, the model registry cache,
downloads, a cell's artifacts) goes through :func:`atomic_write`: a unique temporary file
beside the target, then an atomic rename, so a reader never sees a half-written file,
two writers never share a temporary name and a failed write leaves nothing behind.

Values written as JSON (a row's metrics, a study's attributes, the model registry) go
through :func:`json_safe` first.

Every cache reader treats an entry it cannot use as absent. A cache entry may be
truncated (a full disk, a killed process), garbage (another program's file, bit rot) or
valid-looking but implausible (another version, edited by hand). None of these may crash
a command or be trusted: the reader raises :class:`UnusableCacheEntry` (or any exception)
from its checks, calls :func:`warn_unusable` once, recomputes, and the writer overwrites
the entry.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

_WARNED: set[str] = set()


class UnusableCacheEntry(ValueError):
    """A cache entry that reads but fails a plausibility check."""


def warn_unusable(path: Path | str, what: str, exc: BaseException) -> None:
    """One warning per entry (its path, size and modification time) and process, on stderr:
    which file, why, and that it is recomputed. An entry that cannot be overwritten (a
    read-only cache) is not warned about again on every read; a new bad entry is."""
    try:
        stat = os.stat(path)
        key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        key = str(path)
    if key in _WARNED:
        return
    _WARNED.add(key)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    print(f"warning: ignoring unusable {what} cache entry {path} ({reason}); recomputing it",
          file=sys.stderr, flush=True)


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


def json_safe(value: Any) -> Any:
    """JSON-safe copy: numpy scalars and arrays to Python, NaN/inf to None, any other
    object to its repr (a model's declared default that JSON cannot hold)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
