"""The domain's words: one definition and one parser each, used by every layer."""

from __future__ import annotations

import re
import subprocess

import pytest
from helpers import REPO_ROOT

from benchmark.errors import BenchmarkError
from benchmark.execution.resources import make_plan
from benchmark.execution.suite import SuiteError, _device
from benchmark.modelapi.torch_device import resolve_device
from benchmark.vocabulary import (
    RESAMPLE_MODES,
    THRESHOLD_PROTOCOLS,
    parse_device,
    resolve_gpus,
)


def test_every_spelling_of_a_device_means_the_same_in_every_layer():
    for spelling, canonical in (("auto", "auto"), (" CPU ", "cpu"), ("gpu", "cuda"), ("CUDA", "cuda"),
                                ("cuda:1", "cuda:1"), (None, "auto")):
        assert parse_device(spelling) == canonical
    for bad in ("tpu", "cuda:", "cuda:x", "gpu:0"):
        with pytest.raises(BenchmarkError, match="unknown device"):
            parse_device(bad)
        with pytest.raises(SuiteError, match="device must be"):
            _device(bad)
        with pytest.raises(BenchmarkError, match="unknown device"):
            make_plan(bad, 1)
        with pytest.raises(BenchmarkError, match="unknown device"):
            resolve_device(bad)
    assert _device("GPU") == "cuda" and resolve_device("CPU") == "cpu"  # the suite and torch agree now
    assert make_plan("GPU", 2, gpu_count=1).gpu_devices == ("cuda:0",) * 2


def test_gpus_are_counted_only_when_the_setting_can_need_them():
    def no_torch():
        raise AssertionError("counting GPUs (importing torch) for a CPU plan")

    assert resolve_gpus("cpu", no_torch) == []
    assert resolve_gpus("auto", lambda: 2) == ["cuda:0", "cuda:1"]
    with pytest.raises(BenchmarkError, match="only 1 CUDA device"):
        resolve_gpus("cuda:1", lambda: 1)
    with pytest.raises(BenchmarkError, match="CUDA is not available"):
        resolve_gpus("cuda", lambda: 0)


def test_each_word_is_defined_once_in_the_engine():
    """``grep`` for a definition of each word finds exactly one, in benchmark/vocabulary.py."""
    words = ("OBJECTIVES", "RESAMPLE_MODES", "SPLIT_PROTOCOLS", "THRESHOLD_PROTOCOLS", "PRUNERS", "RESOURCES",
             "def parse_device")
    for word in words:
        pattern = rf"^{word}\b" if word.startswith("def") else rf"^{word}\s*(:[^=]*)?="
        hits = subprocess.run(["grep", "-rnE", pattern, "benchmark", "--include=*.py"], cwd=REPO_ROOT,
                              capture_output=True, text=True).stdout.splitlines()
        assert [h.split(":")[0] for h in hits] == ["benchmark/vocabulary.py"], (word, hits)
    assert RESAMPLE_MODES == ("model", "subset", "split") and THRESHOLD_PROTOCOLS == ("val", "fixed", "oracle")
    assert not re.search(r"REFERENCE_GRID|ORACLE_GRID\s*=.*\n.*ORACLE_GRID\s*=",
                         (REPO_ROOT / "benchmark" / "execution" / "suite.py").read_text())
