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
    except BrokenPipeError as exc:
        if not stdout_closed():  # a pipe of our own (a worker's, a server's): an error, never exit 0
            print(f"error: {describe_broken_pipe(exc)}", file=sys.stderr)
            return 1
        import os

        # `... | head`: the reader left; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        if args.command == "run" and not getattr(args, "dry_run", False):
            return 1  # the run stopped before finishing its cells (the finished ones are recorded)
        return 0


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (Linux: poll reports POLLERR)."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    try:  # pragma: no cover - no poll(): flushing a closed pipe raises again
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        pass
    return False


def describe_broken_pipe(exc: BaseException) -> str:
    """One line: the error and where it happened (the innermost frame in the engine)."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "benchmark" in f.filename]
    where = f" in {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else ""
    return f"broken pipe{where}: {exc}; a connection of the harness itself closed (a bug: please report it)"
