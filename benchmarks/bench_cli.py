"""How fast the CLI answers: wall and CPU seconds per command, this tree vs a baseline commit.

    python benchmarks/bench_cli.py [--baseline 423ca46] [--repeats 5]

The baseline is checked out in a temporary ``git worktree`` (removed afterwards) and
both trees run the same commands with the same interpreter (``python -m benchmark``
imports the package from the tree it runs in). Each command runs once to warm caches
(the model declarations cache, the OS page cache), then ``--repeats`` times; the
median wall time and the median child CPU time (user + system) are printed. The
first, cold ``models list`` of this tree (declarations cache empty) is reported too.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["--help"],
    ["models", "list"],
    ["datasets", "list"],
    ["models", "info", "eccc"],          # typo'd model (usage error)
    ["run", "--workers"],                 # argparse usage error
    ["run", "--seeds", "abc", "--dry-run"],  # usage error found by the suite loader
]


def run_once(tree: Path, args: list[str], env: dict) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=tree, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def measure(tree: Path, repeats: int, env: dict) -> dict[str, tuple[float, float, int]]:
    results = {}
    for args in COMMANDS:
        run_once(tree, args, env)
        samples = [run_once(tree, args, env) for _ in range(repeats)]
        results[" ".join(args)] = (statistics.median(s[0] for s in samples),
                                   statistics.median(s[1] for s in samples), samples[-1][2])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="423ca46", help="commit to compare with (default: 423ca46)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = {**os.environ, "MLCBENCH_CACHE_DIR": str(Path(tmp) / "cache"), "OMP_NUM_THREADS": "1"}
        cold = run_once(REPO, ["models", "list"], env)
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(base), args.baseline],
                       check=True)
        try:
            before = measure(base, args.repeats, env)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=True)
        after = measure(REPO, args.repeats, env)
    print(f"median of {args.repeats} runs after one warm-up; wall s / CPU s (user+sys) / exit code")
    print(f"{'command':40} {'baseline ' + args.baseline:>24} {'this tree':>24}")
    for name in before:
        b, a = before[name], after[name]
        print(f"{name:40} {b[0]:8.2f} {b[1]:7.2f} {b[2]:>6} {a[0]:8.2f} {a[1]:7.2f} {a[2]:>6}")
    print(f"cold `models list` in this tree (empty declarations cache): {cold[0]:.2f} s wall, {cold[1]:.2f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
