"""``python -m benchmark datasets list | info NAME | fetch NAME... | verify [NAME...]``.

- ``list``: every catalog dataset with its format, published size, split and where its
  files are (data dir, bundled, cache) or whether they need a download.
- ``info NAME [--json]``: load the dataset and print its statistics; ``--json`` prints one
  JSON object with name, n_instances, n_features, n_labels, cardinality, density,
  n_distinct_labelsets, n_zero_label_rows, n_train/n_val/n_test (the parts present) and
  the same sizes as a ``split`` object. NAME may also be the path of a ``*_data.npy``
  file (the ``.npy`` format; index files beside it, dimensions from the options).
- ``fetch NAME...``: make every file of the datasets local (download into the cache, or
  into ``--data-dir`` when given), checking sha256.
- ``verify [NAME...]``: re-hash every local file; ok / mismatch / missing per file; the
  exit status is 1 if any file mismatches.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DATA_DIR_HELP = "a directory laid out like the dataset mirror (default: $MLCBENCH_DATA_DIR)"


def register(subparsers) -> None:
    parser = subparsers.add_parser("datasets", help="list, inspect, fetch and verify datasets")
    actions = parser.add_subparsers(dest="datasets_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every catalog dataset and where its files are")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    listing.set_defaults(handler=list_datasets)

    info = actions.add_parser("info", help="load one dataset and print its statistics")
    info.add_argument("name", help="catalog name, or the path of a <name>_data.npy file")
    info.add_argument("--json", action="store_true", help="print exactly one JSON object")
    info.add_argument("--label-dim", type=int, help=".npy format: number of label columns")
    info.add_argument("--feature-dim", type=int, help=".npy format: number of feature columns")
    info.add_argument("--meta-offset", type=int, help=".npy format: number of leading meta columns")
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


def split_text(spec) -> str:
    roles = set(spec.files)
    if spec.format == "npy":
        pub = spec.published
        sizes = f" {pub['train']}/{pub['val']}/{pub['test']}" if {"train", "val", "test"} <= set(pub) else ""
        return "train/val/test" + sizes
    if {"train", "test"} <= roles:
        pub = spec.published
        sizes = f" {pub['train']}/{pub['test']}" if "train" in pub and "test" in pub else ""
        return "train/test" + sizes
    if spec.format == "synthetic":
        return "seeded train/test"
    return "none"


def availability(spec, data_dir) -> str:
    """Where the dataset's files are, or what is needed to get them."""
    from benchmark.datasource import locate

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
    from tabulate import tabulate

    from benchmark.datasource import catalog

    rows = []
    for name, spec in catalog().items():
        pub = spec.published
        params = spec.params
        rows.append({
            "name": name,
            "format": spec.format,
            "instances": pub.get("instances", params.get("n_samples", "")),
            "features": pub.get("features", params.get("feature_dim", params.get("n_features", ""))),
            "labels": pub.get("labels", params.get("label_dim", params.get("n_labels", ""))),
            "split": split_text(spec),
            "files": availability(spec, args.data_dir),
        })
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(tabulate(rows, headers="keys"))
    return 0


# ---------------------------------------------------------------------------- info


def npy_spec_from_path(path: Path, args):
    """A ``.npy``-format spec for ``<dir>/<name>_data.npy`` with its index files beside it."""
    from benchmark.datasource import DatasetSpec, catalog
    from benchmark.errors import DatasetError

    stem = path.name[: -len("_data.npy")]
    known = catalog().get(stem)
    params = dict(known.params) if known is not None and known.format == "npy" else {}
    for dim in ("label_dim", "feature_dim", "meta_offset"):
        value = getattr(args, dim)
        if value is not None:
            params[dim] = value
    params.setdefault("meta_offset", 0)
    if "label_dim" not in params or "feature_dim" not in params:
        raise DatasetError(f"{path}: give --label-dim and --feature-dim for a .npy dataset")
    files = {"data": path}
    files.update({f"{part}_idx": path.with_name(f"{stem}_{part}_idx.npy") for part in ("train", "val", "test")})
    return DatasetSpec.from_dict({"name": stem, "format": "npy", **{k: str(v) for k, v in files.items()}, **params},
                                 base_dir=path.parent)


def resolve_info_spec(args):
    from dataclasses import replace

    from benchmark.datasource import get_spec

    if args.name.endswith("_data.npy") and Path(args.name).exists():
        return npy_spec_from_path(Path(args.name), args)
    spec = get_spec(args.name)
    overrides = {d: getattr(args, d) for d in ("label_dim", "feature_dim", "meta_offset") if getattr(args, d) is not None}
    if overrides:
        spec = replace(spec, params={**spec.params, **overrides})
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
    from benchmark.datasource import load_dataset

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
    from benchmark.datasource import check_file, fetch_file, get_spec
    from benchmark.errors import DatasetError

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
    from tabulate import tabulate

    from benchmark.datasource import catalog, get_spec, locate, sha256_of

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
