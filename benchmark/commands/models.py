"""``python -m benchmark models list|info NAME``: what models exist and how they are tuned.

For each registered model: name, family, whether it uses a GPU, whether it trains
in epochs (so the tuner can prune), and every hyperparameter with its default and
its Optuna search range ("fixed" when it is not tuned).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def register(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the registered models and their hyperparameters")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every model with its hyperparameters, defaults and search ranges")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    listing.set_defaults(handler=list_models)
    info = actions.add_parser("info", help="one model: its description and hyperparameters")
    info.add_argument("name", help="model name (see `models list`)")
    info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    info.set_defaults(handler=show_model)


# ---------------------------------------------------------------------------
# describing a model class


def describe_distribution(dist: Any) -> dict[str, Any]:
    """An Optuna distribution as a JSON-friendly dict (None: not tuned)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dist is None:
        return {"type": "fixed"}
    if isinstance(dist, CategoricalDistribution):
        return {"type": "categorical", "choices": list(dist.choices)}
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        kind = "float" if isinstance(dist, FloatDistribution) else "int"
        return {"type": kind, "low": dist.low, "high": dist.high, "log": dist.log, "step": dist.step}
    return {"type": type(dist).__name__}


def format_range(spec: dict[str, Any]) -> str:
    """One short human-readable range: ``[0.001, 100] log``, ``{None, balanced}``, ``fixed``."""
    kind = spec["type"]
    if kind in ("float", "int"):
        text = f"{kind} [{_number(spec['low'])}, {_number(spec['high'])}]"
        if spec["log"]:
            text += " log"
        step = spec["step"]
        if step is not None and not (kind == "int" and step == 1):
            text += f" step {_number(step)}"
        return text
    if kind == "categorical":
        return "{" + ", ".join(str(choice) for choice in spec["choices"]) + "}"
    return kind


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_model(cls) -> dict[str, Any]:
    """Everything `models list` shows about one model class."""
    names = list(cls.defaults) + [name for name in cls.search_space if name not in cls.defaults]
    doc = (cls.__doc__ or "").strip().splitlines()
    return {
        "name": cls.name,
        "family": cls.family,
        "uses_gpu": bool(cls.uses_gpu),
        "trains_in_epochs": bool(cls.trains_in_epochs),
        "summary": doc[0] if doc else "",
        "module": cls.__module__,
        "hyperparameters": [
            {
                "name": name,
                "default": cls.defaults.get(name),
                "search": describe_distribution(cls.search_space.get(name)),
            }
            for name in names
        ],
    }


# ---------------------------------------------------------------------------
# output


def render_table(descriptions: list[dict[str, Any]]) -> str:
    """One row per hyperparameter; model columns are filled on each model's first row."""
    from tabulate import tabulate

    rows = []
    for desc in descriptions:
        head = [desc["name"], desc["family"], _yes(desc["uses_gpu"]), _yes(desc["trains_in_epochs"])]
        params = desc["hyperparameters"] or [None]
        for i, param in enumerate(params):
            left = head if i == 0 else [""] * len(head)
            if param is None:
                rows.append(left + ["(none)", "", ""])
            else:
                rows.append(left + [param["name"], repr(param["default"]), format_range(param["search"])])
    headers = ["model", "family", "gpu", "epochs", "hyperparameter", "default", "search range"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _json_default(value: Any) -> Any:
    return repr(value)


def list_models(args: argparse.Namespace) -> int:
    from benchmark.model_api import available_models

    descriptions = [describe_model(cls) for cls in available_models().values()]
    if args.json:
        print(json.dumps(descriptions, indent=2, default=_json_default))
    else:
        print(render_table(descriptions))
        print(f"\n{len(descriptions)} models. Details: python -m benchmark models info NAME")
    return 0


def show_model(args: argparse.Namespace) -> int:
    from benchmark.model_api import get_model

    cls = get_model(args.name)  # unknown name: UnknownNameError with suggestions, exit 2
    desc = describe_model(cls)
    if args.json:
        print(json.dumps(desc, indent=2, default=_json_default))
        return 0
    print(f"{desc['name']} ({desc['family']}, {desc['module']})")
    print(f"uses GPU: {_yes(desc['uses_gpu'])}; trains in epochs: {_yes(desc['trains_in_epochs'])}")
    if cls.__doc__:
        print()
        print(_dedent(cls.__doc__))
    print()
    print(render_table([desc]))
    return 0


def _dedent(text: str) -> str:
    import inspect

    return inspect.cleandoc(text)
