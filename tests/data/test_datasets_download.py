"""The real download path, against a local HTTP server on 127.0.0.1 serving the mirror.

``MLCBENCH_DOWNLOAD_BASE`` points the catalog's URLs at the server. Checked: a good
download lands in the cache and loads; a checksum mismatch and an interrupted transfer
raise clear errors and leave nothing behind; ``fetch --data-dir`` fills a mirror-like
directory.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.data.catalog import catalog
from benchmark.data.download import is_available
from benchmark.data.loading import load_dataset
from benchmark.errors import ChecksumError, DatasetError

DATASET = "medical"  # small (0.2 MB), sparse, with a train/test split


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; files named in ``truncate`` are cut off half-way."""

    truncate: set[str] = set()

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        relative = self.path.lstrip("/")
        if relative in self.truncate:
            data = (self.server_root / relative).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Start a server over a private copy of the dataset's files (so tests can tamper)."""
    root = tmp_path / "served"
    yield_state = {}

    def start(source_dir, truncate=()):
        for ref in catalog()[DATASET].files.values():
            (root / ref.rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source_dir / ref.rel, root / ref.rel)
        handler = type("Handler", (MirrorHandler,), {"truncate": set(truncate), "server_root": root})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield_state["httpd"] = httpd
        return root, f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    if "httpd" in yield_state:
        yield_state["httpd"].shutdown()
        yield_state["httpd"].server_close()


@pytest.fixture
def online(tmp_path, monkeypatch):
    """No data dir, a private cache, downloads allowed."""
    cache = tmp_path / "cache"
    monkeypatch.delenv("MLCBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("MLCBENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("MLCBENCH_OFFLINE", "0")
    return cache


def leftovers(directory):
    return sorted(p.name for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def test_download_checks_and_loads(server, online, mirror_dir, monkeypatch):
    _, base = server(mirror_dir)
    monkeypatch.setenv("MLCBENCH_DOWNLOAD_BASE", base)
    assert not is_available(catalog()[DATASET])
    dataset = load_dataset(DATASET)
    assert is_available(catalog()[DATASET])
    reference = load_dataset(DATASET, data_dir=mirror_dir)
    assert (dataset.X != reference.X).nnz == 0
    np.testing.assert_array_equal(dataset.Y, reference.Y)
    names = leftovers(online / "files")
    assert names == sorted(["medical.xml", "medical-train.arff", "medical-test.arff"])


def test_checksum_mismatch_leaves_nothing(server, online, mirror_dir, monkeypatch):
    root, base = server(mirror_dir)
    tampered = root / catalog()[DATASET].files["test"].rel
    data = bytearray(tampered.read_bytes())
    data[-10] ^= 1  # same size, different content
    tampered.write_bytes(bytes(data))
    monkeypatch.setenv("MLCBENCH_DOWNLOAD_BASE", base)
    with pytest.raises(ChecksumError, match=r"medical-test\.arff: sha256 mismatch"):
        load_dataset(DATASET)
    assert "medical-test.arff" not in leftovers(online / "files")
    assert not [n for n in leftovers(online / "files") if n.endswith(".part")]


def test_interrupted_download_leaves_nothing(server, online, mirror_dir, monkeypatch):
    rel = catalog()[DATASET].files["train"].rel
    _, base = server(mirror_dir, truncate={rel})
    monkeypatch.setenv("MLCBENCH_DOWNLOAD_BASE", base)
    with pytest.raises(DatasetError, match=r"medical-train\.arff.*(IncompleteRead|interrupted)"):
        load_dataset(DATASET)
    assert "medical-train.arff" not in leftovers(online / "files")
    assert not [n for n in leftovers(online / "files") if n.endswith(".part")]


def test_fetch_into_data_dir_then_verify(server, online, mirror_dir, monkeypatch, tmp_path, capsys):
    _, base = server(mirror_dir)
    monkeypatch.setenv("MLCBENCH_DOWNLOAD_BASE", base)
    target = tmp_path / "mydata"
    assert main(["datasets", "fetch", DATASET, "--data-dir", str(target)]) == 0
    for ref in catalog()[DATASET].files.values():
        assert (target / ref.rel).read_bytes() == (mirror_dir / ref.rel).read_bytes()
    assert leftovers(online / "files") == []  # went to the data dir, not the cache
    capsys.readouterr()
    assert main(["datasets", "verify", DATASET, "--data-dir", str(target)]) == 0
    assert "3 ok, 0 mismatch" in capsys.readouterr().out


def test_offline_never_downloads(server, online, mirror_dir, monkeypatch):
    _, base = server(mirror_dir)
    monkeypatch.setenv("MLCBENCH_DOWNLOAD_BASE", base)
    monkeypatch.setenv("MLCBENCH_OFFLINE", "1")
    with pytest.raises(DatasetError, match="MLCBENCH_OFFLINE=1 forbids downloading"):
        load_dataset(DATASET)
    assert leftovers(online) == []
