"""Test configuration: point the harness at the dataset mirror, never the network.

``MLCBENCH_DATA_DIR`` defaults to ``../shared/datasets`` beside the checkout (the
mirror CI provides); parsed-dataset caches go under ``.pytest_cache`` so test runs
never touch the user's cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("MLCBENCH_DATA_DIR", REPO_ROOT.parent / "shared" / "datasets")).resolve()

os.environ.setdefault("MLCBENCH_DATA_DIR", str(MIRROR))
os.environ.setdefault("MLCBENCH_CACHE_DIR", str(REPO_ROOT / ".pytest_cache" / "mlcbench-cache"))
os.environ.setdefault("MLCBENCH_OFFLINE", "1")  # tests must never download


def mirror_has(relative_path: str) -> bool:
    return (MIRROR / relative_path).exists()


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    if not (MIRROR / "MANIFEST.tsv").exists():
        pytest.skip(f"dataset mirror not found at {MIRROR}")
    return MIRROR


@pytest.fixture
def test_models(monkeypatch, tmp_path):
    """The models under tests/models_for_tests registered beside the real ones; their fits
    log to ``tmp_path/fits.log``, their devices to ``tmp_path/devices.log``. Modules that
    run them say ``pytestmark = pytest.mark.usefixtures("test_models")``."""
    from helpers import TEST_MODELS

    from benchmark import discovery

    monkeypatch.setenv("MLCBENCH_MODELS_PATH", str(TEST_MODELS))
    discovery.install_aliases()
    monkeypatch.setenv("MLCBENCH_TEST_FIT_LOG", str(tmp_path / "fits.log"))
    monkeypatch.setenv("MLCBENCH_TEST_DEVICE_LOG", str(tmp_path / "devices.log"))


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, as a worker of a 2-worker run on 2 cores gets; restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

