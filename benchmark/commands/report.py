"""``python -m benchmark report``: regenerate every table and figure from the results store."""

from __future__ import annotations

from benchmark.vocabulary import THRESHOLD_PROTOCOLS

DEFAULT_OUT = "results/report"  # beside the default store, ignored by git (.gitignore: /results/*)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write tables, learning curves, statistics and an index page from the results store",
        description=(
            "Regenerate the whole report from the results store alone (no training): paper tables "
            "(Markdown, LaTeX, CSV), learning curves, Friedman/Nemenyi and paired tests, data "
            "efficiency, and index.md/index.html linking everything."
        ),
    )
    parser.add_argument("--results", action="append", default=None,
                        help="results store: a directory, an .sqlite file or an SQLAlchemy URL (default: results); "
                             "repeat it to merge several stores where their cells are comparable (same dataset files, "
                             "split, validation share, resample mode and threshold grids), e.g. your model's store "
                             "beside reports/quick/store")
    parser.add_argument("--out", default=None,
                        help=f"output directory (default: {DEFAULT_OUT}, or {DEFAULT_OUT}/<protocol> for "
                             "fixed/oracle; an ignored folder, so the committed examples under reports/ stay as they are)")
    parser.add_argument("--protocol", default="val", choices=THRESHOLD_PROTOCOLS,
                        help="threshold protocol (default: val); oracle is optimistic (thresholds tuned on the test set)")
    parser.add_argument("--suite", default=None, help="only runs recorded under this suite name (default: all)")
    parser.add_argument("--models", default=None,
                        help="comma-separated models to report (default: every stored model)")
    parser.add_argument("--all-configs", action="store_true", dest="all_configs",
                        help="show every stored configuration (default: each suite's latest per dataset and model)")
    parser.add_argument("--focus", default="cgmvae",
                        help="model compared with every baseline in the paired tests and data efficiency (default: cgmvae)")
    parser.add_argument("--highlight", default=None,
                        help="comma-separated models drawn strong, beside the focus model, over muted others "
                             "in the learning curves (with more than 8 models)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metrics to report, any case, e.g. maF1,miF1 (default: every stored metric)")
    parser.add_argument("--published", default=None, metavar="FILE.csv",
                        help="CSV of published figures (columns dataset, model, metric, protocol, value, source) "
                             "to show beside the harness's, e.g. reports/published.csv")
    parser.set_defaults(handler=handle)


def metric_names(text: str) -> list[str]:
    """``--metrics`` as canonical metric names, case-insensitively; a typo suggests close ones."""
    import difflib

    import numpy as np

    from benchmark.errors import UnknownNameError
    from benchmark.evaluation.metrics import compute

    known = list(compute(np.eye(3, dtype=np.uint8), np.eye(3) * 0.9))  # the names every run stores
    by_lower = {name.lower(): name for name in known}
    names = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            continue
        if raw.lower() not in by_lower:
            close = difflib.get_close_matches(raw.lower(), list(by_lower), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(by_lower[c] for c in close)}?)" if close else ""
            raise UnknownNameError(f"unknown metric {raw!r}{hint}; known metrics: {', '.join(known)}")
        names.append(by_lower[raw.lower()])
    return names


def _check_writable(out: str) -> None:
    """The output folder must be creatable and writable: say so in one line before any work."""
    import os
    from pathlib import Path

    from benchmark.errors import BenchmarkError

    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".mlcbench-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchmarkError(f"{path}: cannot write the report there ({exc.strerror or exc}); "
                             "choose another --out") from None
    if not os.access(path, os.W_OK):
        raise BenchmarkError(f"{path}: not writable; choose another --out")


def handle(args) -> int:
    metrics = metric_names(args.metrics) if args.metrics else None  # before the (slow) report imports

    from benchmark.report import build_report

    out = args.out or (DEFAULT_OUT if args.protocol == "val" else f"{DEFAULT_OUT}/{args.protocol}")
    _check_writable(out)
    results = args.results or ["results"]
    result = build_report(results[0] if len(results) == 1 else results, out, protocol=args.protocol, focus=args.focus, suite=args.suite,
                          metrics=metrics, all_configs=args.all_configs, published=args.published,
                          highlight=[m.strip() for m in args.highlight.split(",") if m.strip()] if args.highlight else None,
                          models=[m.strip() for m in args.models.split(",") if m.strip()] if args.models else None)
    print(
        f"report ({result.protocol} protocol): {result.n_done} finished, {result.n_failed} failed, "
        f"{result.n_missing} missing cells; {len(result.files)} files under {result.out_dir}/"
    )
    print(f"open {result.out_dir / 'index.md'} (or index.html)")
    if result.protocol == "oracle":
        print("note: oracle thresholds are tuned on the test set; these numbers are optimistic")
    return 0
