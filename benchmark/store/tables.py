"""The store's tables, keys and schema version, and the typed row of a cell.

The results store (:mod:`benchmark.store.results`) and the claims
(:mod:`benchmark.store.claims`) both build on these definitions; neither imports the
other. :class:`CellRow` has exactly the columns of ``mlcbench_runs`` (a test holds them
equal), so a row with an unknown or a missing required field is an error, never dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa

from benchmark.files import json_safe

SCHEMA_VERSION = 3  # 3: runs.warnings

metadata = sa.MetaData()

CELL_KEY = ("dataset", "model", "fraction", "seed", "config")


class CellKey(NamedTuple):
    dataset: str
    model: str
    fraction: float
    seed: int
    config: str = ""


runs_table = sa.Table(
    "mlcbench_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("fraction", sa.Float, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("config", sa.String(80), nullable=False, server_default=""),  # identity hash
    sa.Column("status", sa.String(16), nullable=False),  # done | failed
    sa.Column("error", sa.Text),  # traceback of a failed cell
    sa.Column("params", sa.JSON),
    sa.Column("metrics", sa.JSON),  # protocol -> metric -> value
    sa.Column("thresholds", sa.JSON),  # protocol -> metric -> threshold
    sa.Column("val_score", sa.Float),  # the tuning objective, for the chosen configuration
    sa.Column("best_epoch", sa.Integer),
    sa.Column("n_epochs", sa.Integer),
    sa.Column("fit_seconds", sa.Float),
    sa.Column("predict_seconds", sa.Float),
    sa.Column("seconds_per_epoch", sa.Float),
    sa.Column("device", sa.String(200)),
    sa.Column("versions", sa.JSON),
    sa.Column("git_commit", sa.String(80)),
    sa.Column("suite", sa.String(200)),
    sa.Column("suite_hash", sa.String(64)),
    sa.Column("settings", sa.JSON),  # the configuration the config hash was computed from
    sa.Column("artifacts", sa.String(500)),  # .npz beside the store (relative to artifacts_dir), or NULL
    sa.Column("n_trials", sa.Integer),
    sa.Column("n_train", sa.Integer),
    sa.Column("n_val", sa.Integer),
    sa.Column("n_test", sa.Integer),
    sa.Column("host", sa.String(200)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("started_at", sa.String(40)),
    sa.Column("finished_at", sa.String(40)),
    sa.Column("warnings", sa.JSON),  # what makes the cell's numbers fragile (a tiny test set, unseen labels)
    sa.UniqueConstraint(*CELL_KEY, name="uq_mlcbench_runs_cell_config"),
)

planned_table = sa.Table(
    "mlcbench_planned",
    metadata,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("fraction", sa.Float, primary_key=True),
    sa.Column("seed", sa.Integer, primary_key=True),
    sa.Column("config", sa.String(80), primary_key=True, server_default=""),
    sa.Column("suite", sa.String(200), primary_key=True),
    sa.Column("suite_hash", sa.String(64)),
    sa.Column("planned_at", sa.String(40)),
)

schema_table = sa.Table(
    "mlcbench_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("migrated_at", sa.String(40)),
)

RUN_COLUMNS = [c.name for c in runs_table.columns if c.name != "id"]
JSON_COLUMNS = [c.name for c in runs_table.columns if isinstance(c.type, sa.JSON)]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def normalize_fraction(fraction: float) -> float:
    """Fractions are part of the unique key: round them so 0.1 always equals 0.1."""
    return round(float(fraction), 6)


def cell_key(dataset: str, model: str, fraction: float, seed: int, config: str = "") -> CellKey:
    return CellKey(str(dataset), str(model), normalize_fraction(fraction), int(seed), str(config or ""))


# ----------------------------------------------------------------------------- opening

claims_table = sa.Table(
    "mlcbench_claims",
    metadata,
    sa.Column("key", sa.String(600), primary_key=True),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("refreshed", sa.Float, nullable=False),  # unix time of the last refresh
)


@dataclass(frozen=True)
class CellRow:
    """One row of ``mlcbench_runs`` (without its ``id``): the columns, nothing else."""

    dataset: str
    model: str
    fraction: float
    seed: int
    status: str  # done | failed
    config: str = ""
    error: str | None = None
    params: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    thresholds: dict[str, Any] | None = None
    val_score: float | None = None
    best_epoch: int | None = None
    n_epochs: int | None = None
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    seconds_per_epoch: float | None = None
    device: str | None = None
    versions: dict[str, str] | None = None
    git_commit: str | None = None
    suite: str | None = None
    suite_hash: str | None = None
    settings: dict[str, Any] | None = None
    artifacts: str | None = None
    n_trials: int | None = None
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    host: str | None = None
    run_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    warnings: list[str] | None = None

    @classmethod
    def of(cls, row: "CellRow | dict[str, Any]") -> "CellRow":
        """A row from a mapping: an unknown field or a missing required one is a one-line error."""
        if isinstance(row, CellRow):
            return row
        unknown = sorted(set(row) - set(RUN_COLUMNS))
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.name not in row)
        if unknown or missing:
            raise ValueError(f"not a cell row: unknown fields {unknown}, missing fields {missing}")
        return cls(**row)

    def values(self) -> dict[str, Any]:
        """The column values, JSON-safe, with the key normalised (0.1 + 0.2 is stored as 0.3)."""
        values = {name: json_safe(getattr(self, name)) for name in RUN_COLUMNS}
        values.update(cell_key(self.dataset, self.model, self.fraction, self.seed, self.config)._asdict())
        return values
