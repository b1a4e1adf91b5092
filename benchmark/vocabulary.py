"""The domain's words, each defined once, with the one parser each needs.

Every layer that speaks of a device, a resource, an objective, a resample mode, a split
protocol, a threshold protocol or a pruner imports the word from here, so that two
modules can never accept different spellings of the same setting.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable, Literal, get_args

from benchmark.errors import BenchmarkError

#: Where a job runs: its pool on the local executor, its Ray resource.
Resource = Literal["cpu", "gpu"]
RESOURCES: tuple[str, ...] = get_args(Resource)

#: The tuning objective on validation data: one F1 at its best threshold, or their mean.
Objective = Literal["mean_f1", "maF1", "miF1", "ebF1"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)

#: What a model seed redraws besides the model's randomness (see data/dataplan.py).
ResampleMode = Literal["model", "subset", "split"]
RESAMPLE_MODES: tuple[str, ...] = get_args(ResampleMode)

#: How a suite splits and evaluates: the harness's own protocol, or the authors' code.
SplitProtocol = Literal["harness", "reference"]
SPLIT_PROTOCOLS: tuple[str, ...] = get_args(SplitProtocol)

#: How scores become predictions: 0.5, per-metric thresholds chosen on validation, or on test.
ThresholdProtocol = Literal["val", "fixed", "oracle"]  # val, the honest default, first
THRESHOLD_PROTOCOLS: tuple[str, ...] = get_args(ThresholdProtocol)

#: Optuna pruners a suite may choose.
Pruner = Literal["median", "hyperband", "none"]
PRUNERS: tuple[str, ...] = get_args(Pruner)

#: A device setting: "auto", "cpu", "cuda" (every visible GPU) or "cuda:<index>".
DEVICE_CHOICES = "auto, cpu, cuda or cuda:<index>"
_CUDA_INDEX = re.compile(r"cuda:(\d+)")


def parse_device(value: object) -> str:
    """The canonical spelling of a device setting; the only parser of device strings.

    Case and surrounding blanks are ignored, ``None`` means "auto" and "gpu" is read as
    "cuda". Whether the machine has the device is :func:`resolve_gpus`'s question.
    """
    name = "auto" if value is None else str(value).strip().lower()
    if name == "gpu":
        name = "cuda"
    if name in ("auto", "cpu", "cuda") or _CUDA_INDEX.fullmatch(name):
        return name
    raise BenchmarkError(f"unknown device {value!r}; expected {DEVICE_CHOICES}")


def resolve_gpus(device: object, count_gpus: Callable[[], int]) -> list[str]:
    """The concrete CUDA devices a device setting selects ([] for the CPU); ``count_gpus``
    (called only when needed: it imports torch) says how many this machine has. An explicit
    CUDA request the machine cannot serve is an error, so a run never falls back to the CPU
    when the user asked for a GPU."""
    name = parse_device(device)
    if name == "cpu":
        return []
    gpu_count = count_gpus()
    if name == "auto":
        return [f"cuda:{i}" for i in range(gpu_count)]
    if gpu_count == 0:
        raise BenchmarkError(f"device {device!r} requested but CUDA is not available on this machine "
                             "(use --device cpu or auto)")
    if name == "cuda":
        return [f"cuda:{i}" for i in range(gpu_count)]
    index = int(_CUDA_INDEX.fullmatch(name).group(1))
    if index >= gpu_count:
        raise BenchmarkError(f"device {device!r} requested but only {gpu_count} CUDA device(s) exist")
    return [name]


def choice(value: object, words: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``words``, else a one-line error with the nearest word."""
    if value in words:
        return str(value)
    close = difflib.get_close_matches(str(value), words, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise BenchmarkError(f"{what} must be one of {', '.join(words)}, not {value!r}{hint}")
