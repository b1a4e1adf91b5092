"""Finding a dataset's files, checking them and fetching what is missing.

A file is looked for, in order, in

1. the data directory (``--data-dir`` or ``MLCBENCH_DATA_DIR``), laid out like the
   mirror (same relative paths as its ``MANIFEST.tsv``);
2. the bundled copies in ``datasets/bundled/`` (gzip-compressed; their checksum is that
   of the decompressed file, so it equals the catalog's);
3. the user cache (``MLCBENCH_CACHE_DIR`` or the platform's user cache dir) under
   ``files/``;
4. the catalog URL (``MLCBENCH_DOWNLOAD_BASE`` replaces the URL's host part with a
   mirror base URL), unless ``MLCBENCH_OFFLINE=1``.

Every file with a catalog checksum is re-hashed before it is parsed, so a corrupt or
edited file is an error rather than a silently different dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.catalog import BUNDLED_DIR, DatasetSpec, FileRef
from benchmark.data.settings import cache_dir, data_dir_setting, offline
from benchmark.errors import (
    BenchmarkError,
    ChecksumError,
    DatasetError,
)
from benchmark.files import atomic_write

CHUNK = 1 << 20


@dataclass
class LocalFile:
    """A file found on this machine. ``gz_copy``: a bundled gzip copy of a plain file."""

    path: Path
    origin: str  # "path", "data-dir", "bundled", "cache"
    gz_copy: bool = False


def downloads_dir() -> Path:
    return cache_dir() / "files"


def locate(ref: FileRef, data_dir: str | Path | None = None) -> LocalFile | None:
    """Where the file is on this machine, in the documented order; None if nowhere."""
    if ref.absolute is not None:
        return LocalFile(ref.absolute, "path") if ref.absolute.is_file() else None
    root = data_dir_setting(data_dir)
    if root is not None and (root / ref.rel).is_file():
        return LocalFile(root / ref.rel, "data-dir")
    bundled = BUNDLED_DIR / (ref.rel + ".gz")
    if bundled.is_file():
        return LocalFile(bundled, "bundled", gz_copy=True)
    cached = downloads_dir() / ref.rel
    if cached.is_file():
        return LocalFile(cached, "cache")
    return None


def is_available(spec: DatasetSpec, data_dir: str | Path | None = None) -> bool:
    """All of a dataset's files present locally (data dir, bundled or cache): no download needed."""
    return all(locate(ref, data_dir) is not None for ref in spec.files.values())


def sha256_of(local: LocalFile) -> str:
    """sha256 of the file's published bytes (a bundled gzip copy is decompressed)."""
    digest = hashlib.sha256()
    opener = gzip.open if local.gz_copy else open
    try:
        with opener(local.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{local.path}: cannot read ({exc})") from None
    return digest.hexdigest()


def check_file(ref: FileRef, local: LocalFile) -> str:
    """Hash the file; raise ChecksumError when it differs from the catalog's sha256."""
    actual = sha256_of(local)
    if ref.sha256 and actual != ref.sha256:
        raise ChecksumError(
            f"{local.path}: sha256 mismatch (expected {ref.sha256[:12]}..., got {actual[:12]}...): "
            f"the file is corrupt or not the published {ref.rel}; delete it and run "
            f"`python -m benchmark datasets fetch`"
        )
    return actual


def download_url(ref: FileRef) -> str | None:
    base = os.environ.get("MLCBENCH_DOWNLOAD_BASE")
    if base and ref.url:
        return base.rstrip("/") + "/" + ref.rel
    return ref.url


def how_to_get(ref: FileRef, data_dir: str | Path | None = None, dataset: str = "") -> str:
    """One sentence telling the user how to make the file available."""
    root = data_dir_setting(data_dir)
    where = f"{root / ref.rel}" if root else f"<data dir>/{ref.rel} (with --data-dir or MLCBENCH_DATA_DIR)"
    if ref.url:
        return (f"run `python -m benchmark datasets fetch {dataset or '<name>'}` with network access, "
                f"or download {ref.url} to {where}")
    return f"{ref.hint or 'it has no public download URL'}; put it at {where}"


def download(ref: FileRef, target: Path) -> Path:
    """Stream the file to a temp file beside ``target``, check sha256, then move it in.

    Any failure (network, interruption, checksum) removes the temp file: nothing
    half-written is ever left at ``target``.
    """
    url = download_url(ref)
    if url is None:
        raise DatasetError(f"{ref.rel} is not available locally: {how_to_get(ref)}")
    def stream(out) -> None:  # a failure here leaves no file behind (atomic_write)
        digest, size = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if ref.size is not None and size != ref.size:
            raise ChecksumError(f"{url}: got {size} bytes, expected {ref.size} (interrupted download)")
        if ref.sha256 and digest.hexdigest() != ref.sha256:
            raise ChecksumError(
                f"{url}: sha256 mismatch (expected {ref.sha256[:12]}..., got {digest.hexdigest()[:12]}...)"
            )

    try:
        atomic_write(target, stream)
    except BenchmarkError:
        raise
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        raise DatasetError(
            f"downloading {ref.rel} from {url} failed: {exc}; without network access, put the file at "
            f"<data dir>/{ref.rel} and pass --data-dir DIR or set MLCBENCH_DATA_DIR "
            f"(MLCBENCH_OFFLINE=1 never downloads)"
        ) from None
    return target


def fetch_file(ref: FileRef, data_dir=None, into: Path | None = None, dataset: str = "") -> LocalFile:
    """The file's local copy, downloading it (into ``into`` or the cache) if needed."""
    local = locate(ref, data_dir)
    if into is not None and (into / ref.rel).is_file():
        local = LocalFile(into / ref.rel, "data-dir")
    if local is not None:
        return local
    if ref.absolute is not None:
        raise DatasetError(f"{ref.absolute}: file not found")
    if not ref.url:
        raise DatasetError(f"{ref.rel} is not available locally: {how_to_get(ref, data_dir, dataset)}")
    if offline():
        raise DatasetError(
            f"{ref.rel} is not available locally and MLCBENCH_OFFLINE=1 forbids downloading: "
            f"{how_to_get(ref, data_dir, dataset)}"
        )
    target = (into if into is not None else downloads_dir()) / ref.rel
    print(f"fetching {dataset or ref.rel}: {ref.rel}", file=sys.stderr)  # a run plans its data before it starts
    return LocalFile(download(ref, target), "cache" if into is None else "data-dir")
