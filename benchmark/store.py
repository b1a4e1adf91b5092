"""The results store: one row per finished cell, in any SQLAlchemy database.

A *cell* is one (dataset, model, fraction, seed). The store keeps

- ``mlcbench_runs``: one row per cell (unique key dataset, model, fraction, seed)
  with its status (``done`` or ``failed``), metrics and thresholds under the three
  protocols, hyperparameters, timings and provenance. A row is written in a single
  transaction, so a run killed at any instant never leaves a half-written row.
  A ``failed`` row is replaced when the cell is retried; a ``done`` row is never
  overwritten (a second writer's result for the same cell is dropped), so two runs
  on the same store never duplicate a cell.
- ``mlcbench_planned``: the cells each run planned (written when it starts), so
  reports can list the cells that are still missing.
- ``mlcbench_claims``: leases that stop two concurrent runs from computing the same
  cell or tuning the same study. A claim names its owner (host, pid, a random run id)
  and is refreshed while the owner works; a claim whose owner died (same host, pid
  gone) or whose lease expired is taken over.

Optuna's studies live in the same database (Optuna creates its own tables beside
ours; see :mod:`benchmark.tuning`). By default the store is the SQLite file
``results/mlcbench.sqlite``, opened in WAL mode with a busy timeout so that
several processes can write it; pass any SQLAlchemy URL (``postgresql+psycopg://...``)
to share one store between machines.
"""

from __future__ import annotations

import json
import math
import os
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

DEFAULT_FILENAME = "mlcbench.sqlite"
LEASE_SECONDS = 15 * 60  # a claim not refreshed for this long is considered abandoned
SQLITE_BUSY_TIMEOUT_MS = 60_000

metadata = sa.MetaData()

CELL_KEY = ("dataset", "model", "fraction", "seed")

runs_table = sa.Table(
    "mlcbench_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("fraction", sa.Float, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
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
    sa.Column("n_trials", sa.Integer),
    sa.Column("n_train", sa.Integer),
    sa.Column("n_val", sa.Integer),
    sa.Column("n_test", sa.Integer),
    sa.Column("host", sa.String(200)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("started_at", sa.String(40)),
    sa.Column("finished_at", sa.String(40)),
    sa.UniqueConstraint(*CELL_KEY, name="uq_mlcbench_runs_cell"),
)

planned_table = sa.Table(
    "mlcbench_planned",
    metadata,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("fraction", sa.Float, primary_key=True),
    sa.Column("seed", sa.Integer, primary_key=True),
    sa.Column("suite", sa.String(200), primary_key=True),
    sa.Column("suite_hash", sa.String(64)),
    sa.Column("planned_at", sa.String(40)),
)

claims_table = sa.Table(
    "mlcbench_claims",
    metadata,
    sa.Column("key", sa.String(600), primary_key=True),
    sa.Column("owner", sa.String(300), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("refreshed", sa.Float, nullable=False),  # unix time of the last refresh
)

RUN_COLUMNS = [c.name for c in runs_table.columns if c.name != "id"]
FRAME_COLUMNS = [
    "dataset", "model", "fraction", "seed", "status", "error", "params", "metrics",
    "thresholds", "val_score", "best_epoch", "n_epochs", "fit_seconds", "predict_seconds",
    "seconds_per_epoch", "device", "versions", "git_commit", "suite", "suite_hash",
    "n_trials", "n_train", "n_val", "n_test", "host", "run_id", "started_at", "finished_at",
]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def normalize_fraction(fraction: float) -> float:
    """Fractions are part of the unique key: round them so 0.1 always equals 0.1."""
    return round(float(fraction), 6)


def cell_key(dataset: str, model: str, fraction: float, seed: int) -> tuple[str, str, float, int]:
    return (str(dataset), str(model), normalize_fraction(fraction), int(seed))


def resolve_url(url_or_dir: str | os.PathLike = "results") -> str:
    """A directory (existing or not, without ``://``) means its SQLite file."""
    text = str(url_or_dir)
    if "://" in text:
        return text
    directory = Path(text).expanduser()
    if directory.suffix in (".sqlite", ".db", ".sqlite3"):
        directory.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{directory.resolve()}"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(directory / DEFAULT_FILENAME).resolve()}"


def _sqlite_engine(url: str) -> sa.Engine:
    """SQLite with WAL, a busy timeout, and BEGIN IMMEDIATE for write transactions.

    pysqlite's own transaction handling starts transactions lazily and deferred,
    which lets two writers read, then both try to upgrade to a write lock (one of
    them fails with "database is locked" without waiting). Taking the write lock
    at BEGIN makes concurrent writers queue on the busy timeout instead.
    """
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return sa.create_engine(url, pool_pre_ping=True)


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultsStore:
    """Read and write the results of benchmark runs; see the module docstring."""

    def __init__(self, url_or_dir: str | os.PathLike = "results"):
        self.url = resolve_url(url_or_dir)
        self.engine = make_engine(self.url)
        metadata.create_all(self.engine, checkfirst=True)
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def __repr__(self) -> str:
        return f"ResultsStore({self.url!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writing
    def record(self, row: dict[str, Any]) -> bool:
        """Store one finished cell in one transaction; return False if it was dropped.

        A ``done`` row already there wins (another run finished the cell first); a
        ``failed`` row is replaced by the new result. The cell's claim, if this
        store holds it, is released in the same transaction.
        """
        values = {name: _clean(row.get(name)) for name in RUN_COLUMNS}
        values["dataset"], values["model"], values["fraction"], values["seed"] = cell_key(
            row["dataset"], row["model"], row["fraction"], row["seed"]
        )
        if values["status"] not in ("done", "failed"):
            raise ValueError(f"status must be 'done' or 'failed', not {values['status']!r}")
        values["finished_at"] = values.get("finished_at") or now_iso()
        values["host"] = values.get("host") or self.host
        values["run_id"] = values.get("run_id") or self.owner
        where = self._cell_where(runs_table, *cell_key(*(row[k] for k in CELL_KEY)))
        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(runs_table.c.status).where(where)).scalar_one_or_none()
            stored = existing != "done"
            if stored:
                if existing is not None:
                    conn.execute(runs_table.delete().where(where))
                try:
                    with conn.begin_nested():  # a concurrent writer (PostgreSQL) may win the race
                        conn.execute(runs_table.insert().values(**values))
                except IntegrityError:
                    stored = False
            conn.execute(
                claims_table.delete().where(
                    (claims_table.c.key == self.claim_key(*(row[k] for k in CELL_KEY)))
                    & (claims_table.c.owner == self.owner)
                )
            )
        return stored

    def plan(self, cells: Iterable[tuple], suite: str, suite_hash: str) -> None:
        """Remember the cells a run means to compute (insert-or-ignore)."""
        stamp = now_iso()
        with self.engine.begin() as conn:
            known = {
                (r.dataset, r.model, normalize_fraction(r.fraction), int(r.seed))
                for r in conn.execute(
                    sa.select(planned_table).where(planned_table.c.suite == suite)
                )
            }
            new = [
                dict(zip(CELL_KEY, cell_key(*cell)), suite=suite, suite_hash=suite_hash, planned_at=stamp)
                for cell in cells
                if cell_key(*cell) not in known
            ]
            if new:
                conn.execute(planned_table.insert(), new)

    # ------------------------------------------------------------------ claims
    @staticmethod
    def claim_key(dataset: str, model: str, fraction: float, seed: int | None = None) -> str:
        """Lease name of a cell, or (``seed=None``) of the study of its group."""
        if seed is None:
            return f"study|{dataset}|{model}|{normalize_fraction(fraction)}"
        return "cell|" + "|".join(str(p) for p in cell_key(dataset, model, fraction, seed))

    def claim(self, key: str, lease_seconds: float = LEASE_SECONDS) -> bool:
        """Take the lease on ``key`` unless a live owner holds it; True on success."""
        import time

        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(claims_table).where(claims_table.c.key == key)).first()
            if row is not None:
                if row.owner == self.owner:
                    conn.execute(claims_table.update().where(claims_table.c.key == key).values(refreshed=now))
                    return True
                dead = row.host == self.host and not _pid_alive(row.pid)
                if not dead and now - row.refreshed < lease_seconds:
                    return False
                conn.execute(claims_table.delete().where(claims_table.c.key == key))
            try:
                with conn.begin_nested():  # SQLite serialises writers; PostgreSQL may race here
                    conn.execute(
                        claims_table.insert().values(
                            key=key, owner=self.owner, host=self.host, pid=os.getpid(), refreshed=now
                        )
                    )
            except IntegrityError:
                return False
        return True

    def refresh_claims(self) -> None:
        """Keep this run's leases alive (called periodically by the runner)."""
        import time

        with self.engine.begin() as conn:
            conn.execute(
                claims_table.update().where(claims_table.c.owner == self.owner).values(refreshed=time.time())
            )

    def release(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                claims_table.delete().where((claims_table.c.key == key) & (claims_table.c.owner == self.owner))
            )

    def release_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(claims_table.delete().where(claims_table.c.owner == self.owner))

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _cell_where(table: sa.Table, dataset, model, fraction, seed):
        return (
            (table.c.dataset == dataset)
            & (table.c.model == model)
            & (sa.func.abs(table.c.fraction - fraction) < 1e-9)
            & (table.c.seed == seed)
        )

    def cell_status(self) -> dict[tuple[str, str, float, int], str]:
        """``{(dataset, model, fraction, seed): status}`` for every stored cell."""
        cols = [runs_table.c[k] for k in CELL_KEY] + [runs_table.c.status]
        with self.engine.connect() as conn:
            return {cell_key(*r[:4]): r[4] for r in conn.execute(sa.select(*cols))}

    def done_cells(self) -> set[tuple[str, str, float, int]]:
        return {key for key, status in self.cell_status().items() if status == "done"}

    def runs_frame(self, status: str | None = None):
        """Every stored cell as a DataFrame (columns: see ``FRAME_COLUMNS``)."""
        import pandas as pd

        query = sa.select(*[runs_table.c[name] for name in FRAME_COLUMNS]).order_by(
            runs_table.c.dataset, runs_table.c.model, runs_table.c.fraction, runs_table.c.seed
        )
        if status is not None:
            query = query.where(runs_table.c.status == status)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
        for name in ("params", "metrics", "thresholds", "versions"):
            frame[name] = [_as_dict(v) for v in frame[name]]
        frame["fraction"] = frame["fraction"].astype(float)
        frame["seed"] = frame["seed"].astype(int)
        return frame

    def metrics_long(self, protocol: str | None = None):
        """Finished cells' metrics, one row per (cell, protocol, metric)."""
        import pandas as pd

        records = []
        for row in self.runs_frame(status="done").itertuples(index=False):
            for proto, values in (row.metrics or {}).items():
                if protocol is not None and proto != protocol:
                    continue
                for metric, value in (values or {}).items():
                    records.append(
                        (row.dataset, row.model, row.fraction, row.seed, proto, metric,
                         float("nan") if value is None else float(value))
                    )
        return pd.DataFrame(
            records, columns=["dataset", "model", "fraction", "seed", "protocol", "metric", "value"]
        )

    def planned_frame(self):
        """Every cell some run planned: dataset, model, fraction, seed, suite."""
        import pandas as pd

        cols = ["dataset", "model", "fraction", "seed", "suite", "suite_hash", "planned_at"]
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(*[planned_table.c[c] for c in cols]))]
        frame = pd.DataFrame(rows, columns=cols)
        frame["fraction"] = frame["fraction"].astype(float)
        frame["seed"] = frame["seed"].astype(int)
        return frame


def _as_dict(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value if value is not None else {}
