"""The results store: one row per finished cell, in any SQLAlchemy database.

A *cell* is one (dataset, model, fraction, seed) **under one configuration**: the
``config`` column holds the hash of everything else that determines its result
(dataset files, split, budget, params or search space, pruner, grids, objective; see
:mod:`benchmark.store.identity`). The unique key is (dataset, model, fraction, seed,
config), so a run with another budget computes its own cells and never reuses
another configuration's.

Tables (this module owns the first two; claims live in :mod:`benchmark.store.claims`):

- ``mlcbench_runs``: one row per cell with its status (``done`` or ``failed``),
  metrics and thresholds under the three protocols, hyperparameters, timings and
  provenance. A row is written in a single transaction, so a run killed at any
  instant never leaves a half-written row. A ``failed`` row is replaced when the cell
  is retried; a ``done`` row is never overwritten (a second writer's result for the
  same cell is dropped), so two runs on the same store never duplicate a cell.
- ``mlcbench_planned``: the cells each run planned, so reports can list missing cells.
- ``mlcbench_schema``: the layout version. Stores written before versioning (v1: no
  ``config`` column) are migrated in place when opened; their rows get the config
  ``legacy-<suite hash>``.

Optuna's studies live in the same database (Optuna creates its own tables beside ours;
see :mod:`benchmark.execution.tuning`). By default the store is the SQLite file
``results/mlcbench.sqlite`` (WAL mode, a busy timeout, ``BEGIN IMMEDIATE``); any
SQLAlchemy URL (``postgresql+psycopg://...``) shares one store between machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError

from benchmark.errors import BenchmarkError
from benchmark.files import atomic_write
from benchmark.lazy import lazy
from benchmark.store.claims import ClaimRegistry
from benchmark.store.tables import (
    CELL_KEY,
    JSON_COLUMNS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    CellKey,
    CellRow,
    cell_key,
    metadata,
    now_iso,
    planned_table,
    runs_table,
    schema_table,
)

pd = lazy("pandas")

DEFAULT_FILENAME = "mlcbench.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 60_000
SCHEMA_LOCK_ID = 7_251_946_031  # pg_advisory_lock key of schema creation (any constant)


class StoreError(BenchmarkError):
    """The results store cannot be opened or written (bad URL, path, driver, corrupt file)."""


def resolve_url(url_or_dir: str | os.PathLike = "results", create: bool = True) -> str:
    """A directory (or a ``.sqlite``/``.db`` file path) means an SQLite file; URLs pass.

    In-memory SQLite URLs are refused: results written there vanish when the run ends.
    """
    text = str(url_or_dir)
    if "://" in text:
        _check_url(text)
        return text
    path = Path(text).expanduser()
    file = path if path.suffix in (".sqlite", ".db", ".sqlite3") else path / DEFAULT_FILENAME
    if path.exists() and not path.is_dir() and file is not path:
        raise StoreError(f"{path}: is a file, not a results directory; give a directory or a .sqlite file path")
    if create:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{file.parent}: cannot create the results directory ({exc.strerror}); "
                             "choose another --results path") from None
        if not os.access(file.parent, os.W_OK):
            raise StoreError(f"{file.parent}: not writable; choose another --results path")
    return f"sqlite:///{file.resolve()}"


def _check_url(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{url!r} is not a database URL (expected e.g. sqlite:///path/x.sqlite or "
                         "postgresql+psycopg://user@host/db), or give a directory") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise StoreError(f"{url!r} is an in-memory SQLite database: results would be lost when the run "
                         "ends; give a directory or sqlite:///path/to/file.sqlite")


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
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        hint = "pip install 'mlc-bench[postgres]'" if exc.name == "psycopg" else f"pip install {exc.name}"
        raise StoreError(f"{url.split('://')[0]}://: database driver {exc.name!r} is not installed ({hint})") from None
    except sa.exc.NoSuchModuleError:
        raise StoreError(f"{url!r}: unknown database kind {url.split('://')[0]!r}") from None


def describe_db_error(url: str, exc: Exception) -> str:
    """One line for a database fault, naming the store and what to do."""
    texts, seen = [], exc
    while seen is not None and len(texts) < 5:  # a failed rollback hides the first error in __context__
        texts.append(str(getattr(seen, "orig", seen)) or type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    full = " / ".join(texts)
    text = next((t for t in texts if any(k in t for k in ("full", "malformed", "not a database", "readonly"))), texts[0])
    where = url.removeprefix("sqlite:///")
    if "malformed" in text or "not a database" in text or "file is encrypted" in text:
        return f"{where}: the results database is corrupt ({text}); it was not modified: restore it from a copy or choose another --results"
    if "disk is full" in full or "No space left" in full:
        return f"{where}: the disk is full; finished cells are kept: free space and run again to resume"
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return f"{where}: cannot write the results database ({text}); choose a writable --results path"
    return f"{where}: database error: {text.splitlines()[0]}"


# ----------------------------------------------------------------------------- migration

@contextlib.contextmanager
def schema_lock(engine: sa.Engine):
    """Serialise schema creation between processes (PostgreSQL; SQLite serialises writers itself).

    Runs opening a new database at the same instant would race to create the same tables
    (ours and optuna's) and all but one fail; the lock goes with the connection if a holder dies.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({SCHEMA_LOCK_ID})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({SCHEMA_LOCK_ID})")


def _migrate(engine: sa.Engine) -> None:
    """Create the tables, or bring a store of an older layout to ``SCHEMA_VERSION``."""
    with schema_lock(engine):
        _create_or_migrate(engine)


def _create_or_migrate(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("mlcbench_runs")} if "mlcbench_runs" in tables else set()
    is_v1 = "mlcbench_runs" in tables and "config" not in columns
    is_v2 = "mlcbench_runs" in tables and "config" in columns and "warnings" not in columns
    if not (is_v1 or is_v2) and {"mlcbench_runs", "mlcbench_planned", "mlcbench_schema", "mlcbench_claims"} <= tables:
        return  # up to date: no write transaction at all
    with engine.begin() as conn:
        if is_v1:
            _migrate_v1(conn, tables)
        if is_v2:  # v3 added one nullable column: rows keep what they have
            conn.exec_driver_sql("ALTER TABLE mlcbench_runs ADD COLUMN warnings JSON")
            conn.execute(schema_table.insert().values(version=SCHEMA_VERSION, migrated_at=now_iso()))
        metadata.create_all(conn, checkfirst=True)
        if conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar() is None:
            conn.execute(schema_table.insert().values(version=SCHEMA_VERSION, migrated_at=now_iso()))


def _migrate_v1(conn, tables: set[str]) -> None:
    """v1 keyed cells by (dataset, model, fraction, seed) only: copy rows into the v2 tables."""
    conn.exec_driver_sql("ALTER TABLE mlcbench_runs RENAME TO mlcbench_runs_v1")
    if "mlcbench_planned" in tables:
        conn.exec_driver_sql("ALTER TABLE mlcbench_planned RENAME TO mlcbench_planned_v1")
    metadata.create_all(conn, tables=[runs_table, planned_table, schema_table], checkfirst=True)
    old = sa.Table("mlcbench_runs_v1", sa.MetaData(), autoload_with=conn)
    rows = [dict(r._mapping) for r in conn.execute(sa.select(old))]
    for row in rows:
        row.pop("id", None)
        row["config"] = f"legacy-{row.get('suite_hash') or 'unknown'}"
    if rows:
        conn.execute(runs_table.insert(), [{k: r.get(k) for k in RUN_COLUMNS} for r in rows])
    conn.exec_driver_sql("DROP TABLE mlcbench_runs_v1")
    if "mlcbench_planned" in tables:
        old_planned = sa.Table("mlcbench_planned_v1", sa.MetaData(), autoload_with=conn)
        planned = [dict(r._mapping) for r in conn.execute(sa.select(old_planned))]
        for row in planned:
            row["config"] = f"legacy-{row.get('suite_hash') or 'unknown'}"
        if planned:
            conn.execute(planned_table.insert(), planned)
        conn.exec_driver_sql("DROP TABLE mlcbench_planned_v1")
    conn.execute(schema_table.insert().values(version=SCHEMA_VERSION, migrated_at=now_iso()))


# ----------------------------------------------------------------------------- the store

class ResultsStore:
    """Read and write the results of benchmark runs; see the module docstring."""

    def __init__(self, url_or_dir: str | os.PathLike = "results", create: bool = True):
        self.url = resolve_url(url_or_dir, create=create)
        self.engine = make_engine(self.url)
        try:
            _migrate(self.engine)
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise StoreError(describe_db_error(self.url, exc)) from None
        self.host = socket.gethostname()
        self.owner_tag = uuid.uuid4().hex[:12]
        self.owner = f"{self.host}:{os.getpid()}:{self.owner_tag}"

    def __repr__(self) -> str:
        return f"ResultsStore({self.url!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def artifacts_dir(self) -> Path:
        """Where cells' artifacts live: beside an SQLite file, else ``MLCBENCH_ARTIFACTS_DIR``."""
        if self.url.startswith("sqlite:///"):
            return Path(self.url.removeprefix("sqlite:///")).parent / "artifacts"
        return Path(os.environ.get("MLCBENCH_ARTIFACTS_DIR", "results/artifacts")).resolve()

    def save_artifacts(self, key: CellKey, arrays: dict[str, Any]) -> str:
        """Write a cell's arrays under a name of this run's own; returns the relative path.

        The name carries the run's id, so a run that loses the race for a cell (its row is
        dropped) cannot overwrite the winner's file; it removes its own.
        """
        relative = f"{key.config}/{key.dataset}/{key.model}/f{key.fraction:g}-s{key.seed}-{self.owner_tag}.npz"
        atomic_write(self.artifacts_dir / relative, lambda handle: np.savez_compressed(handle, **arrays))
        return relative

    def load_artifacts(self, relative: str) -> dict[str, Any]:
        with np.load(self.artifacts_dir / relative) as data:
            return {name: data[name] for name in data.files}

    def _remove_artifact(self, relative: str | None) -> None:
        if relative:
            (self.artifacts_dir / relative).unlink(missing_ok=True)

    def claims(self, **kwargs):
        """This store's claim registry (leases of running groups), owned by this store's run."""
        return ClaimRegistry(self.engine, self.owner, self.host, **kwargs)

    # ------------------------------------------------------------------ writing
    def record(self, row: CellRow | dict[str, Any], artifacts: dict[str, Any] | None = None) -> bool:
        """Store one finished cell in one transaction; return False if it was dropped.

        A ``done`` row already there wins (another run finished the cell first); a
        ``failed`` row is replaced by the new result. ``artifacts`` (arrays of a done
        cell) are written first, under a name of this run's own, so the row never points
        at a missing file; a dropped row's file is removed.
        """
        row = CellRow.of(row)
        if artifacts and row.status == "done":
            row = dataclasses.replace(row, artifacts=self.save_artifacts(cell_key(
                row.dataset, row.model, row.fraction, row.seed, row.config), artifacts))
        values = row.values()
        key = cell_key(*(values[k] for k in CELL_KEY))
        if values["status"] not in ("done", "failed"):
            raise ValueError(f"status must be 'done' or 'failed', not {values['status']!r}")
        values["finished_at"] = values.get("finished_at") or now_iso()
        values["host"] = values.get("host") or self.host
        values["run_id"] = values.get("run_id") or self.owner
        where = self._cell_where(runs_table, key)
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
        if not stored and row.artifacts:
            self._remove_artifact(row.artifacts)  # ours: the winner's row names its own file
        return stored

    def plan(self, cells: Iterable[tuple], suite: str, suite_hash: str) -> None:
        """Remember the cells a run means to compute (insert-or-ignore)."""
        stamp = now_iso()
        with self.engine.begin() as conn:
            known = {
                cell_key(r.dataset, r.model, r.fraction, r.seed, r.config)
                for r in conn.execute(sa.select(planned_table).where(planned_table.c.suite == suite))
            }
            new = [
                dict(key._asdict(), suite=suite, suite_hash=suite_hash, planned_at=stamp)
                for key in {cell_key(*cell) for cell in cells}
                if key not in known
            ]
            if new:
                conn.execute(planned_table.insert(), new)

    def delete(self, keys: Iterable[CellKey]) -> int:
        """Remove cells (for example a configuration that is no longer wanted)."""
        count, files = 0, []
        with self.engine.begin() as conn:
            for key in keys:
                where = self._cell_where(runs_table, cell_key(*key))
                files += [r[0] for r in conn.execute(sa.select(runs_table.c.artifacts).where(where))]
                count += conn.execute(runs_table.delete().where(where)).rowcount
        for relative in files:  # after the commit: a row never points at a missing file
            self._remove_artifact(relative)
        return count

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _cell_where(table: sa.Table, key: CellKey):
        return (
            (table.c.dataset == key.dataset)
            & (table.c.model == key.model)
            & (sa.func.abs(table.c.fraction - key.fraction) < 1e-9)
            & (table.c.seed == key.seed)
            & (table.c.config == key.config)
        )

    def cell_status(self) -> dict[CellKey, str]:
        """``{cell key: status}`` for every stored cell (every configuration)."""
        cols = [runs_table.c[k] for k in CELL_KEY] + [runs_table.c.status]
        with self.engine.connect() as conn:
            return {cell_key(*r[:5]): r[5] for r in conn.execute(sa.select(*cols))}

    def done_cells(self) -> set[CellKey]:
        return {key for key, status in self.cell_status().items() if status == "done"}

    def runs_frame(self, status: str | None = None):
        """Every stored cell as a DataFrame (columns: ``RUN_COLUMNS``)."""
        query = sa.select(*[runs_table.c[name] for name in RUN_COLUMNS]).order_by(
            runs_table.c.dataset, runs_table.c.model, runs_table.c.fraction, runs_table.c.seed,
            runs_table.c.finished_at,
        )
        if status is not None:
            query = query.where(runs_table.c.status == status)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
        for name in JSON_COLUMNS:
            frame[name] = [_as_dict(v) for v in frame[name]]
        frame["fraction"] = frame["fraction"].astype(float)
        frame["seed"] = frame["seed"].astype(int)
        return frame

    def planned_frame(self):
        """Every cell some run planned: dataset, model, fraction, seed, config, suite."""
        cols = [c.name for c in planned_table.columns]
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(planned_table))]
        frame = pd.DataFrame(rows, columns=cols)
        frame["fraction"] = frame["fraction"].astype(float)
        frame["seed"] = frame["seed"].astype(int)
        return frame

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar())


def _as_dict(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value if value is not None else {}
