"""A cell's identity: everything that determines its result, hashed.

Two cells with the same (dataset, model, fraction, seed) but another trial budget,
epoch count, search space, split setting, pruner, grid or objective are different
cells. :func:`group_settings` collects those settings for one (dataset, model) of a
suite (fraction and seed are the cell's own coordinates); :func:`config_hash` is the
short hash stored in every row's ``config`` column, with the settings themselves in
its ``settings`` column so that a reader can see what differs.

The study of a group is keyed by the same settings without the trial budget: raising
``trials`` resumes the same study (trials are deterministic, see
:mod:`benchmark.execution.tuning`), while its cells are new cells.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from benchmark.lazy import lazy

optuna = lazy("optuna")

# Bump when the harness changes what a cell computes for the same settings.
PROTOCOL_VERSION = 2


def _digest(content: Any) -> str:
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def space_json(search_space: dict[str, Any]) -> dict[str, Any]:
    return {name: json.loads(optuna.distributions.distribution_to_json(d)) for name, d in sorted(search_space.items())}


def group_settings(suite, dataset: str, fingerprint: dict[str, str], model: str, base_model: str,
                   params: dict[str, Any], search_space: dict[str, Any], trials: int,
                   max_epochs: int | None, pruner_warmup: int | None = None, threads: int = 1,
                   revision: int = 1, halving: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings every cell of one (dataset, model) shares, as plain data.

    ``threads`` (per fit) is part of it when above one: the same fit on two threads sums in
    another order than on one (test metrics moved by ~1e-4), so one store never mixes them.
    One thread adds nothing, so cells made before threads were recorded (one worker per core,
    as the committed stores) keep their identity.

    ``halving`` (successive halving over training rows, :mod:`benchmark.execution.halving`)
    is part of it, in ``tuning``, only where the plan applies it: cells tuned on all rows,
    as every cell before halving existed, keep their identity.
    """
    settings = {
        "harness": PROTOCOL_VERSION,
        "dataset": {"name": dataset, "files": fingerprint},
        "model": {"name": model, "base": base_model, "params": params, "space": space_json(search_space)},
        "split": {"split_seed": suite.split_seed, "val_size": suite.val_size, "resample": suite.resample,
                  "protocol": suite.protocol},
        "tuning": {"trials": trials, "objective": suite.objective, "pruner": suite.pruner,
                   "pruner_startup_trials": suite.pruner_startup_trials,
                   "pruner_warmup_epochs": suite.pruner_warmup_epochs if pruner_warmup is None else pruner_warmup,
                   "max_epochs": max_epochs,
                   "budget_seconds": suite.budget_seconds},
        "grids": {"val": list(suite.resolved_val_grid()), "oracle": list(suite.resolved_oracle_grid())},
    }
    if threads != 1:
        settings["threads"] = int(threads)
    if halving is not None:
        settings["tuning"]["halving"] = dict(halving)
    if revision != 1:  # the model's own revision (Model.revision); 1 adds nothing, as before revisions
        settings["model"]["revision"] = int(revision)
    return settings


def config_hash(settings: dict[str, Any]) -> str:
    return _digest(settings)


def study_hash(settings: dict[str, Any]) -> str:
    """The study's identity: the settings without the trial budget (and the time budget)."""
    content = json.loads(json.dumps(settings, default=str))
    content["tuning"].pop("trials", None)
    content["tuning"].pop("budget_seconds", None)
    return _digest(content)
