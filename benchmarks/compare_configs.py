"""Scores of one model under two configurations in one store: did a change move them?

    python benchmarks/compare_configs.py STORE MODEL [MODEL ...] [--fraction 1] [--against rf=rfp]

For each model, the store's configurations of it (oldest first) at one training fraction:
test ebF1 / miF1 / maF1 (val protocol) as mean ± sample std over seeds, per dataset, and
whether the newest configuration's mean lies within one seed-std (the larger of the two)
of the oldest one's. ``--against a=b`` compares model b's newest configuration with a's oldest
(a variant beside the standard model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.store.results import ResultsStore  # noqa: E402

METRICS = ("ebF1", "miF1", "maF1")


def summaries(frame, model: str, fraction: float, newest: bool) -> dict:
    """Per dataset: the oldest (or newest) configuration's mean and std of each metric."""
    rows = frame[(frame.model == model) & (frame.fraction == fraction) & (frame.status == "done")]
    out = {}
    for dataset, cells in rows.groupby("dataset"):
        order = cells.groupby("config")["finished_at"].min().sort_values().index.tolist()
        chosen = cells[cells.config == (order[-1] if newest else order[0])]
        values = {m: [r["val"][m] for r in chosen.metrics] for m in METRICS}
        out[dataset] = {m: _mean_std(v) for m, v in values.items()}
        out[dataset]["_configs"] = len(order)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, (sum((x - mean) ** 2 for x in values) / max(len(values) - 1, 1)) ** 0.5


def compare(label: str, old, new) -> list[str]:
    lines = []
    for dataset in sorted(set(old) & set(new)):
        parts, within = [], True
        for m in METRICS:
            (a, sa), (b, sb) = old[dataset][m], new[dataset][m]
            ok = abs(b - a) <= max(sa, sb, 1e-12)
            within &= ok
            parts.append(f"{m} {a:.4f}±{sa:.4f} -> {b:.4f}±{sb:.4f}{'' if ok else ' *'}")
        lines.append(f"{label:<14} {dataset:<9} " + "  ".join(parts) + ("   within one seed-std" if within else "   MOVED"))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--against", action="append", default=[], help="a=b: b's newest config against a's oldest")
    args = parser.parse_args()
    frame = ResultsStore(args.store, create=False).runs_frame()
    print(f"store {args.store}, fraction {args.fraction:g}, test scores under the val protocol, mean ± std over seeds")
    print("(* = the new mean is more than one seed-std from the old)")
    for model in args.models:
        old, new = summaries(frame, model, args.fraction, False), summaries(frame, model, args.fraction, True)
        two = {d for d in old if old[d]["_configs"] >= 2}
        print("\n".join(compare(f"{model} old->new", {d: old[d] for d in two}, {d: new[d] for d in two})))
    for pair in args.against:
        a, b = pair.split("=")
        old, new = summaries(frame, a, args.fraction, False), summaries(frame, b, args.fraction, True)
        print("\n".join(compare(f"{a} -> {b}", old, new)))


if __name__ == "__main__":
    main()
