"""A real PostgreSQL server for the tests: initdb + pg_ctl in a temp dir, on a free local port.

The README promises one store on PostgreSQL shared by many machines; these fixtures let
the tests run the benchmark against a real server instead of trusting SQLAlchemy. The
server is started once per session (``postgres_server``); every test gets its own fresh
database (``postgres_url``). Where no PostgreSQL binaries are installed (Debian's
``postgresql`` package; ``.ci/run`` installs it), the tests are skipped and say so.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
user (created by the Debian package) or ``nobody``, in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's versioned dirs."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    for initdb in reversed(versions):
        if (Path(initdb).parent / "pg_ctl").exists():
            return Path(initdb).parent
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server: ourselves, or (as root, which PostgreSQL refuses) an unprivileged user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("PostgreSQL refuses to run as root and there is no 'postgres' or 'nobody' user")


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    user: str | None
    superuser: str = "mlcbench"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, **kwargs)

    def start(self) -> None:
        init = self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir / "data"), "-U", self.superuser,
                         "--auth=trust", "--encoding=UTF8", "--no-sync")
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        # a private socket dir, TCP on localhost only, small and fast (no fsync: test data)
        options = (f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=16MB")
        started = self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir / "data"), "-l",
                            str(self.data_dir / "server.log"), "-o", options, "-w", "-t", "60", "start")
        if started.returncode:
            log = (self.data_dir / "server.log")
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} "
                               f"{log.read_text()[-2000:] if log.exists() else ''}")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir / "data"), "-m", "immediate", "-w", "stop")

    def create_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import sqlalchemy as sa

        name = f"mlcbench_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole session, stopped (and its files removed) at the end."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin; "
                    "Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="the postgres extra is not installed (pip install 'mlc-bench[postgres]')")
    user = _server_user()
    data_dir = Path(tempfile.mkdtemp(prefix="mlcbench-pg-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir, data_dir, free_port(), user)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty database on the session's server."""
    return postgres_server.create_database()
