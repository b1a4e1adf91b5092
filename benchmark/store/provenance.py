"""What produced a result: library versions, the project's git commit, the device."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata

from benchmark.discovery import REPO_ROOT
from benchmark.lazy import lazy

torch = lazy("torch")

LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch", "optuna", "pandas", "sqlalchemy", "mlc-bench")


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of the checkout, with ``-dirty`` when tracked files differ; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def device_name(device: str) -> str:
    """A human name for the device a cell ran on (GPU model, or the CPU)."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():  # a model that declares GPU use but ran without CUDA (tests)
            return device
        index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        return f"{device} ({torch.cuda.get_device_name(index)})"
    cpu = _cpu_model()
    return f"cpu ({cpu})" if cpu else "cpu"


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return platform.processor() or platform.machine()
