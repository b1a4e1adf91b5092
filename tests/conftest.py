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
def one_torch_thread():
    """One torch thread for the test, as a worker of a 2-worker run on 2 cores gets; restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

