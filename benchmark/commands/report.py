"""``python -m benchmark report``: regenerate every table and figure from the results store."""

from __future__ import annotations


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
    parser.add_argument("--results", default="results", help="results store: a directory or an SQLAlchemy URL (default: results)")
    parser.add_argument("--out", default=None,
                        help="output directory (default: reports, or reports/<protocol> for fixed/oracle)")
    parser.add_argument("--protocol", default="val", choices=("val", "fixed", "oracle"),
                        help="threshold protocol (default: val); oracle is optimistic (thresholds tuned on the test set)")
    parser.add_argument("--suite", default=None, help="only runs recorded under this suite name (default: all)")
    parser.add_argument("--focus", default="cgmvae",
                        help="model compared with every baseline in the paired tests and data efficiency (default: cgmvae)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated metrics to report (default: every stored metric)")
    parser.add_argument("--published", default=None, metavar="FILE.csv",
                        help="CSV of published figures (columns dataset, model, metric, protocol, value, source) "
                             "to show beside the harness's, e.g. reports/published.csv")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from benchmark.report import build_report

    out = args.out or ("reports" if args.protocol == "val" else f"reports/{args.protocol}")
    result = build_report(args.results, out, protocol=args.protocol, focus=args.focus, suite=args.suite,
                          metrics=args.metrics.split(",") if args.metrics else None, published=args.published)
    print(
        f"report ({result.protocol} protocol): {result.n_done} finished, {result.n_failed} failed, "
        f"{result.n_missing} missing cells; {len(result.files)} files under {result.out_dir}/"
    )
    print(f"open {result.out_dir / 'index.md'} (or index.html)")
    if result.protocol == "oracle":
        print("note: oracle thresholds are tuned on the test set; these numbers are optimistic")
    return 0
