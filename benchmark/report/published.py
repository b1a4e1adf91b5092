"""Published figures beside the harness's own (``report --published FILE.csv``).

The file has one row per published number: ``dataset, model, metric, protocol, value,
source`` (model = the method's name, the harness's or any other; protocol = the threshold
protocol the number was computed under; source = where it comes from). Two kinds of rows:

- ``protocol`` one of ours (``val``, ``fixed``, ``oracle``): compared with the harness's runs
  of the same dataset, model and protocol at training fraction 1 (published numbers are
  full-data numbers): difference = harness mean - published value, and whether it lies
  within two sample standard deviations of the harness's seeds. A row with no such runs
  says so ("no matching runs") instead of failing.
- ``protocol = other``: a study with its own protocol (its own splits, tuning, thresholds).
  Its figures are shown as a separate, labelled block beside the harness's rows, never
  ranked with them and with no significance claimed across protocols; where a published
  method is of the same family as a harness model (``FAMILIES``, or the optional
  ``same_family_as`` column naming harness models), a difference column. The source's
  protocol must be stated: an optional ``protocol_note`` column, or a file
  ``<name>.protocol.md`` beside ``<name>.csv`` whose text applies to every ``other`` row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.evaluation.metrics import METRICS
from benchmark.report.formatting import Cell, TextTable
from benchmark.report.inputs import METRIC_TITLES, PROTOCOLS, ReportError, metrics_long

COLUMNS = ("dataset", "model", "metric", "protocol", "value", "source")
OPTIONAL = ("protocol_note", "same_family_as")
OTHER = "other"  # a protocol that is none of ours
PUBLISHED_PROTOCOLS = PROTOCOLS + (OTHER,)
NO_MATCH = "no matching runs"

# Published method names (lower case) -> harness models of the same family: the same problem
# transformation or algorithm, whatever the implementation and base learner.
FAMILIES = {
    "br": ("br",),            # binary relevance
    "cc": ("cc",),            # classifier chain
    "ecc": ("ecc",), "eccj48": ("ecc",),  # ensembles of classifier chains
    "rakel": ("rakeld", "rakelo"), "rakel1": ("rakeld", "rakelo"), "rakel2": ("rakeld", "rakelo"),
    "rakeld": ("rakeld",), "rakelo": ("rakelo",),
    "mlknn": ("mlknn",),
    "rf": ("rf",), "rfdtbr": ("rf",), "rfpct": ("rf",),  # random forests (per label / multi-output trees)
    "mlarm": ("mlaram",), "mlaram": ("mlaram",), "ml-aram": ("mlaram",),
}


def protocol_note_file(path: Path) -> Path:
    """Where the statement of a published file's own protocol lives: ``<name>.protocol.md``."""
    return path.with_name(path.stem + ".protocol.md")


def load_published(source) -> pd.DataFrame:
    """Read and check a published-figures CSV (a path or a DataFrame); errors name the row."""
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), "published figures"
    else:
        path = Path(source)
        if not path.is_file():
            raise ReportError(f"published figures file {path} does not exist")
        frame, where = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True), str(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ReportError(f"{where} lacks column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    frame = frame[list(COLUMNS) + [c for c in OPTIONAL if c in frame.columns]].copy()
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = ""
    for column in ("dataset", "model", "metric", "protocol", "source") + OPTIONAL:
        frame[column] = frame[column].fillna("").astype(str).str.strip()
    if not isinstance(source, pd.DataFrame) and protocol_note_file(path).is_file():
        note = " ".join(protocol_note_file(path).read_text(encoding="utf-8").split())
        frame.loc[frame["protocol_note"] == "", "protocol_note"] = note
    values = pd.to_numeric(frame["value"], errors="coerce")
    for i, row in frame.iterrows():
        line = f"{where}, data row {i + 1}"
        if not np.isfinite(values[i]):
            raise ReportError(f"{line}: value {row['value']!r} is not a number")
        if row["protocol"] not in PUBLISHED_PROTOCOLS:
            raise ReportError(f"{line}: protocol {row['protocol']!r} is not one of {', '.join(PUBLISHED_PROTOCOLS)}")
        if row["protocol"] == OTHER and not row["protocol_note"]:
            hint = "" if isinstance(source, pd.DataFrame) else f" or a file {protocol_note_file(path)}"
            raise ReportError(f"{line}: protocol 'other' needs the source's protocol stated "
                              f"(a protocol_note column{hint})")
        if row["metric"] not in METRICS:
            raise ReportError(f"{line}: metric {row['metric']!r} is not one of {', '.join(METRICS)}")
        if not row["dataset"] or not row["model"]:
            raise ReportError(f"{line}: dataset and model must not be empty")
    frame["value"] = values.astype(float)
    return frame.reset_index(drop=True)


def compare(runs: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """One row per published figure under one of our protocols: the harness's mean, std, seeds, difference.

    ``within_2sd`` is True/False, or None when it cannot be judged (no runs, or one seed:
    no standard deviation).
    """
    published = published[published["protocol"].isin(PROTOCOLS)][list(COLUMNS)]
    longs = {p: metrics_long(runs, p) for p in set(published["protocol"])}
    rows = []
    for pub in published.itertuples(index=False):
        long = longs[pub.protocol]
        values = long[(long["dataset"] == pub.dataset) & (long["model"] == pub.model)
                      & (long["metric"] == pub.metric) & np.isclose(long["fraction"], 1.0)]["value"]
        n = len(values)
        mean = float(values.mean()) if n else np.nan
        std = float(values.std(ddof=1)) if n > 1 else np.nan
        diff = mean - pub.value if n else np.nan
        within = None if not np.isfinite(std) else bool(abs(diff) <= 2.0 * std + 1e-12)
        rows.append({**pub._asdict(), "published": pub.value, "ours_mean": mean, "ours_std": std, "n_seeds": n,
                     "difference": diff, "within_2sd": within})
    frame = pd.DataFrame(rows, columns=list(COLUMNS) + ["published", "ours_mean", "ours_std", "n_seeds",
                                                          "difference", "within_2sd"])
    return frame.drop(columns="value")


def verdict(row) -> str:
    """Short text for one comparison: the difference and whether it lies within 2 sd."""
    if not row["n_seeds"]:
        return NO_MATCH
    judged = {True: "within 2 sd", False: "outside 2 sd", None: "one seed: no sd"}[row["within_2sd"]]
    return f"Δ {row['difference']:+.3f}, {judged}"


def comparison_table(comparison: pd.DataFrame) -> TextTable:
    """The index section's table: every published figure, matched or not."""
    rows = []
    for row in comparison.to_dict("records"):
        matched = row["n_seeds"] > 0
        ours = "" if not matched else (f"{row['ours_mean']:.3f} ± {row['ours_std']:.3f}" if row["n_seeds"] > 1
                                       else f"{row['ours_mean']:.3f} ± —")
        rows.append([Cell(row["dataset"]), Cell(row["model"]), Cell(row["metric"]), Cell(row["protocol"]),
                     Cell(f"{row['published']:.3f}", mean=row["published"]),
                     Cell(ours if matched else NO_MATCH, mean=row["ours_mean"] if matched else None,
                          std=row["ours_std"] if matched else None, n=int(row["n_seeds"])),
                     Cell(str(row["n_seeds"])), Cell(verdict(row)), Cell(row["source"])])
    return TextTable("Published figures beside the harness's (training fraction 1, same protocol)",
                     ["dataset", "model", "metric", "protocol", "published", "harness mean ± sd", "seeds",
                      "difference (harness − published)", "source"], rows)


def table_cells(comparison: pd.DataFrame, metric: str, protocol: str) -> dict[str, dict[str, str]]:
    """``{dataset: {model: text}}`` of the published figures for one paper table."""
    out: dict[str, dict[str, str]] = {}
    sub = comparison[(comparison["metric"] == metric) & (comparison["protocol"] == protocol)]
    for row in sub.to_dict("records"):
        out.setdefault(row["dataset"], {})[row["model"]] = f"{row['published']:.3f} ({verdict(row)})"
    return out


# ---------------------------------------------------------------- other protocols


def family_models(method: str, same_family_as: str, harness_models) -> list[str]:
    """The harness models of the same family as a published method, in the harness's order."""
    if same_family_as:
        named = set(same_family_as.replace(",", " ").split())
    else:
        named = set(FAMILIES.get(method.lower(), ()))
        if method in harness_models:
            named.add(method)
    return [m for m in harness_models if m in named]


def other_protocol(published: pd.DataFrame, full: pd.DataFrame, datasets, models, metrics) -> pd.DataFrame:
    """Every ``other``-protocol figure on a reported dataset, with its same-family differences.

    ``full``: the report's summary at the table fraction (dataset, model, metric, mean, std, n),
    under the report's protocol. One row per (figure, same-family harness model), or one row
    with an empty ``harness_model`` when the method has no family in the harness.
    """
    other = published[(published["protocol"] == OTHER) & published["dataset"].isin(datasets)
                      & published["metric"].isin(metrics)]
    ours = full.set_index(["dataset", "model", "metric"])
    rows = []
    for pub in other.to_dict("records"):
        family = family_models(pub["model"], pub["same_family_as"], models) or [""]
        for model in family:
            mean = std = np.nan
            n = 0
            if model and (pub["dataset"], model, pub["metric"]) in ours.index:
                mean, std, n = ours.loc[(pub["dataset"], model, pub["metric"]), ["mean", "std", "n"]]
            rows.append({"source": pub["source"], "protocol_note": pub["protocol_note"], "dataset": pub["dataset"],
                         "metric": pub["metric"], "method": pub["model"], "published": pub["value"],
                         "harness_model": model, "harness_mean": float(mean), "harness_std": float(std),
                         "n_seeds": int(n), "difference": float(mean) - pub["value"] if n else np.nan})
    return pd.DataFrame(rows, columns=["source", "protocol_note", "dataset", "metric", "method", "published",
                                       "harness_model", "harness_mean", "harness_std", "n_seeds", "difference"])


def other_protocol_table(block: pd.DataFrame, full: pd.DataFrame, source: str, metric: str, datasets, models,
                         protocol: str) -> TextTable:
    """The harness's rows, then the source's, for one metric: values side by side, nothing ranked.

    Each dataset has two columns: the value and, for a published method with a harness model
    of the same family, Δ = harness mean − published value.
    """
    from benchmark.report.formatting import format_mean_std

    header = ["Method"]
    for dataset in datasets:
        header += [dataset, f"{dataset} Δ same family"]
    ours = full[full["metric"] == metric].set_index(["dataset", "model"])
    blank = [Cell("") for _ in range(2 * len(datasets))]
    rows = [[Cell(f"harness ({protocol} protocol, mean ± sd over seeds)")] + blank]
    for model in models:
        row = [Cell(model)]
        for dataset in datasets:
            if (dataset, model) in ours.index:
                mean, std, n = ours.loc[(dataset, model), ["mean", "std", "n"]]
                row.append(Cell(format_mean_std(mean, std), mean=float(mean), std=float(std), n=int(n)))
            else:
                row.append(Cell("n/a"))
            row.append(Cell(""))
        rows.append(row)
    rows.append([Cell(f"published: {source} (protocol other; not ranked)")] + blank)
    sub = block[block["metric"] == metric]
    for method in sorted(set(sub["method"]), key=str.lower):
        mine = sub[sub["method"] == method]
        family = [m for m in dict.fromkeys(mine["harness_model"]) if m]
        row = [Cell(method + (f" (family: {', '.join(family)})" if family else ""))]
        for dataset in datasets:
            here = mine[mine["dataset"] == dataset]
            if here.empty:
                row += [Cell(""), Cell("")]
                continue
            value = float(here["published"].iloc[0])
            deltas = [f"{r['harness_model']} {r['difference']:+.3f}" for r in here.to_dict("records")
                      if r["harness_model"] and r["n_seeds"]]
            row += [Cell(f"{value:.3f}", mean=value), Cell(", ".join(deltas))]
        rows.append(row)
    return TextTable(f"{METRIC_TITLES.get(metric, metric)} ({metric}): the harness beside {source}",
                     header, rows,
                     notes=[f"Δ = harness mean ({protocol} protocol, training fraction 1) − published value, for the "
                            "harness models of the method's family; the protocols differ, so a Δ is a difference "
                            "of whole setups (splits, tuning, thresholds, implementations), not a test."])
