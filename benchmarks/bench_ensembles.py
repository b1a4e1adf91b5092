"""ECC and RAkEL-o in steps of members: cost per member, cost of reporting, and how early
the validation ranking of configurations settles (issue 21, item 3).

For each dataset (published split, split seed 0, the split's validation share) and model:

1. defaults, fitted twice in one process: with validation data and a callback (what a
   tuning trial does) and without (CPU seconds of each; the model's own
   ``validation_cpu_seconds``, the members' validation predictions included, as a share
   of the reporting fit);
2. ``--configs`` configurations drawn from the model's search space (optuna's
   RandomSampler, seed 21), each fitted once with validation data: the validation score
   after every step. Per step k: Spearman's rho between the scores at step k and the
   final ones (configurations that have a step k), and the engine's median pruner
   (``EpochPruner``, 3 startup trials) replayed over the configurations in order for each
   warm-up: trials pruned, share of the CPU seconds saved, and whether the configuration
   with the best final score would have been pruned.

delicious: a fit is far over two CPU minutes, so only the cost of a few members is
measured and a fit's cost extrapolated from it (marked as an estimate).

One thread, CPU seconds (``time.process_time``); run with ``nice -n 5``. Writes the raw
measurements to ``benchmarks/results/ensembles_steps.json`` (kept between runs: a dataset
already measured is not measured again unless ``--fresh``) and the table to
``benchmarks/results/ensembles_steps.txt``.

    python benchmarks/bench_ensembles.py [--datasets yeast scene bibtex] [--configs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLCBENCH_OFFLINE", "1")

import optuna  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmark.data.loading import load_dataset  # noqa: E402
from benchmark.data.splits import make_split  # noqa: E402
from benchmark.evaluation.thresholds import VAL_GRID  # noqa: E402
from benchmark.execution.tuning import EpochPruner  # noqa: E402
from benchmark.execution.worker import Pruning  # noqa: E402
from benchmark.modelapi.base import get_model  # noqa: E402
from benchmark.modelapi.sklearn_utils import make_scaler  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("ecc", "rakelo")
WARMUPS = (1, 2, 3, 4)
#: stop drawing configurations for a (dataset, model) once they have used this many CPU seconds
CONFIG_BUDGET = {"yeast": 300.0, "scene": 300.0, "bibtex": 500.0}
#: fits of the defaults with and without validation data (medians)
REPEATS = {"yeast": 5, "scene": 5}


def parts_of(name: str):
    dataset = load_dataset(name)
    split = make_split(dataset, seed=0)
    return {part: (dataset.X[idx], dataset.Y[idx]) for part, idx in
            (("train", split.train), ("val", split.val), ("test", split.test))}


def timed_fit(name: str, parts, with_val: bool, **params):
    model = get_model(name)(seed=0, n_threads=1, **params)
    model.selection_grid = tuple(VAL_GRID)  # as the worker sets it (the val protocol's grid)
    val = parts["val"] if with_val else (None, None)
    cpu0 = time.process_time()
    model.fit(*parts["train"], *val, on_epoch=(lambda step, score: None) if with_val else None)
    return model, time.process_time() - cpu0


def draw_configs(name: str, n: int) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=21))
    return [dict(study.ask(get_model(name).search_space).params) for _ in range(n)]


def measure(dataset: str, name: str, parts, n_configs: int) -> dict:
    small = {part: (X[:300], Y[:300]) for part, (X, Y) in parts.items()}
    timed_fit(name, small, with_val=True)  # imports (skmultilearn, torch for the score) out of the timings
    repeats = REPEATS.get(dataset, 1)
    with_runs, without_runs = [], []
    for _ in range(repeats):  # alternated, medians: the machine is shared
        with_runs.append(timed_fit(name, parts, with_val=True))
        without_runs.append(timed_fit(name, parts, with_val=False)[1])
    with_val, cpu_with = sorted(with_runs, key=lambda run: run[1])[(repeats - 1) // 2]
    cpu_without = float(np.median(without_runs))
    info = with_val.fit_info
    members = sum(info["step_members"])
    row = {"dataset": dataset, "model": name, "shape": [int(parts["train"][0].shape[0]), int(parts["val"][0].shape[0]),
                                                          int(parts["train"][0].shape[1]), int(parts["train"][1].shape[1])],
           "members": members, "steps": info["n_steps"], "repeats": repeats, "step_members": info["step_members"],
           "cpu_with_val": cpu_with, "cpu_without_val": cpu_without,
           "validation_cpu": info["validation_cpu_seconds"], "step_cpu": info["step_cpu_seconds"],
           "default_val_scores": info["val_scores"], "configs": []}
    spent = 0.0
    for params in draw_configs(name, n_configs):
        if spent > CONFIG_BUDGET.get(dataset, 300.0):
            break
        model, cpu = timed_fit(name, parts, with_val=True, **params)
        spent += cpu
        row["configs"].append({"params": params, "cpu": cpu, "val_scores": model.fit_info["val_scores"],
                               "step_cpu": model.fit_info["step_cpu_seconds"],
                               "step_members": model.fit_info["step_members"]})
        print(f"  {dataset} {name} {params} {cpu:.1f} CPU-s, {model.fit_info['n_steps']} steps, "
              f"final {model.fit_info['val_scores'][-1]:.4f}", flush=True)
    return row


def delicious_estimate(n_members: int = 12) -> list[dict]:
    """CPU seconds of a few members on delicious, extrapolated to a default fit."""
    from sklearn.multioutput import ClassifierChain
    from skmultilearn.problem_transform import LabelPowerset

    parts = parts_of("delicious")
    X, Y = parts["train"]
    ecc, rakelo = get_model("ecc")(seed=0), get_model("rakelo")(seed=0)
    Xs = make_scaler(X).fit_transform(X)  # as the models scale (delicious is sparse: no centring)
    dense = not hasattr(Xs, "tocsr")
    varying = np.flatnonzero((Y.sum(0) > 0) & (Y.sum(0) < Y.shape[0]))
    rng = np.random.default_rng(0)
    rows = []
    # ECC: the first links of a chain (a link sees the earlier labels: later links cost more,
    # so this is a lower bound)
    order = rng.permutation(varying.size)[:n_members]
    cpu0 = time.process_time()
    ClassifierChain(ecc._logistic(), order=np.arange(n_members), chain_method="predict_proba").fit(
        Xs, Y[:, varying[order]])
    per_link = (time.process_time() - cpu0) / n_members
    rows.append({"model": "ecc", "measured": f"first {n_members} links of a chain", "per_unit": per_link,
                 "unit": "link", "units_per_member": int(varying.size), "members": 10,
                 "shape": [int(X.shape[0]), int(parts["val"][0].shape[0]), int(X.shape[1]), int(Y.shape[1])]})
    # RAkEL-o: members on random 3-labelsets
    cpu0 = time.process_time()
    for _ in range(n_members):
        subset = np.sort(rng.choice(varying.size, size=3, replace=False))
        LabelPowerset(classifier=rakelo._logistic(), require_dense=[dense, dense]).fit(Xs, Y[:, varying[subset]])
    per_member = (time.process_time() - cpu0) / n_members
    rows.append({"model": "rakelo", "measured": f"{n_members} members", "per_unit": per_member, "unit": "member",
                 "units_per_member": 1, "members": int(round(2.0 * varying.size)),
                 "shape": rows[0]["shape"]})
    return rows


# ------------------------------------------------------------------------------------------ analysis


def replay_pruner(configs: list[dict], warmup: int) -> dict:
    """The engine's median pruner over the configurations in order (3 startup trials)."""
    history, pruned, saved, total = [], [], 0.0, 0.0
    for i, config in enumerate(configs):
        pruner = EpochPruner(Pruning("median", startup=3, warmup=warmup), list(history))
        total += sum(config["step_cpu"])
        try:
            for step, score in enumerate(config["val_scores"], start=1):
                pruner(step, score)
        except optuna.TrialPruned:
            pruned.append(i)
            saved += sum(config["step_cpu"][step:])
            continue
        history.append({"state": "COMPLETE", "params": {}, "distributions": {}, "value": config["val_scores"][-1],
                        "intermediate": {str(s): v for s, v in enumerate(config["val_scores"], start=1)}})
    finals = [c["val_scores"][-1] for c in configs]
    best = int(np.argmax(finals))
    return {"pruned": pruned, "saved": saved / total if total else 0.0, "lost_best": best in pruned,
            "best_kept": max(f for i, f in enumerate(finals) if i not in pruned) if len(pruned) < len(finals) else None,
            "best": finals[best]}


def rho_at(configs: list[dict], step: int) -> tuple[float, int]:
    have = [c for c in configs if len(c["val_scores"]) >= step]
    if len(have) < 4:
        return float("nan"), len(have)
    at = [c["val_scores"][step - 1] for c in have]
    final = [c["val_scores"][-1] for c in have]
    rho = spearmanr(at, final).statistic if np.std(at) > 0 and np.std(final) > 0 else float("nan")
    return float(rho), len(have)


def table(rows: list[dict], estimates: list[dict]) -> str:
    out = ["ECC and RAkEL-o grown in steps of members (benchmarks/bench_ensembles.py)",
           "One thread, CPU seconds; split seed 0; validation = the split's validation share;",
           "step score = best macro-F1 over the val grid (0.05..0.95) of the ensemble so far.", "",
           "1. Defaults (ecc: 10 chains, one a step; rakelo: k = 3, m = 2L, ceil(L/3) members a step)", "",
           f"{'dataset':9s} {'model':7s} {'train/val x feat x L':>22s} {'members':>7s} {'steps':>5s} "
           f"{'CPU-s/fit':>9s} {'CPU-s/member':>12s} {'report %':>8s} {'with/without':>12s}"]
    for r in rows:
        members = r["members"]
        per_member = (sum(r["step_cpu"]) - r["validation_cpu"]) / members
        n, v, f, L = r["shape"]
        out.append(f"{r['dataset']:9s} {r['model']:7s} {f'{n}/{v} x {f} x {L}':>22s} {members:7d} {r['steps']:5d} "
                   f"{r['cpu_without_val']:9.2f} {per_member:12.4f} {100 * r['validation_cpu'] / r['cpu_with_val']:7.2f}% "
                   f"{r['cpu_with_val'] / r['cpu_without_val']:12.3f}")
    for e in estimates:
        n, v, f, L = e["shape"]
        per_member = e["per_unit"] * e["units_per_member"]
        out.append(f"{'delicious':9s} {e['model']:7s} {f'{n}/{v} x {f} x {L}':>22s} {e['members']:7d} {'-':>5s} "
                   f"{'~' + format(per_member * e['members'], '.0f'):>9s} {'~' + format(per_member, '.3f'):>12s} "
                   f"{'-':>8s} {'-':>12s}  estimate: {e['measured']} ({e['per_unit']:.3f} CPU-s per {e['unit']})")
    out += ["", "report % = the model's validation_cpu_seconds (members' validation predictions + the score)",
            "as a share of the reporting fit; with/without = CPU of a fit with validation data and a callback",
            "over one without (medians of 5 alternated fits each on yeast and scene, 1 on bibtex; the",
            "machine is shared: a few % of noise either way).",
            "CPU-s/member excludes reporting; CPU-s/fit is the fit without validation data.", "",
            "2. Random configurations of the search space (optuna RandomSampler, seed 21)", "",
            "rho@k = Spearman's rho between the validation score at step k and the final one",
            "(n = configurations with a step k). Pruner w = the engine's median pruner (3 startup",
            "trials) replayed in draw order with warm-up w: pruned trials, CPU saved, best lost?", ""]
    for r in rows:
        configs = r["configs"]
        if not configs:
            continue
        steps = max(len(c["val_scores"]) for c in configs)
        shown = [k for k in (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24) if k <= steps]
        finals = [c["val_scores"][-1] for c in configs]
        cpu = sum(sum(c["step_cpu"]) for c in configs)
        out.append(f"{r['dataset']} {r['model']}: {len(configs)} configurations, {cpu:.0f} CPU-s, steps "
                   f"{min(len(c['val_scores']) for c in configs)}-{steps}, final val maF1 "
                   f"{min(finals):.3f}-{max(finals):.3f}")
        rhos = []
        for k in shown:
            rho, n = rho_at(configs, k)
            rhos.append(f"rho@{k}={rho:+.2f}" + (f"(n={n})" if n < len(configs) else ""))
        out.append("  " + " ".join(rhos))
        for w in WARMUPS:
            p = replay_pruner(configs, w)
            kept = "-" if p["best_kept"] is None else f"{p['best_kept']:.4f}"
            out.append(f"  pruner w={w}: pruned {len(p['pruned'])}/{len(configs)} {p['pruned']}, saved "
                       f"{100 * p['saved']:4.1f}% CPU, best {p['best']:.4f} "
                       f"{'LOST (best kept ' + kept + ')' if p['lost_best'] else 'kept'}")
        for c in configs:
            params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in c["params"].items())
            scores = " ".join(f"{s:.3f}" for s in c["val_scores"][:12]) + (" ..." if len(c["val_scores"]) > 12 else "")
            out.append(f"    {params:70s} {sum(c['step_cpu']):7.1f}s  {scores}")
        out.append("")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=["yeast", "scene", "bibtex"])
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--delicious", action="store_true", help="measure a few delicious members")
    parser.add_argument("--fresh", action="store_true", help="measure again what the JSON file holds")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    raw_path = RESULTS / "ensembles_steps.json"
    raw = json.loads(raw_path.read_text()) if raw_path.exists() and not args.fresh else {"rows": [], "delicious": []}
    if not args.table_only:
        with threadpool_limits(1):
            for dataset in args.datasets:
                parts = None
                for name in MODELS:
                    if any(r["dataset"] == dataset and r["model"] == name for r in raw["rows"]):
                        continue
                    parts = parts or parts_of(dataset)
                    print(f"{dataset} {name}", flush=True)
                    raw["rows"].append(measure(dataset, name, parts, args.configs))
                    raw_path.write_text(json.dumps(raw, indent=1))
            if args.delicious and not raw["delicious"]:
                raw["delicious"] = delicious_estimate()
                raw_path.write_text(json.dumps(raw, indent=1))
    order = {d: i for i, d in enumerate(["yeast", "scene", "bibtex"])}
    rows = sorted(raw["rows"], key=lambda r: (order.get(r["dataset"], 9), r["model"]))
    text = table(rows, raw["delicious"])
    (RESULTS / "ensembles_steps.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
