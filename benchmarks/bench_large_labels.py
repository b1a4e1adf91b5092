"""CPU seconds per epoch of mpvae and cgmvae at large label counts (delicious, L = 983), before and after.

    python benchmarks/bench_large_labels.py [--dataset delicious] [--batches 4] [--threads 1]
        [--before main] [--cases mpvae:S=100,mpvae:ref,cgmvae:ref,lamp:default,lamp:paper]
        [--variants before,after]

"before" is the model file as committed at git revision ``--before`` (read with
``git show REV:models/<model>.py`` and imported from a temporary file), "after" the file
in this checkout; both use this checkout's ``benchmark`` package, so the two figures
differ only by the model code. Cases: ``mpvae:ref`` is mpvae at the dataset's reference
settings (``reference_params``, read from the *after* file, so both variants get the
same hyperparameters; delicious: S = 5), ``mpvae:S=100`` the same with 100 training
samples, ``cgmvae:ref`` cgmvae at its defaults (its reference settings everywhere); ``+shared``
after an mpvae setting sets ``shared_noise`` (a "before" file without that hyperparameter
runs without it, and its row says so).

Method (extrapolated, not a full epoch): published split of the dataset with the
validation share of ``benchmark.data.splits.make_split`` (seed 0); a fit of 2 epochs on the
first ``--batches`` x batch_size training rows, no validation; the second epoch's process
CPU seconds (``fit_info["epoch_cpu_seconds"]``) divided by ``--batches`` is the CPU cost
of one training step, times the full training set's steps per epoch, plus the CPU seconds
of one validation pass (``predict_proba`` on the validation rows, what the per-epoch
validation costs) = CPU-s per epoch. Wall seconds are extrapolated the same way.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# the dataset mirror beside the checkout (as the tests use it), never the network
if (REPO.parent / "shared" / "datasets").is_dir():
    os.environ.setdefault("MLCBENCH_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
os.environ.setdefault("MLCBENCH_OFFLINE", "1")

import benchmark  # noqa: E402,F401  (installs the models/ alias package)

CLASSES = {"mpvae": "MPVAE", "cgmvae": "CGMVAE", "lamp": "LaMP"}


def load_model_class(model: str, variant: str, before_rev: str, tmp: Path):
    """The model class of the checked-out file ("after") or of ``before_rev`` ("before")."""
    path = REPO / "models" / f"{model}.py"
    if variant == "before":
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{before_rev}:models/{model}.py"],
                              check=True, capture_output=True, text=True).stdout
        path = tmp / f"{model}_before.py"
        path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"bench_{model}_{variant}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, CLASSES[model])


def case_params(case: str, dataset: str) -> tuple[str, dict]:
    """``model:ref``, ``mpvae:S=<n>``, ``lamp:default`` or ``lamp:paper`` -> (model name, hyperparameters).

    An mpvae setting may add ``+shared`` (``shared_noise = true``: ``mpvae:S=100+shared``).
    ``lamp:paper`` is the paper suite's lamp table for the dataset (``[model.lamp.datasets.D]``);
    a "before" file that lacks one of its hyperparameters (``label_block``) runs without it.
    """
    model, _, setting = case.partition(":")
    params: dict = {}
    if model == "lamp" and setting == "paper":
        from benchmark.execution.suite import load_suite

        params = load_suite("paper", models="lamp").model("lamp").on(dataset)[0]
    if model == "mpvae":
        from mlcbench_models.mpvae import reference_params

        params = reference_params(dataset)
        for part in setting.split("+"):
            if part.startswith("S="):
                params["n_train_samples"] = int(part[2:])
            elif part == "shared":
                params["shared_noise"] = True
    return model, params


def measure(cls, params: dict, data, batches: int, threads: int, known: set) -> dict:
    X_tr, Y_tr, X_val, Y_val = data
    dropped = sorted(set(params) - known)  # an old file may lack new hyperparameters: runs without them
    params = {k: v for k, v in params.items() if k in known}
    batch = int(params.get("batch_size", cls.defaults["batch_size"]))
    rows = batches * batch
    model = cls(seed=0, device="cpu", n_threads=threads, **{**params, "epochs": 2})
    model.fit(X_tr[:rows], Y_tr[:rows])
    step_cpu = model.fit_info["epoch_cpu_seconds"][-1] / batches
    step_wall = model.fit_info["train_seconds_per_epoch"][-1] / batches
    cpu0, wall0 = time.process_time(), time.perf_counter()
    note = f"without {', '.join(dropped)} (not in this file)" if dropped else ""
    try:
        model.predict_proba(X_val)
    except RuntimeError as exc:  # the old lamp's 8192-row validation batches: tens of GB
        if "allocate" not in str(exc):
            raise
        note = "; ".join(filter(None, [note, "validation pass out of memory; epoch = training steps only"]))
    val_cpu, val_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    steps = X_tr.shape[0] // batch
    return {"steps": steps, "step_cpu": step_cpu, "cpu_epoch": step_cpu * steps + val_cpu,
            "wall_epoch": step_wall * steps + val_wall, "params": params, "note": note}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="delicious")
    parser.add_argument("--batches", type=int, default=4, help="training steps measured per case")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default="main", help="git revision of the 'before' model files")
    parser.add_argument("--cases", default="mpvae:ref,mpvae:S=100,cgmvae:ref")
    parser.add_argument("--variants", default="before,after")
    args = parser.parse_args(argv)

    import torch

    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    split = make_split(dataset, seed=0)
    X, Y = dataset.X, dataset.Y
    data = (X[split.train], Y[split.train], X[split.val], Y[split.val])
    print(f"{args.dataset}: {len(split.train)} training rows, {len(split.val)} validation rows, "
          f"L = {Y.shape[1]}; threads = {args.threads}; {args.batches} steps measured per case, extrapolated")
    print(f"{'case':<20} {'variant':<8} {'CPU s/step':>10} {'CPU s/epoch':>11} {'wall s/epoch':>12}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            model, params = case_params(case, args.dataset)
            for variant in args.variants.split(","):
                cls = load_model_class(model, variant, args.before, Path(tmp))
                r = measure(cls, params, data, args.batches, args.threads, set(cls.defaults))
                results[(case, variant)] = r
                print(f"{case:<20} {variant:<8} {r['step_cpu']:>10.3f} {r['cpu_epoch']:>11.1f} {r['wall_epoch']:>12.1f}"
                      + (f"  ({r['note']})" if r["note"] else ""), flush=True)
            if ("before" in args.variants and "after" in args.variants):
                speedup = results[(case, "before")]["cpu_epoch"] / results[(case, "after")]["cpu_epoch"]
                print(f"{case:<20} speed-up {speedup:.1f}x (CPU s/epoch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
