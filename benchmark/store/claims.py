"""Claims: leases that stop two concurrent runs from computing the same group.

A run claims each group (one study and its cells) before it starts it. A claim names
its owner (host, pid, a random run id) and is refreshed by a heartbeat thread while the
owner works; a claim whose owner died (same host, pid gone) or whose lease expired is
*dead*: it is removed (:meth:`ClaimRegistry.remove_dead`) and its group taken over.

Used as a context manager, the registry beats while the run lasts and releases every
claim of its owner on exit::

    with store.claims() as claims:
        if claims.claim(key): ...
"""

from __future__ import annotations

import os
import threading
import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from benchmark.store.tables import claims_table

LEASE_SECONDS = 15 * 60  # a claim not refreshed for this long is considered abandoned
HEARTBEAT_SECONDS = 60.0

def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ClaimRegistry:
    """The claims of one owner (a run) in one store's database."""

    def __init__(self, engine: sa.Engine, owner: str, host: str, lease_seconds: float = LEASE_SECONDS,
                 heartbeat_seconds: float = HEARTBEAT_SECONDS):
        self.engine = engine
        self.owner = owner
        self.host = host
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._stop: threading.Event | None = None

    def __enter__(self) -> "ClaimRegistry":
        self.remove_dead()
        self._stop = threading.Event()
        threading.Thread(target=self._beat, name="mlcbench-claims", daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        if self._stop is not None:
            self._stop.set()
        self.release_all()

    def _beat(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                pass

    def _is_dead(self, row, now: float) -> bool:
        return (row.host == self.host and not pid_alive(row.pid)) or now - row.refreshed >= self.lease_seconds

    def claim(self, key: str) -> bool:
        """Take the lease on ``key`` unless a live owner holds it; True on success."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(claims_table).where(claims_table.c.key == key)).first()
            if row is not None:
                if row.owner == self.owner:
                    conn.execute(claims_table.update().where(claims_table.c.key == key).values(refreshed=now))
                    return True
                if not self._is_dead(row, now):
                    return False
                conn.execute(claims_table.delete().where(claims_table.c.key == key))
            try:
                with conn.begin_nested():  # SQLite serialises writers; PostgreSQL may race here
                    conn.execute(claims_table.insert().values(
                        key=key, owner=self.owner, host=self.host, pid=os.getpid(), refreshed=now))
            except IntegrityError:
                return False
        return True

    def holder(self, key: str) -> str | None:
        """Who holds ``key`` now (a live owner other than us), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(claims_table).where(claims_table.c.key == key)).first()
        if row is None or row.owner == self.owner or self._is_dead(row, time.time()):
            return None
        return row.owner

    def remove_dead(self) -> int:
        """Delete the claims of dead owners (crashed runs); returns how many."""
        now = time.time()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(claims_table)).fetchall()
            dead = [r.key for r in rows if r.owner != self.owner and self._is_dead(r, now)]
            for key in dead:
                conn.execute(claims_table.delete().where(claims_table.c.key == key))
        return len(dead)

    def refresh(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(claims_table.update().where(claims_table.c.owner == self.owner).values(refreshed=time.time()))

    def release(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(claims_table.delete().where((claims_table.c.key == key) & (claims_table.c.owner == self.owner)))

    def release_all(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(claims_table.delete().where(claims_table.c.owner == self.owner))
