"""``python -m benchmark datasets list | info NAME | fetch NAME... | verify [NAME...]``.

- ``list``: every catalog dataset with its format, published size, split and where its
  files are (data dir, bundled, cache) or whether they need a download; below, the
  notices of every dataset already parsed (dropped ID attributes, one-hot encodings,
  imputed values), read from the parse cache.
- ``info NAME [--json]``: load the dataset and print its statistics; ``--json`` prints one
  JSON object with name, n_instances, n_features, n_labels, cardinality, density,
  n_distinct_labelsets, n_zero_label_rows, n_train/n_val/n_test (the parts present) and
  the same sizes as a ``split`` object. NAME may also be the path of a data file that a
  format claims (``*_data.npy``, ``*.arff``, ``*.csv``, ``*.svm``...: each format's
  :meth:`~benchmark.data.catalog.DatasetFormat.claims_path`); format-specific flags
  (``--label-dim``...) come from the formats' ``cli_options``.
- ``fetch NAME...``: make every file of the datasets local (download into the cache, or
  into ``--data-dir`` when given), checking sha256.
- ``verify [NAME...]``: re-hash every local file; ok / mismatch / missing per file; the
  exit status is 1 if any file mismatches.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from tabulate import tabulate

from benchmark.data.catalog import catalog, formats, get_spec, unavailable_formats
from benchmark.data.download import check_file, fetch_file, locate, sha256_of
from benchmark.data.loading import load_dataset
from benchmark.data.parse_cache import cached_notices
from benchmark.errors import DatasetError

DATA_DIR_HELP = "a directory laid out like the dataset mirror (default: $MLCBENCH_DATA_DIR)"


REGISTER_FULL_PARAMETER = True  # see benchmark.cli: format flags only when `datasets` is invoked


def register(subparsers, full: bool = True) -> None:
    parser = subparsers.add_parser("datasets", help="list, inspect, fetch and verify datasets")
    actions = parser.add_subparsers(dest="datasets_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every catalog dataset and where its files are")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    listing.set_defaults(handler=list_datasets)

    info = actions.add_parser("info", help="load one dataset and print its statistics")
    info.add_argument("name", help="catalog name, or the path of a data file (e.g. <name>_data.npy, x.arff, x.csv)")
    info.add_argument("--json", action="store_true", help="print exactly one JSON object")
    for option in format_options() if full else ():  # importing the formats costs numpy + scipy
        info.add_argument(option.flag, dest=option.param, type=option.type, default=None, help=option.help)
    info.set_defaults(handler=show_info)

    fetch = actions.add_parser("fetch", help="download (if needed) and check the datasets' files")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    fetch.set_defaults(handler=fetch_datasets)

    verify = actions.add_parser("verify", help="re-hash local files against the catalog's sha256")
    verify.add_argument("names", nargs="*", metavar="NAME", help="default: every catalog dataset")
    verify.set_defaults(handler=verify_datasets)

    for sub in (listing, info, fetch, verify):
        sub.add_argument("--data-dir", type=Path, default=None, help=DATA_DIR_HELP)


# ---------------------------------------------------------------------------- list


def format_options() -> list:
    """Every format's ``datasets info`` flags (first declaration of a flag wins)."""
    seen, options = set(), []
    for fmt in formats().values():
        for option in fmt.cli_options:
            if option.flag not in seen:
                seen.add(option.flag)
                options.append(option)
    return options


def availability(spec, data_dir) -> str:
    """Where the dataset's files are, or what is needed to get them."""
    if not spec.files:
        return "generated"
    origins, need_download, no_url = [], 0, []
    for role, ref in spec.files.items():
        local = locate(ref, data_dir)
        if local is not None:
            origins.append(local.origin)
        elif ref.url:
            need_download += 1
        else:
            no_url.append(Path(ref.rel).name)
    if no_url:
        return "missing " + ", ".join(no_url) + " (no public URL)"
    if need_download:
        total = sum(ref.size or 0 for ref in spec.files.values())
        return f"download {need_download} file(s), {total / 1e6:.1f} MB"
    return "+".join(sorted(set(origins)))


def list_datasets(args) -> int:
    table = formats()
    rows, notices = [], {}
    for name, spec in catalog().items():
        fmt = table.get(spec.format)
        summary = fmt.summary(spec) if fmt is not None else {"instances": "", "features": "", "labels": "",
                                                              "split": ""}
        files = availability(spec, args.data_dir) if fmt is not None else f"format {spec.format!r} unavailable"
        rows.append({"name": name, "format": spec.format, **summary, "files": files})
        notices[name] = cached_notices(spec) if fmt is not None else None
    if args.json:  # "notices": null where the dataset was not parsed (by this code) yet
        print(json.dumps([{**row, "notices": notices[row["name"]]} for row in rows], indent=1))
    else:
        print(tabulate(rows, headers="keys"))
        parsed = {name: found for name, found in notices.items() if found}
        if parsed:  # what reading changed (dropped IDs, encodings, imputation), as `datasets info` says
            print("\nnotices (datasets parsed by this code; `datasets info NAME` parses one):")
            for name, found in parsed.items():
                print("\n".join(f"  {name}: {notice}" for notice in found))
        print(f"\nformats: {', '.join(sorted(table))}")
        for u in unavailable_formats():
            print(f"unavailable: {u.path} ({u.reason})")
    return 0


# ---------------------------------------------------------------------------- info


def path_params(args) -> dict:
    """The format flags given on the command line, as spec parameters."""
    return {o.param: getattr(args, o.param) for o in format_options() if getattr(args, o.param, None) is not None}


def resolve_info_spec(args):
    """A catalog name, or a data file path (resolved once, against the current directory)."""
    params = path_params(args)
    path = Path(args.name).expanduser()
    if path.is_file():
        path = path.resolve()
        for fmt in formats().values():
            if fmt.claims_path(path):
                return fmt.spec_from_path(path, params)
        raise DatasetError(f"{path}: no dataset format reads this file (formats: {', '.join(sorted(formats()))})")
    if "/" in args.name or path.suffix:
        raise DatasetError(f"{path.absolute()}: file not found")
    spec = get_spec(args.name)
    if params:
        spec = replace(spec, params={**spec.params, **params})
    return spec


def info_record(dataset, spec) -> dict:
    stats = dataset.stats()
    record = {key: stats[key] for key in (
        "name", "n_instances", "n_features", "n_labels", "cardinality", "density",
        "n_distinct_labelsets", "n_zero_label_rows")}
    for part in ("train", "val", "test"):
        if part in stats["split"]:
            record[f"n_{part}"] = stats["split"][part]
    record["split"] = stats["split"]
    record["format"] = spec.format
    record["sparse"] = stats["sparse"]
    record["notices"] = list(dataset.notices)
    return record


def show_info(args) -> int:
    spec = resolve_info_spec(args)
    dataset = load_dataset(spec, data_dir=args.data_dir)
    record = info_record(dataset, spec)
    if args.json:
        print(json.dumps(record))
        return 0
    split = ", ".join(f"{part} {size}" for part, size in record["split"].items()) or "none (one file)"
    lines = [
        f"dataset              {record['name']} ({spec.format}{', sparse features' if record['sparse'] else ''})",
        f"instances            {record['n_instances']}",
        f"features             {record['n_features']}",
        f"labels               {record['n_labels']}",
        f"cardinality          {record['cardinality']:.4f}",
        f"density              {record['density']:.4f}",
        f"distinct label sets  {record['n_distinct_labelsets']}",
        f"zero-label rows      {record['n_zero_label_rows']}",
        f"split                {split}",
    ]
    lines += [f"notice               {notice}" for notice in record["notices"]]
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------------- fetch / verify


def fetch_datasets(args) -> int:
    specs = [get_spec(name) for name in args.names]  # unknown names fail before any download
    failures = 0
    for spec in specs:
        if not spec.files:
            print(f"{spec.name}: generated, nothing to fetch")
        for role, ref in spec.files.items():
            try:
                local = fetch_file(ref, args.data_dir, into=args.data_dir, dataset=spec.name)
                check_file(ref, local)
                print(f"{spec.name}: {ref.rel}: ok ({local.origin}: {local.path})")
            except DatasetError as exc:
                failures += 1
                print(f"{spec.name}: {ref.rel}: error: {exc}", file=sys.stderr)
    if failures:
        print(f"error: {failures} file(s) could not be fetched", file=sys.stderr)
        return 2
    return 0


def verify_datasets(args) -> int:
    specs = [get_spec(name) for name in args.names] if args.names else list(catalog().values())
    rows, counts = [], {"ok": 0, "mismatch": 0, "missing": 0, "unchecked": 0}
    for spec in specs:
        for ref in spec.files.values():
            local = locate(ref, args.data_dir)
            if local is None:
                status, where = "missing", ""
            else:
                where = f"{local.origin}: {local.path}"
                status = "unchecked" if not ref.sha256 else ("ok" if sha256_of(local) == ref.sha256 else "mismatch")
            counts[status] += 1
            rows.append((spec.name, ref.rel, status, where))
    print(tabulate(rows, headers=("dataset", "file", "status", "where")))
    print(", ".join(f"{count} {status}" for status, count in counts.items()))
    if counts["mismatch"]:
        print(f"error: {counts['mismatch']} file(s) do not match their catalog sha256", file=sys.stderr)
        return 1
    return 0
