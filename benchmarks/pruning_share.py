"""How much of a study's epochs the median pruner saves: the measurement behind
``benchmark.cost.schedule.MEDIAN_KEPT_SHARE``.

    python benchmarks/pruning_share.py RESULTS [--startup 5] [--warmup 10]

For every study in the results store: finished trials, how many the pruner stopped, and, over the
trials it may stop (index >= startup + LAG: trial k is sent trials 0..k-1-LAG), the share
of their epochs after warm-up that they trained (a trial's epochs: its last reported
step; the full count: the most any trial of the study reported). The last line pools the
studies, weighting each by its epochs, as the estimate counts them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402

from benchmark.execution.tuning import LAG  # noqa: E402
from benchmark.store.results import resolve_url  # noqa: E402


def study_share(study, startup: int, warmup: int) -> tuple[dict, float, float]:
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.state.is_finished()), key=lambda t: t.number)
    steps = {t.number: max(t.intermediate_values, default=0) for t in trials}
    full = max(steps.values(), default=0)
    warm = min(warmup, full)
    prunable = [t for t in trials if t.number >= startup + LAG]
    kept = sum(max(min(steps[t.number], full) - warm, 0) for t in prunable)
    possible = len(prunable) * max(full - warm, 0)
    states = [t.state.name for t in trials]
    row = {"trials": len(trials), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"),
           "prunable": len(prunable), "epochs": full,
           "trained": sum(min(s, full) for s in steps.values()) / max(len(trials) * full, 1)}
    return row, kept, possible


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--startup", type=int, default=5, help="the suite's pruner_startup_trials")
    parser.add_argument("--warmup", type=int, default=10, help="the suite's pruner_warmup_epochs")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = resolve_url(args.results, create=False)
    total_kept = total_possible = 0.0
    print(f"{'study':<28} {'trials':>6} {'pruned':>6} {'failed':>6} {'prunable':>8} {'epochs':>6} "
          f"{'kept share':>10} {'epochs trained':>14}")
    for name in sorted(optuna.get_all_study_names(storage=url)):
        study = optuna.load_study(study_name=name, storage=url)
        row, kept, possible = study_share(study, args.startup, args.warmup)
        if not row["epochs"]:
            continue  # a model without epochs
        total_kept, total_possible = total_kept + kept, total_possible + possible
        label = "/".join(name.split("|")[1:3])
        share = f"{kept / possible:.3f}" if possible else "-"
        print(f"{label:<28} {row['trials']:>6} {row['pruned']:>6} {row['failed']:>6} {row['prunable']:>8} "
              f"{row['epochs']:>6} {share:>10} {row['trained']:>13.1%}")
    if total_possible:
        print(f"pooled kept share of the prunable trials' epochs after warm-up: {total_kept / total_possible:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
