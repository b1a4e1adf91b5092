"""CPU cost of tuning with and without successive halving over training rows, and the test
scores of the configuration each chooses (the measurement in benchmarks/results/halving.txt).

    python benchmarks/bench_halving.py --dataset bibtex --model br --trials 10 \\
        --halving "min_rows = 500, factor = 3, startup = 1" [--extra TOML] [--out DIR]

Runs ``python -m benchmark run`` twice on a one-seed suite (the suite without ``halving``,
then with it), one worker, into fresh stores under ``--out``. CPU seconds are the run's
and its workers' (``RUSAGE_CHILDREN``), so they include start-up (imports, loading);
with one seed, the seed's cell reuses the best trial's fit, so the run is its tuning.
Per trial: the rows of the last rung it trained on, its state and validation objective.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from benchmark.store.results import ResultsStore  # noqa: E402

SUITE = """
name = "halving-bench"
datasets = ["{dataset}"]
models = ["{model}"]
fractions = [1.0]
seeds = [0]
trials = {trials}
workers = 1
{halving}
{extra}
"""


def run(suite: Path, results: Path) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(results),
                    "--quiet"], cwd=ROOT, check=True, env=dict(os.environ))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"  wall {time.perf_counter() - started:.0f} s", flush=True)
    return cpu


def describe(results: Path) -> tuple[list[str], dict]:
    store = ResultsStore(results)
    storage = optuna.storages.RDBStorage(store.url)
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    lines = []
    for t in sorted(study.trials, key=lambda t: t.user_attrs["mlcbench_index"]):
        rows = t.user_attrs.get("halving_rows")
        used = rows[max(t.intermediate_values)] if rows and t.intermediate_values else "all"
        fit = (t.user_attrs.get("cell_record") or {}).get("fit_seconds")
        lines.append(f"    trial {t.user_attrs['mlcbench_index']:2d} {t.state.name:8s} rows {used!s:>6} "
                     f"val {t.value if t.value is not None else float('nan'):.4f} "
                     f"rungs {dict((k, round(v, 4)) for k, v in t.intermediate_values.items())} "
                     f"last fit {fit if fit is None else round(fit, 1)} s  {t.params}")
    row = store.runs_frame().iloc[0]
    return lines, row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="bibtex")
    parser.add_argument("--model", default="br")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--halving", default="min_rows = 500, factor = 3, startup = 1")
    parser.add_argument("--extra", default="", help="TOML appended to the suite (a [model.X] table)")
    parser.add_argument("--out", default="/tmp/bench_halving")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for label, halving in (("all rows", ""), ("halving", f"halving = {{ {args.halving} }}")):
        suite = out / f"{label.replace(' ', '_')}.toml"
        suite.write_text(SUITE.format(dataset=args.dataset, model=args.model, trials=args.trials, halving=halving,
                                      extra=args.extra.replace("\\n", "\n")))
        results = out / label.replace(" ", "_")
        print(f"{label}: {suite}", flush=True)
        cpu = run(suite, results)
        lines, row = describe(results)
        print("\n".join(lines), flush=True)
        val = row.metrics["val"]
        table.append((label, cpu, row.n_train, val["ebF1"], val["miF1"], val["maF1"], val.get("P@1", float("nan")),
                      row.params))
    print(f"\n{args.dataset} / {args.model}, {args.trials} trials, 1 seed, 1 worker; halving: {{ {args.halving} }}"
          + (f"; {args.extra}" if args.extra else ""))
    print(f"{'tuning':10s} {'CPU s':>8s} {'n_train':>8s} {'test ebF1':>10s} {'miF1':>7s} {'maF1':>7s} {'P@1':>7s}  chosen")
    for label, cpu, n_train, eb, mi, ma, p1, params in table:
        print(f"{label:10s} {cpu:8.0f} {n_train:8d} {eb:10.4f} {mi:7.4f} {ma:7.4f} {p1:7.4f}  {params}")


if __name__ == "__main__":
    main()
