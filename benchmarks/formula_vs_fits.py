"""The cost formula against timed fits: how far is one fit's estimate from its measured CPU time?

    python benchmarks/formula_vs_fits.py --suite paper --datasets scene,bibtex \\
        --models br,mlp,rf --epochs 2 --trees 25 [--draws 2]

For each (dataset, model) of the suite: the formula's CPU seconds for one fit on the full
training rows (the model timed on its reference group, the plan's smallest dataset, then
scaled and corrected by the dataset's small probe fits, as the dry run does) and the CPU seconds of that fit run here, at the group's fixed settings and at
``--draws`` random draws of its tuned space. ``--epochs``, ``--trees``, ``--chains`` and
``--member-factor`` cap the fits
(the formula is asked about the same capped settings), so a table over the paper's datasets
takes minutes, not hours. Run it on a quiet machine: CPU seconds are robust to other load,
not immune to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.cost.cache import CostCache  # noqa: E402
from benchmark.cost.estimate import _probe, _references  # noqa: E402
from benchmark.cost.formula import Probe, Shape, scaled, space_draws  # noqa: E402
from benchmark.data.settings import cache_dir  # noqa: E402
from benchmark.execution.plan import build_plan  # noqa: E402
from benchmark.execution.pool import configure_threads  # noqa: E402
from benchmark.execution.resources import make_plan  # noqa: E402
from benchmark.execution.suite import load_suite  # noqa: E402
from benchmark.execution.worker import run_job  # noqa: E402


def capped(params: dict, cls, epochs: int, trees: int, chains: int = 10, member_factor: float = 4.0) -> dict:
    out = dict(params)
    merged = {**cls.defaults, **params}
    if "n_chains" in merged:
        out["n_chains"] = min(int(merged["n_chains"]), chains)
    if "model_count_factor" in merged:
        out["model_count_factor"] = min(float(merged["model_count_factor"]), member_factor)
    if "epochs" in merged:
        out["epochs"] = min(int(merged["epochs"]), epochs)
    if "n_estimators" in merged:
        out["n_estimators"] = min(int(merged["n_estimators"]), trees)
    return out


def timed_fit(plan, group, params: dict) -> float:
    job = dataclasses.replace(plan.job(group, "cell", plan.trial_seed, params), device="cpu")
    started = time.process_time()
    result = run_job(job)
    if result.state == "failed":
        raise RuntimeError(result.error.strip().splitlines()[-1])
    return time.process_time() - started


def read_measured(path: str) -> dict[tuple[str, str, str], float]:
    """(dataset, model, setting) -> measured seconds, from this script's table in ``path``."""
    measured = {}
    for line in Path(path).read_text().splitlines():
        words = line.split()
        if len(words) == 6 and words[2] == "fixed" or len(words) == 7 and words[2] == "draw":
            setting = " ".join(words[2:-3])
            try:
                measured[(words[0], words[1], setting)] = float(words[-2])
            except ValueError:
                continue
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="paper")
    parser.add_argument("--datasets", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trees", type=int, default=25)
    parser.add_argument("--draws", type=int, default=0)
    parser.add_argument("--measured", help="an earlier output of this script: its measured seconds are reused "
                        "instead of fitting again (to compare a changed formula with the same fits)")
    parser.add_argument("--chains", type=int, default=10, help="ECC's chains at most")
    parser.add_argument("--member-factor", type=float, default=4.0, help="RAkEL-o's m / L at most")
    args = parser.parse_args()
    suite = load_suite(args.suite, data_dir=args.data_dir, datasets=args.datasets.split(","),
                       models=args.models.split(","), seeds=[0], fractions=[1.0])
    plan = build_plan(suite, make_plan("cpu", 1, data_dir=args.data_dir))
    configure_threads(1)
    cache = CostCache(cache_dir() / "cost", 1)
    references, keys = _references(plan, cache, {g.model.name for g in plan.groups}, print)
    print(f"{'dataset':<10} {'model':<8} {'setting':<8} {'formula s':>10} {'measured s':>10} {'ratio':>6}")
    ratios = []
    earlier = read_measured(args.measured) if args.measured else {}
    if not earlier:
        timed_fit(plan, plan.groups[0], dict(plan.groups[0].model.params))  # warm-up: the split cache, first calls
    for group in plan.groups:
        cls, ref = group.model.cls, references.get(group.model.name)
        if ref is None:
            continue
        parts = group.data.parts(group.fraction, plan.trial_seed)
        shape = Shape.of(group.data, len(parts.val), len(parts.test))
        settings = [("fixed", dict(group.model.params))]
        if group.model.tuned and args.draws:
            settings += [(f"draw {i}", {**group.model.params, **d})
                         for i, d in enumerate(space_draws(group.model.space, args.draws))]
        for label, params in settings:
            params = capped(params, cls, args.epochs, args.trees, args.chains, args.member_factor)
            merged = {**cls.defaults, **params}
            correction = Probe() if cache.key(group) == keys[group.model.name] else _probe(plan, cache, group, ref, print)
            predicted = correction.apply(scaled(ref, cls, shape, params)).seconds(len(parts.train), merged.get("epochs"))
            try:
                measured = earlier[(group.dataset, group.model.name, label)] if earlier else timed_fit(plan, group, params)
            except KeyError:
                continue
            except RuntimeError as exc:
                print(f"{group.dataset:<10} {group.model.name:<8} {label:<8} failed: {exc}")
                continue
            ratios.append(measured / predicted)
            print(f"{group.dataset:<10} {group.model.name:<8} {label:<8} {predicted:>10.2f} {measured:>10.2f} "
                  f"{measured / predicted:>6.2f}", flush=True)
    if ratios:
        ratios.sort()
        print(f"measured / formula: median {ratios[len(ratios) // 2]:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}, "
              f"{sum(0.65 <= r <= 1.35 for r in ratios)}/{len(ratios)} within +-35%")


if __name__ == "__main__":
    main()
