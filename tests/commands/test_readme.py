"""The README's two commands are the newcomer's contract; CI must run the same test command."""

from __future__ import annotations

import re

from helpers import REPO_ROOT


def _indented_commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.startswith("    ") and line.strip()]


def test_ci_runs_the_readme_test_command():
    readme_commands = _indented_commands((REPO_ROOT / "README.md").read_text())
    test_command = next(c for c in readme_commands if c.endswith("pytest"))
    ci_script = (REPO_ROOT / ".ci" / "run").read_text()
    assert test_command in ci_script.splitlines()


def test_the_two_fresh_machine_commands_pin_the_cpu_torch_wheel():
    # An unpinned torch pulls several GB of CUDA packages on a CPU-only machine.
    for command in _indented_commands((REPO_ROOT / "README.md").read_text())[:2]:
        assert "pip install" in command
        assert re.search(r"torch==\d+\.\d+\.\d+", command), command


def test_readme_first_command_runs_the_benchmark_and_report():
    first = _indented_commands((REPO_ROOT / "README.md").read_text())[0]
    assert "python -m benchmark run" in first and "python -m benchmark report" in first
