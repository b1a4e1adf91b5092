"""Which epoch-selection rule keeps fixed-threshold test scores stable across seeds?

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_epoch_selection.py \
        [--models cgmvae,mpvae,mlp] [--datasets emotions,yeast,scene] [--seeds 0,1,2,3,4] \
        [--epochs cgmvae=80,mpvae=80,mlp=80] [--standardize both|true|false] \
        [--curves benchmarks/results/epoch_selection_curves.jsonl] [--table-only]

Each (model, dataset, seed, standardize) is trained ONCE, at the model's default
hyperparameters with a fixed epoch budget, on the dataset's published train/test split with
validation = a stratified 15% of the training file (``benchmark.data.splits.make_split``, split
seed 0). After every epoch the script records the validation macro-F1 over the nine-point
grid, the validation cross-entropy, and the test ebF1 / miF1 / maF1 of that epoch's weights
at the fixed threshold 0.5 and under the val protocol (thresholds chosen on validation). Every selection rule is then evaluated offline from these
curves with ``benchmark.modelapi.epoch_selection.select_epoch`` (the function ``train_epochs`` uses
online), so no rule needs its own training run.

The curves are appended to a JSON-lines file as they are made; a rerun skips what is there
(``--table-only`` only prints). Printed: per (model, dataset, standardize, rule) the
per-seed test ebF1 @0.5, its median, the worst gap below the median (the issue's bar:
<= 0.05), and the chosen epochs; then a summary per rule.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: rule label -> (epoch_selection, selection_window, min_epochs)
RULES = {
    "reference": ("reference", 1, 1),
    "reference,min10": ("reference", 1, 10),
    "smoothed3": ("smoothed", 3, 1),
    "smoothed5": ("smoothed", 5, 1),
    "smoothed10": ("smoothed", 10, 1),
    "smoothed5,min10": ("smoothed", 5, 10),
    "val_loss": ("val_loss", 1, 1),
    "last": ("last", 1, 1),
}
GAP_LIMIT = 0.05


def train_curves(model_name: str, dataset_name: str, seed: int, epochs: int, standardize: bool) -> dict:
    """One fit; per-epoch validation criteria and test scores at threshold 0.5."""
    import torch

    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split
    from benchmark.evaluation.metrics import compute
    from benchmark.evaluation.thresholds import evaluate_protocols
    from benchmark.modelapi.base import get_model
    from benchmark.modelapi.torch_loop import TrainingDiverged

    torch.set_num_threads(1)
    dataset = load_dataset(dataset_name)
    split = make_split(dataset, seed=0, val_size=0.15)
    X, Y = dataset.X, dataset.Y
    Y = Y.toarray() if hasattr(Y, "toarray") else np.asarray(Y)
    model = get_model(model_name)(seed=seed, device="cpu", n_threads=1, epochs=epochs, standardize=standardize,
                                  epoch_selection="last")
    X_val, Y_val, X_test, Y_test = X[split.val], Y[split.val], X[split.test], Y[split.test]
    test = {"ebF1": [], "miF1": [], "maF1": []}
    test_val_protocol = {"ebF1": [], "miF1": [], "maF1": []}

    def on_epoch(epoch, val_score):  # weights of this epoch, net in eval mode
        s_test = model.predict_proba(X_test)
        fixed = compute(Y_test, s_test, 0.5)
        val_protocol = evaluate_protocols(Y_val, model.predict_proba(X_val), Y_test, s_test)["val"]["metrics"]
        for name in test:
            test[name].append(float(fixed[name]))
            test_val_protocol[name].append(float(val_protocol[name]))

    cpu0, t0 = time.process_time(), time.perf_counter()
    head = {"model": model_name, "dataset": dataset_name, "seed": seed, "epochs": epochs, "standardize": standardize,
            "n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test)}
    try:
        model.fit(X[split.train], Y[split.train], X_val, Y_val, on_epoch=on_epoch)
    except TrainingDiverged as error:  # a finding (e.g. raw features), not a crash of the study
        return {**head, "diverged": str(error), "cpu_s": time.process_time() - cpu0,
                "wall_s": time.perf_counter() - t0}
    return {
        **head,
        "val_maF1": model.fit_info["val_scores"], "val_loss": model.fit_info["val_losses"],
        "test": test, "test_val_protocol": test_val_protocol, "cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - t0,
    }


def load_curves(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key(r: dict) -> tuple:
    return (r["model"], r["dataset"], int(r["seed"]), int(r["epochs"]), bool(r["standardize"]))


def evaluate(curves: list[dict]) -> list[dict]:
    """Per (model, dataset, standardize, rule): per-seed test ebF1 @0.5 at the chosen epoch."""
    from benchmark.modelapi.epoch_selection import select_epoch

    groups: dict[tuple, list[dict]] = {}
    for r in sorted(curves, key=key):
        groups.setdefault((r["model"], r["dataset"], r["standardize"], r["epochs"]), []).append(r)
    rows = []
    for (model, dataset, standardize, epochs), runs in groups.items():
        diverged = [r["seed"] for r in runs if r.get("diverged")]
        if diverged:  # no curves to select from: one row says so
            rows.append({"model": model, "dataset": dataset, "standardize": standardize, "epochs": epochs,
                         "rule": "(all)", "diverged": diverged, "n_seeds": len(runs)})
            continue
        for label, (rule, window, min_epochs) in RULES.items():
            chosen = [select_epoch(r["val_maF1"], r["val_loss"], rule, window, min_epochs) for r in runs]
            eb = np.array([r["test"]["ebF1"][e - 1] for r, e in zip(runs, chosen)])
            mi = np.array([r["test"]["miF1"][e - 1] for r, e in zip(runs, chosen)])
            ma = np.array([r["test"]["maF1"][e - 1] for r, e in zip(runs, chosen)])
            vp = {m: float(np.mean([r["test_val_protocol"][m][e - 1] for r, e in zip(runs, chosen)]))
                  for m in ("ebF1", "miF1", "maF1")}
            median = float(np.median(eb))
            rows.append({"model": model, "dataset": dataset, "standardize": standardize, "epochs": epochs,
                         "rule": label, "seeds": [r["seed"] for r in runs], "ebF1": eb.tolist(),
                         "median": median, "worst_gap": float(median - eb.min()), "chosen": chosen,
                         "mean_ebF1": float(eb.mean()), "mean_miF1": float(mi.mean()), "mean_maF1": float(ma.mean()),
                         "val_protocol": vp})
    return rows


def vp_text(row: dict) -> str:
    return "/".join(f"{row['val_protocol'][m]:.3f}" for m in ("ebF1", "miF1", "maF1"))


def print_tables(rows: list[dict], curves: list[dict]) -> None:
    print(f"test ebF1 at threshold 0.5 per seed, at the epoch each rule keeps; gap = median - worst seed "
          f"(bar: <= {GAP_LIMIT}); 'fixed mi/ma' = mean test miF1 / maF1 @0.5; 'val eb/mi/ma' = mean test "
          "ebF1 / miF1 / maF1 under the val protocol (thresholds chosen on validation)")
    header = f"{'model':<7} {'dataset':<9} {'std':<5} {'rule':<16} {'per-seed ebF1':<36} {'median':>6} {'gap':>6}  " \
             f"{'fixed mi/ma':<12} {'val eb/mi/ma':<18} chosen epochs"
    print(header)
    last = None
    for r in rows:
        group = (r["model"], r["dataset"], r["standardize"])
        if last is not None and group != last:
            print()
        last = group
        if r.get("diverged"):
            print(f"{r['model']:<7} {r['dataset']:<9} {str(r['standardize'])[0]:<5} {r['rule']:<16} "
                  f"training diverged (loss not finite) for seed(s) {r['diverged']} of {r['n_seeds']}")
            continue
        flag = "" if r["worst_gap"] <= GAP_LIMIT else " !"
        print(f"{r['model']:<7} {r['dataset']:<9} {str(r['standardize'])[0]:<5} {r['rule']:<16} "
              f"{' '.join(f'{v:.3f}' for v in r['ebF1']):<36} {r['median']:>6.3f} {r['worst_gap']:>6.3f}{flag:<2}"
              f"{r['mean_miF1']:.3f}/{r['mean_maF1']:.3f}  "
              f"{vp_text(r)}  "
              f"{','.join(map(str, r['chosen']))}")
    print("\nsummary per (standardize, rule): cells over the gap bar, largest gap, mean of median test ebF1 @0.5")
    summary: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("diverged"):
            print(f"  standardize={str(r['standardize']):<5} {r['model']} on {r['dataset']}: diverged, "
                  "not in the per-rule summary")
            continue
        summary.setdefault((r["standardize"], r["rule"]), []).append(r)
    for (standardize, rule), group in sorted(summary.items(), key=lambda kv: (not kv[0][0], list(RULES).index(kv[0][1]))):
        over = sum(g["worst_gap"] > GAP_LIMIT for g in group)
        vp = {m: np.mean([g["val_protocol"][m] for g in group]) for m in ("ebF1", "miF1", "maF1")}
        print(f"  standardize={str(standardize):<5} {rule:<16} over bar: {over}/{len(group)}  "
              f"max gap {max(g['worst_gap'] for g in group):.3f}  mean median ebF1@0.5 "
              f"{np.mean([g['median'] for g in group]):.4f}  mean val-protocol eb/mi/ma "
              f"{vp['ebF1']:.4f}/{vp['miF1']:.4f}/{vp['maF1']:.4f}")
    cpu = sum(c["cpu_s"] for c in curves)
    wall = sum(c["wall_s"] for c in curves)
    print(f"\n{len(curves)} training runs, {cpu / 60:.1f} CPU-min, {wall / 60:.1f} wall-min (1 torch thread)")
    for m in sorted({c["model"] for c in curves}):
        for d in sorted({c["dataset"] for c in curves}):
            sel = [c for c in curves if c["model"] == m and c["dataset"] == d]
            if sel:
                print(f"  {m:<7} {d:<9} {sel[0]['epochs']} epochs, n train/val/test {sel[0]['n_train']}/"
                      f"{sel[0]['n_val']}/{sel[0]['n_test']}: {np.mean([c['cpu_s'] for c in sel]):.1f} CPU-s per run")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cgmvae,mpvae,mlp")
    parser.add_argument("--datasets", default="emotions,yeast,scene")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--epochs", default="cgmvae=80,mpvae=80,mlp=80",
                        help="fixed epoch budget per model, model=N,...")
    parser.add_argument("--standardize", default="both", choices=["both", "true", "false"])
    parser.add_argument("--curves", default=str(REPO / "benchmarks" / "results" / "epoch_selection_curves.jsonl"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLCBENCH_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    os.environ.setdefault("MLCBENCH_OFFLINE", "1")
    budgets = {k: int(v) for k, v in (kv.split("=") for kv in args.epochs.split(","))}
    standardize = {"both": [True, False], "true": [True], "false": [False]}[args.standardize]
    path = Path(args.curves)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves = load_curves(path)
    if not args.table_only:
        done = {key(c) for c in curves}
        for model in args.models.split(","):
            for dataset in args.datasets.split(","):
                for std in standardize:
                    for seed in (int(s) for s in args.seeds.split(",")):
                        k = (model, dataset, seed, budgets[model], std)
                        if k in done:
                            continue
                        run = train_curves(model, dataset, seed, budgets[model], std)
                        with path.open("a") as handle:
                            handle.write(json.dumps(run) + "\n")
                        curves.append(run)
                        print(f"{model} {dataset} std={std} seed={seed}: {run['cpu_s']:.1f} CPU-s "
                              f"{run['wall_s']:.1f} wall-s", file=sys.stderr, flush=True)
    wanted = {(m, d) for m in args.models.split(",") for d in args.datasets.split(",")}
    curves = [c for c in curves if (c["model"], c["dataset"]) in wanted and c["epochs"] == budgets[c["model"]]
              and c["standardize"] in standardize]
    print_tables(evaluate(curves), curves)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
