"""Command-line interface: ``python -m benchmark <command> ...``.

Each command lives in ``benchmark/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function
``handler(args) -> int``. Command modules import heavy libraries inside their
handlers so that ``--help`` stays fast. A module whose parser needs imports to build
(``datasets``: the formats' flags) takes ``register(subparsers, full=...)``; it gets
``full=True`` only when its command is the one invoked.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from benchmark.errors import BenchmarkError

COMMANDS = ("run", "report", "datasets", "models")


def invoked_command(argv: list[str]) -> str:
    """The command named on the command line ("" when none: ``--help``, a typo)."""
    return next((arg for arg in argv if arg in COMMANDS), "")


def build_parser(full_for: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``full_for``: the only command whose parser is built in full (None: all)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="mlc-bench: benchmark multi-label classifiers on public datasets.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"benchmark.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmark.commands.{name}":
                raise
            continue  # command not built yet
        if getattr(module, "REGISTER_FULL_PARAMETER", False):
            module.register(subparsers, full=full_for is None or full_for == name)
        else:
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(full_for=invoked_command(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; not an error worth a traceback

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
