"""GPU check: CUDA tests, one timed epoch per torch model and dataset, a small suite run (<= 8 min).

    python benchmarks/gpu_check.py            # on a machine with CUDA
    python benchmarks/gpu_check.py --cpu      # the same checks on the CPU with tiny budgets

Three steps, one table at the end (model, dataset, device, rows, s/epoch, peak GPU MB):

1. ``pytest -k cuda`` over the torch test files: the CUDA tests (they skip without a GPU)
   and the device-selection tests.
2. Every torch model of the registry (``TorchModel`` subclasses: mlp, mpvae, cgmvae, ...)
   on bibtex and delicious, at its reference settings (mpvae: ``reference_params``; the
   others: their defaults), fitted for 2 epochs with per-epoch validation; the table
   shows the second epoch (training + validation) and the peak of
   ``torch.cuda.max_memory_allocated``. With ``--cpu``: the first ``--cpu-rows`` training
   and validation rows only, one thread.
3. ``python -m benchmark run`` on a tiny suite written to a temporary directory (bibtex,
   the torch models, fraction 1.0, 1 seed, 2 trials, 3 epochs; ``--cpu``: fraction 0.1,
   2 epochs) into a temporary results directory; its wall time is the table's last row.

Without CUDA and without ``--cpu`` it prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
if (REPO.parent / "shared" / "datasets").is_dir():  # the dataset mirror beside the checkout
    os.environ.setdefault("MLCBENCH_DATA_DIR", str(REPO.parent / "shared" / "datasets"))

TEST_FILES = ["tests/modelapi/test_torch_training.py", "tests/models/test_mlp.py", "tests/models/test_mpvae.py", "tests/models/test_cgmvae.py"]


def run_tests(timeout: float) -> str:
    """The CUDA / device tests; returns pytest's summary line."""
    files = [f for f in TEST_FILES if (REPO / f).exists()]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda or device", *files]
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"pytest timed out after {timeout:.0f} s"
    lines = [line for line in out.stdout.strip().splitlines() if line.strip()]
    if out.returncode not in (0, 5):  # 5: nothing collected
        print(out.stdout[-4000:], out.stderr[-2000:], sep="\n", file=sys.stderr)
    return (lines[-1] if lines else out.stderr.strip()[-200:]) + f" (exit {out.returncode})"


def torch_models() -> dict:
    from benchmark.modelapi.base import available_models
    from benchmark.modelapi.torch_training import TorchModel

    return {name: cls for name, cls in available_models().items() if issubclass(cls, TorchModel)}


def model_params(name: str, dataset: str) -> dict:
    if name == "mpvae":
        from mlcbench_models.mpvae import reference_params

        return reference_params(dataset)
    return {}


@functools.lru_cache(maxsize=None)
def load_split(dataset_name: str):
    """(dataset, split) once per dataset (delicious's split alone takes seconds)."""
    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split

    dataset = load_dataset(dataset_name)
    return dataset, make_split(dataset, seed=0)


def time_epochs(name, cls, dataset_name: str, device: str, rows: int | None) -> dict:
    """Two epochs with validation; the second epoch's seconds and the peak GPU memory."""
    import torch

    dataset, split = load_split(dataset_name)
    train, val = split.train[:rows], split.val[:rows]
    X, Y = dataset.X, dataset.Y
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = cls(seed=0, device=device, n_threads=1 if device == "cpu" else None,
                **{**model_params(name, dataset_name), "epochs": 2})
    model.fit(X[train], Y[train], X[val], Y[val])
    info = model.fit_info
    return {"model": name, "dataset": dataset_name, "device": device, "rows": len(train),
            "s_epoch": info["epoch_seconds"][-1], "cpu_s_epoch": info["epoch_cpu_seconds"][-1],
            "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None}


SUITE = """name = "gpu-check"
description = "gpu_check.py: bibtex, torch models, 1 seed, 2 trials, few epochs"
datasets = ["bibtex"]
models = [{models}]
fractions = [{fraction}]
seeds = [0]
trials = 2
epochs = {epochs}
split_seed = 0
val_size = 0.15
device = "{device}"
workers = 1
pruner = "median"
pruner_startup_trials = 3
pruner_warmup_epochs = 2
"""


def run_suite(models: list[str], device: str, cpu: bool, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "gpu-check.toml"
        suite.write_text(SUITE.format(models=", ".join(f'"{m}"' for m in models), fraction=0.1 if cpu else 1.0,
                                      epochs=2 if cpu else 3, device=device))
        cmd = [sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(Path(tmp) / "results"),
               "--quiet"]
        t0 = time.perf_counter()
        try:
            out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
            status = f"exit {out.returncode}"
            if out.returncode != 0:
                print(out.stdout[-3000:], out.stderr[-3000:], sep="\n", file=sys.stderr)
        except subprocess.TimeoutExpired:
            status = f"timed out after {timeout:.0f} s"
        return {"model": "suite run", "dataset": "bibtex", "device": device, "rows": "-",
                "s_epoch": time.perf_counter() - t0, "cpu_s_epoch": None, "peak_mb": None, "status": status}


def print_table(rows: list[dict]) -> None:
    print(f"{'model':<10} {'dataset':<10} {'device':<7} {'rows':>6} {'s/epoch':>9} {'cpu s/ep':>9} {'peak GPU MB':>11}")
    for r in rows:
        peak = f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else "-"
        cpu = f"{r['cpu_s_epoch']:.2f}" if r.get("cpu_s_epoch") is not None else "-"
        seconds = f"{r['s_epoch']:.2f}" if r["model"] != "suite run" else f"{r['s_epoch']:.0f} s total"
        extra = f"  {r['status']}" if "status" in r else ""
        print(f"{r['model']:<10} {r['dataset']:<10} {r['device']:<7} {r['rows']!s:>6} {seconds:>9} {cpu:>9} {peak:>11}{extra}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="run on the CPU with tiny budgets (no GPU needed)")
    parser.add_argument("--datasets", default="bibtex,delicious")
    parser.add_argument("--cpu-rows", type=int, default=256, help="training/validation rows per fit with --cpu")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-suite", action="store_true")
    args = parser.parse_args(argv)

    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False); "
              "run with --cpu to do the same checks on the CPU with tiny budgets")
        return 2
    device = "cpu" if args.cpu else "cuda"
    t_start = time.perf_counter()
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(f"gpu_check on {device} ({name}), torch {torch.__version__}", flush=True)
    failures = 0
    if not args.skip_tests:
        summary = run_tests(timeout=150)
        print(f"tests (-k 'cuda or device'): {summary}", flush=True)
        failures += "failed" in summary or "error" in summary or "timed out" in summary
    models = torch_models()
    rows = []
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        for model_name, cls in models.items():
            try:
                rows.append(time_epochs(model_name, cls, dataset, device, args.cpu_rows if args.cpu else None))
            except Exception as exc:  # report and go on: one broken model must not hide the others
                failures += 1
                print(f"{model_name} on {dataset}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr)
            print(f"timed {model_name} on {dataset} ({time.perf_counter() - t_start:.0f} s so far)", flush=True)
    if not args.skip_suite:
        rows.append(run_suite(list(models), device, args.cpu, timeout=max(60.0, 420 - (time.perf_counter() - t_start))))
        failures += rows[-1]["status"] != "exit 0"
    print()
    print_table(rows)
    print(f"total {time.perf_counter() - t_start:.0f} s; {'all checks passed' if not failures else f'{failures} FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
