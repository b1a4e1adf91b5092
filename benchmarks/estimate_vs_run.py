"""A run's measured seconds per (dataset, model) beside the dry run's estimate of them.

    python -m benchmark run ... --dry-run > estimate.txt     # before the run, same arguments
    python -m benchmark run ... --results R                  # the run itself
    python benchmarks/estimate_vs_run.py R estimate.txt

Measured per (dataset, model): every tuning trial's duration in its Optuna study (ask to tell,
pruned and failed trials included) plus each finished cell's fit and prediction seconds. These
are wall seconds of one-thread fits, so on a machine with other load they err high; the
run's CPU seconds (``/usr/bin/time``) are the figure to hold against the estimate's CPU-hours.
Worker start-up, data loading and the driver's own work are in neither column.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

ROW = re.compile(r"^(\S+)\s+(\S+)\s+(\d+)\s+(cpu|gpu)\s+([0-9.]+)\s*$")


def estimated_hours(path: Path) -> dict[tuple[str, str], float]:
    """(dataset, model) -> estimated hours, from the dry run's table."""
    rows = {}
    for line in path.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[(match[1], match[2])] = float(match[5])
    return rows


def measured_seconds(store: Path) -> dict[tuple[str, str], float]:
    """(dataset, model) -> seconds of its trials and of its cells' final fits."""
    db = sqlite3.connect(f"file:{store / 'mlcbench.sqlite'}?mode=ro", uri=True)
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    trials = db.execute("""
        SELECT s.study_name, (julianday(t.datetime_complete) - julianday(t.datetime_start)) * 86400
        FROM trials t JOIN studies s ON s.study_id = t.study_id
        WHERE t.datetime_complete IS NOT NULL""")
    for study, duration in trials:
        _, dataset, model, *_ = study.split("|")
        seconds[(dataset, model)] += duration
    cells = db.execute("SELECT dataset, model, COALESCE(fit_seconds, 0) + COALESCE(predict_seconds, 0) "
                       "FROM mlcbench_runs WHERE status = 'done'")
    for dataset, model, fit in cells:
        seconds[(dataset, model)] += fit
    return dict(seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the run's results directory (SQLite)")
    parser.add_argument("estimate", type=Path, help="the dry run's output, saved before the run")
    args = parser.parse_args(argv)
    estimated = estimated_hours(args.estimate)
    measured = measured_seconds(args.results)
    print(f"{'dataset':<10} {'model':<8} {'est. s':>9} {'measured s':>10} {'ratio':>6}")
    ratios = []
    for pair in sorted(set(estimated) | set(measured)):
        est, got = estimated.get(pair, 0.0) * 3600, measured.get(pair, 0.0)
        ratio = got / est if est > 0 else float("nan")
        if est > 0 and got > 0:
            ratios.append(ratio)
        print(f"{pair[0]:<10} {pair[1]:<8} {est:>9.0f} {got:>10.0f} {ratio:>6.2f}")
    total_est = sum(estimated.values()) * 3600
    total_got = sum(measured.values())
    within = sum(0.65 <= r <= 1.35 for r in ratios)
    print(f"total: estimated {total_est:.0f} s, measured {total_got:.0f} s, ratio {total_got / total_est:.2f}; "
          f"{within}/{len(ratios)} pairs within +-35%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
