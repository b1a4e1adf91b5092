"""Seconds per epoch and peak memory of an epoch-trained model at reference hyperparameters.

    python benchmarks/bench_vae_epochs.py --model cgmvae [--configs yeast,scene,bibtex,yeast-e2048]
        [--epochs 6] [--repeats 3] [--threads 1] [--device cpu] [--set key=value ...]
        [--scores] [--data-dir DIR] [--json FILE]

For each configuration (a dataset plus hyperparameter overrides) and each repeat, a fresh
Python process loads the dataset, warms up with a one-epoch fit on a few rows, takes the published split with validation = a stratified
15% of the training file (``benchmark.data.splits.make_split``, split seed 0), and fits the model
for ``--epochs`` epochs with per-epoch validation. Reported, over all epochs but the first
(warm-up) of all repeats, min and median of:

- train s/ep:   one training pass (``fit_info["train_seconds_per_epoch"]``);
- epoch s/ep:   training plus the per-epoch validation scoring (``fit_info["epoch_seconds"]``);
- cpu s/ep:     process CPU seconds per epoch, training plus validation (all threads; less
                sensitive than wall time to other processes sharing the cores);
- peak memory:  CPU: the process's peak RSS (``ru_maxrss``, includes Python, torch and the
                dataset) and its rise during the measured fit (after the warm-up);
                CUDA: ``torch.cuda.max_memory_allocated``.

With ``--scores`` the model also reports its test ebF1/miF1/maF1/P@1 under the ``val``
threshold protocol (meaningful only with the model's full epoch budget).

Configurations: "yeast", "scene", "bibtex" at the model's reference hyperparameters, and
"yeast-e2048" (C-GMVAE's emb_size 2048: the anchor measured with the authors' code, about
1.6 s/epoch with 0.7 s of training on a 2-core CPU for 1,275 training and 225 validation
rows, which is exactly yeast's published training file split 85/15).

Adding a model: put a function ``dataset name -> dict of hyperparameters`` into
``REFERENCE_PARAMS`` (see ``cgmvae_reference``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

METRICS = ("ebF1", "miF1", "maF1", "P@1")


def cgmvae_reference(dataset: str) -> dict:
    """C-GMVAE's reference hyperparameters are its defaults on every dataset (MODELS.md)."""
    return {}


def mpvae_reference(dataset: str) -> dict:
    """MPVAE's per-dataset rows of MODELS.md (``reference_params`` in models/mpvae.py)."""
    from mlcbench_models.mpvae import reference_params

    import benchmark  # noqa: F401  (installs the models/ alias package)

    return reference_params(dataset)


#: model name -> (dataset name -> hyperparameters at the reference settings)
REFERENCE_PARAMS = {
    "cgmvae": cgmvae_reference,
    "mpvae": mpvae_reference,
}

#: configuration name -> (dataset, extra hyperparameters on top of the reference ones)
CONFIGS = {
    "yeast": ("yeast", {}),
    "scene": ("scene", {}),
    "bibtex": ("bibtex", {}),
    "yeast-e2048": ("yeast", {"emb_size": 2048}),
}


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def measure_once(model_name: str, config: str, epochs: int, threads: int, device: str,
                 overrides: dict, scores: bool) -> dict:
    """Runs in a fresh process: one fit, its timings and peak memory."""
    import torch

    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split
    from benchmark.evaluation.thresholds import evaluate_protocols
    from benchmark.modelapi.base import get_model
    from benchmark.modelapi.torch_device import is_cuda, resolve_device

    dataset_name, config_params = CONFIGS[config]
    params = {**REFERENCE_PARAMS.get(model_name, lambda _: {})(dataset_name), **config_params, **overrides,
              "epochs": epochs}
    dataset = load_dataset(dataset_name)
    split = make_split(dataset, seed=0)
    X, Y = dataset.X, dataset.Y
    device = resolve_device(device)
    model = get_model(model_name)(seed=0, device=device, n_threads=threads, **params)
    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(device)
    # warm-up fit on a few rows: lazy imports (torch optimisers import torch._dynamo on first
    # use) and first-call allocations stay out of the measurement
    warm = split.train[: min(len(split.train), 2 * int(params.get("batch_size", 128)))]
    get_model(model_name)(seed=0, device=device, n_threads=threads, **{**params, "epochs": 1}).fit(X[warm], Y[warm])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.fit(X[split.train], Y[split.train], X[split.val], Y[split.val])
    info = model.fit_info
    result = {
        "config": config, "model": model_name, "device": device, "threads": threads,
        "n_train": len(split.train), "n_val": len(split.val), "params": params,
        "train_s": info["train_seconds_per_epoch"], "epoch_s": info["epoch_seconds"],
        "cpu_s": info["epoch_cpu_seconds"],
        "peak_rss_rise_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if is_cuda(device) else None,
        "best_epoch": info["best_epoch"], "val_scores": info["val_scores"],
    }
    if scores:
        protocols = evaluate_protocols(Y[split.val], model.predict_proba(X[split.val]),
                                       Y[split.test], model.predict_proba(X[split.test]))
        result["test_val_protocol"] = {m: protocols["val"]["metrics"][m] for m in METRICS}
    return result


def run_in_subprocess(args, config: str) -> dict:
    """One measurement in a fresh interpreter, so peak RSS belongs to this fit alone."""
    payload = json.dumps({"model": args.model, "config": config, "epochs": args.epochs, "threads": args.threads,
                          "device": args.device, "overrides": dict(args.set), "scores": args.scores})
    env = dict(os.environ)
    if args.data_dir:
        env["MLCBENCH_DATA_DIR"] = args.data_dir
    out = subprocess.run([sys.executable, __file__, "--worker", payload], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """min/median over all epochs after the first of every repeat."""
    def stats(key):
        values = np.concatenate([np.asarray(r[key][1:] or r[key]) for r in runs])
        return float(values.min()), float(np.median(values))

    row = {
        "train_s": stats("train_s"), "epoch_s": stats("epoch_s"), "cpu_s_per_epoch": stats("cpu_s"),
        "peak_rss_rise_mb": max(r["peak_rss_rise_mb"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "cuda_peak_mb": max((r["cuda_peak_mb"] or 0) for r in runs) if runs[0]["cuda_peak_mb"] is not None else None,
    }
    if "test_val_protocol" in runs[0]:
        row["test_val_protocol"] = {m: float(np.mean([r["test_val_protocol"][m] for r in runs])) for m in METRICS}
    return row


def print_table(model: str, device: str, threads: int, results: dict) -> None:
    print(f"\n{model} on {device}, threads={threads}: seconds per epoch, min / median over epochs 2.. of all repeats")
    header = (f"{'config':<12} {'rows tr/val':>12} {'train s/ep':>16} {'train+val s/ep':>16} {'cpu s/ep':>14} "
              f"{'peak MB':>9} {'(fit rise)':>10}")
    print(header)
    for config, (row, first) in results.items():
        peak = row["cuda_peak_mb"] if row["cuda_peak_mb"] is not None else row["peak_rss_mb"]
        rise = row["peak_rss_rise_mb"]
        print(f"{config:<12} {first['n_train']:>6}/{first['n_val']:<5} "
              f"{row['train_s'][0]:>7.3f} / {row['train_s'][1]:<6.3f} {row['epoch_s'][0]:>7.3f} / {row['epoch_s'][1]:<6.3f} "
              f"{row['cpu_s_per_epoch'][0]:>6.3f} / {row['cpu_s_per_epoch'][1]:<5.3f} {peak:>9.1f} {rise:>10.1f}")
        if "test_val_protocol" in row:
            print(" " * 14 + "test (val protocol): " + ", ".join(f"{m} {v:.4f}" for m, v in row["test_val_protocol"].items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cgmvae")
    parser.add_argument("--configs", default="yeast,scene,bibtex,yeast-e2048")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], type=lambda kv: (kv.split("=", 1)[0], parse_value(kv.split("=", 1)[1])),
                        help="override a hyperparameter, e.g. --set emb_size=2048 (repeatable)")
    parser.add_argument("--scores", action="store_true", help="also report test scores (val protocol)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="write every measurement to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(measure_once(spec["model"], spec["config"], spec["epochs"], spec["threads"], spec["device"],
                                      spec["overrides"], spec["scores"])))
        return 0
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {unknown}; known: {', '.join(CONFIGS)}")
    results, everything = {}, []
    for config in configs:
        runs = [run_in_subprocess(args, config) for _ in range(args.repeats)]
        everything += runs
        results[config] = (summarise(runs), runs[0])
        print(f"measured {config}: {len(runs)} repeat(s)", file=sys.stderr)
    print_table(args.model, everything[0]["device"], args.threads, results)
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
