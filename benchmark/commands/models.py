"""``python -m benchmark models list|info NAME``: what models exist and how they are tuned.

For each registered model: name, family, whether it uses a GPU, whether it trains
in epochs (so the tuner can prune), and every hyperparameter with its default and
its Optuna search range ("fixed" when it is not tuned).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tabulate import tabulate

from benchmark.modelapi.base import get_model, model_declarations


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


# ---------------------------------------------------------------------------
# output


def render_table(descriptions: list[dict[str, Any]]) -> str:
    """One row per hyperparameter; model columns are filled on each model's first row."""
    rows = []
    for desc in descriptions:
        head = [desc["name"], desc["family"], _yes(desc["uses_gpu"]), _yes(desc["trains_in_epochs"])]
        params = desc["hyperparameters"] or [None]
        for i, param in enumerate(params):
            left = head if i == 0 else [""] * len(head)
            if param is None:
                rows.append(left + ["(none)", "", ""])
            else:
                rows.append(left + [param["name"], param["default_repr"], format_range(param["search"])])
    headers = ["model", "family", "gpu", "epochs", "hyperparameter", "default", "search range"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def list_models(args: argparse.Namespace) -> int:
    declarations, unavailable = model_declarations()
    descriptions = list(declarations.values())
    if args.json:
        out = [_public(d) for d in descriptions]
        out += [{"module": u.module, "file": str(u.path), "unavailable": u.reason} for u in unavailable]
        print(json.dumps(out, indent=2))
        return 0
    print(render_table(descriptions))
    print(f"\n{len(descriptions)} models. Details: python -m benchmark models info NAME")
    for u in unavailable:
        print(f"unavailable: {u.path} ({u.reason})")
    return 0


def _public(desc: dict[str, Any]) -> dict[str, Any]:
    """The JSON record of a model (the long docstrings are for `models info`)."""
    out = {key: value for key, value in desc.items() if key not in ("doc", "module_doc")}
    out["hyperparameters"] = [{k: v for k, v in p.items() if k != "default_repr"} for p in desc["hyperparameters"]]
    return out


def show_model(args: argparse.Namespace) -> int:
    declarations, _ = model_declarations()
    if args.name not in declarations:
        get_model(args.name)  # unknown name: UnknownNameError with suggestions, exit 2
    desc = declarations[args.name]
    if args.json:
        print(json.dumps({**_public(desc), "doc": desc["doc"], "module_doc": desc["module_doc"]}, indent=2))
        return 0
    print(f"{desc['name']} ({desc['family']}, {desc['module']})")
    print(f"file: {desc['file']}")
    print(f"uses GPU: {_yes(desc['uses_gpu'])}; trains in epochs: {_yes(desc['trains_in_epochs'])}; "
          f"stochastic: {_yes(desc['stochastic'])}")
    for text in (desc["doc"], desc["module_doc"]):
        if text:
            print()
            print(text)
    print()
    print(render_table([desc]))
    return 0
