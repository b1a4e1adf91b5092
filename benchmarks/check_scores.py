"""Do a model's test scores change between two versions of its file? (mpvae or cgmvae; seeds x datasets)

    python benchmarks/check_scores.py [--model mpvae] [--datasets yeast,scene] [--epochs 60,40]
        [--seeds 0,1,2] [--before main] [--after-params shared_noise=true]

Each dataset: published split with make_split's validation share (split seed 0), the model
at the dataset's reference settings (mpvae: ``reference_params``; cgmvae: its defaults)
except ``epochs`` (reduced, the same for both versions), fitted with model seeds
``--seeds`` by ``models/<model>.py`` at git revision ``--before`` and by this checkout's file; test metrics under the ``val`` threshold
protocol. Prints mean and seed-std per version and whether |after - before| <= the
before seed-std. ``--after-params`` sets hyperparameters of the "after" fits only (to
compare an option against the default: ``--before HEAD --after-params shared_noise=true``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_large_labels import load_model_class  # noqa: E402  (also sets up the data mirror)

METRICS = ("miF1", "maF1", "ebF1", "P@1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mpvae", choices=["mpvae", "cgmvae"])
    parser.add_argument("--datasets", default="yeast,scene")
    parser.add_argument("--epochs", default="60,40", help="one per dataset")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--before", default="main")
    parser.add_argument("--after-params", default="", help="key=value,... for the 'after' fits (JSON values)")
    args = parser.parse_args(argv)
    after_params = {key: json.loads(value) for key, _, value in
                    (item.partition("=") for item in args.after_params.split(",") if item)}

    import torch
    from mlcbench_models.mpvae import reference_params

    from benchmark.data.loading import load_dataset
    from benchmark.data.splits import make_split
    from benchmark.evaluation.thresholds import evaluate_protocols

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        classes = {v: load_model_class(args.model, v, args.before, Path(tmp)) for v in ("before", "after")}
        unknown = sorted(set(after_params) - set(classes["after"].defaults))
        if unknown:
            parser.error(f"--after-params: {args.model} has no hyperparameter {', '.join(unknown)}")
        for name, epochs in zip(args.datasets.split(","), [int(e) for e in args.epochs.split(",")]):
            dataset = load_dataset(name)
            split = make_split(dataset, seed=0)
            X, Y = dataset.X, dataset.Y
            scores = {}
            for variant, cls in classes.items():
                reference = reference_params(name) if args.model == "mpvae" else {}
                params = {**reference, "epochs": epochs, **(after_params if variant == "after" else {})}
                params = {k: v for k, v in params.items() if k in cls.defaults}
                rows = []
                for seed in seeds:
                    model = cls(seed=seed, n_threads=1, **params).fit(X[split.train], Y[split.train],
                                                                       X[split.val], Y[split.val])
                    protocols = evaluate_protocols(Y[split.val], model.predict_proba(X[split.val]),
                                                   Y[split.test], model.predict_proba(X[split.test]))
                    rows.append([protocols["val"]["metrics"][m] for m in METRICS])
                scores[variant] = np.array(rows)
                print(f"{args.model} {name} {variant}: " + ", ".join(
                    f"{m} {scores[variant][:, i].mean():.4f}±{scores[variant][:, i].std(ddof=1):.4f}"
                    for i, m in enumerate(METRICS)), flush=True)
            diff = scores["after"].mean(0) - scores["before"].mean(0)
            std = scores["before"].std(0, ddof=1)
            print(f"{args.model} {name} ({epochs} epochs, seeds {seeds}) after - before: " + ", ".join(
                f"{m} {d:+.4f} ({'within' if abs(d) <= s else 'OUTSIDE'} 1 std {s:.4f})"
                for m, d, s in zip(METRICS, diff, std)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
