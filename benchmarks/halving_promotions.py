"""How many trials successive halving lets through, measured against the cost model's promotion
model: the measurement behind ``halving.SCORE_CORRELATION``, ``SAMPLER_DRIFT`` and ``SAMPLER_SPREAD``.

    python benchmarks/halving_promotions.py RESULTS [RESULTS ...] [--factor 3] [--startup 3]

For every halving study in the stores (trials that record ``halving_rows``), over its finished
trials: how many reached each rung; what ``expected_rung_counts`` says for that many trials and
rungs with independent scores and with the default score model; the rank correlation of the
trials' scores at two rungs (over the trials that reached both: promotion restricts their range,
so it reads low); and the rung-0 scores of the sampler's trials (index >= TPE_STARTUP_TRIALS + LAG,
whose parameters TPE chose) in units of the random start-up trials' mean and standard deviation:
their mean (the drift) and standard deviation (the spread). ``--factor`` and ``--startup`` are
the studies' halving settings (a store does not keep them).

``--replay-factor F`` adds what a larger factor would have kept: the promotion rule replayed at
rung 0 with factor F on the measured rung-0 scores (the history the driver sent), and of the
trials that reached all rows, the best one F still promotes against the study's best: the loss
in the objective (0 when F keeps the winner). Indicative only: with fewer promotions TPE would
have seen other trials and proposed others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from benchmark.execution.halving import (  # noqa: E402
    INDEPENDENT_SCORES,
    Halving,
    expected_rung_counts,
    promoted,
)
from benchmark.execution.tuning import LAG, TPE_STARTUP_TRIALS  # noqa: E402
from benchmark.store.results import resolve_url  # noqa: E402


def rung_scores(study) -> tuple[list[int], list[dict[int, float]]] | None:
    """(rung rows, each finished trial's score per rung reached, in trial order); None without halving."""
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.state.is_finished()), key=lambda t: t.number)
    rows = next((t.user_attrs["halving_rows"] for t in trials if "halving_rows" in t.user_attrs), None)
    if rows is None:
        return None
    return list(rows), [dict(t.intermediate_values) for t in trials]


def sampler_shift(scores: list[dict[int, float]]) -> tuple[float, float] | None:
    """Rung-0 scores of TPE's trials in units of the random start-up trials': (mean, sd)."""
    first = TPE_STARTUP_TRIALS + LAG
    values = np.array([s.get(0, np.nan) for s in scores], float)
    start, sampled = values[:first], values[first:]
    if len(sampled) < 3 or np.nanstd(start) == 0:
        return None
    z = (sampled - np.nanmean(start)) / np.nanstd(start, ddof=1)
    return float(np.nanmean(z)), float(np.nanstd(z, ddof=1))


def rung_correlations(scores: list[dict[int, float]], n_rungs: int) -> list[tuple[int, float]]:
    """(pairs, Spearman) of consecutive rungs, over the trials that reached both."""
    out = []
    for rung in range(n_rungs - 1):
        pairs = np.array([(s[rung], s[rung + 1]) for s in scores if rung + 1 in s])
        out.append((len(pairs), float(spearmanr(pairs[:, 0], pairs[:, 1])[0]) if len(pairs) >= 4 else float("nan")))
    return out


def replay_loss(scores: list[dict[int, float]], n_rungs: int, halving: Halving) -> tuple[int, float]:
    """(trials ``halving`` promotes past rung 0, objective lost among those that reached all rows)."""
    history: list[dict] = []
    kept = []
    for k, s in enumerate(scores):
        if promoted(s[0], 0, history[: max(0, k - LAG)], halving):
            kept.append(k)
        history.append({"intermediate": {0: s[0]}})
    last = n_rungs - 1
    finals = {k: s[last] for k, s in enumerate(scores) if last in s}
    best_kept = max((finals[k] for k in kept if k in finals), default=float("nan"))
    return len(kept), max(finals.values()) - best_kept


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--factor", type=float, default=3.0)
    parser.add_argument("--startup", type=int, default=3)
    parser.add_argument("--replay-factor", type=float, default=None)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shifts = []
    print(f"{'study':<20} {'rows':<20} {'reached (measured)':<20} {'independent':<20} {'model':<20} "
          f"{'rank corr (pairs)':<20} {'drift':>6} {'spread':>6}"
          + (f" {'kept @' + str(args.replay_factor):>10} {'loss':>7}" if args.replay_factor else ""))
    for results in args.results:
        url = resolve_url(results, create=False)
        for name in sorted(optuna.get_all_study_names(storage=url)):
            found = rung_scores(optuna.load_study(study_name=name, storage=url))
            if found is None:
                continue
            rows, scores = found
            halving = Halving(min_rows=rows[0], factor=args.factor, startup=args.startup)
            reached = [sum(1 for s in scores if rung in s) for rung in range(len(rows))]
            independent = expected_rung_counts(len(scores), len(rows), halving, LAG, **INDEPENDENT_SCORES)
            model = expected_rung_counts(len(scores), len(rows), halving, LAG)
            shift = sampler_shift(scores)
            if shift:
                shifts.append(shift)
            replay = ""
            if args.replay_factor:
                kept, loss = replay_loss(scores, len(rows), Halving(rows[0], args.replay_factor, args.startup))
                replay = f" {kept:>10} {loss:>7.4f}"
            corr = " ".join(f"{c:.2f}({n})" for n, c in rung_correlations(scores, len(rows)))
            label = "/".join(name.split("|")[1:3])
            print(f"{label:<20} {'/'.join(map(str, rows)):<20} {'/'.join(map(str, reached)):<20} "
                  f"{'/'.join(f'{c:.1f}' for c in independent):<20} {'/'.join(f'{c:.1f}' for c in model):<20} "
                  f"{corr:<20} {shift[0] if shift else float('nan'):>6.2f} {shift[1] if shift else float('nan'):>6.2f}"
                  + replay)
    if shifts:
        drift, spread = np.mean(shifts, axis=0)
        print(f"mean over {len(shifts)} studies: drift {drift:.2f}, spread {spread:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
