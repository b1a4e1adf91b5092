"""The Ray executor on a real two-node cluster: a head and a worker node started with ``ray start``.

Both nodes run on this machine (one CPU each, their own ports and process groups), and the
run joins them with ``--address``, as on a real cluster; a job needs the second node as
soon as two run at once. Each node's processes (raylet and the Ray workers it spawns)
descend from the ``ray start`` that created them and its process group, so the pid a fit
logged tells which node ran it. The nodes are stopped by killing their own process
groups: ``ray stop`` would kill every Ray instance on the machine, other users' too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import REPO_ROOT, TEST_MODELS

from benchmark.store.results import ResultsStore

pytestmark = pytest.mark.slow  # starts a two-node Ray cluster

pytest.importorskip("ray")

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies left for a reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


def _stop_groups(pgids) -> None:
    """Stop the nodes: SIGTERM to their process groups, SIGKILL to what is left after 2 s.

    gcs_server and raylet ignore SIGTERM (``ray stop`` also ends with SIGKILL).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in pgids:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (2 if sig == signal.SIGTERM else 10)
        while time.monotonic() < deadline:
            if not any(_group_alive(pgid) for pgid in pgids):
                return
            time.sleep(0.1)


def node_of(pid: int, groups: dict[int, str]) -> str:
    """The node whose process group holds ``pid`` or an ancestor (a Ray worker leads its own group)."""
    walked = []
    while pid > 1 and len(walked) < 6:
        walked.append(pid)
        try:
            if os.getpgid(pid) in groups:
                return groups[os.getpgid(pid)]
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])  # the parent
        except (ProcessLookupError, FileNotFoundError):
            break
    return f"no node (processes {walked})"


@pytest.fixture
def ray_cluster(tmp_path):
    """(address, {process group: node name}, env) of a head and a worker node, stopped afterwards."""
    if not RAY.exists():
        pytest.skip(f"the ray command is not installed beside {sys.executable}")
    # no usage reports; no token auth (a token in ~/.ray would switch the head to token mode
    # while `ray start --address` and the driver do not send one); the worktree's benchmark package
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    temp_dir = tempfile.mkdtemp(prefix="mlcray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--num-gpus=0", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    commands = {
        "head": [str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false",
                 f"--dashboard-port={free_port()}",
                 f"--temp-dir={temp_dir}", *common],
        "worker": [str(RAY), "start", f"--address={address}", *common],
    }
    groups: dict[int, str] = {}
    try:
        for name, command in commands.items():
            proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # its own process group: the node's processes
            groups[proc.pid] = name
            out, _ = proc.communicate(timeout=120)
            if proc.returncode:
                pytest.skip(f"`ray start` ({name} node) failed here: {out.decode()[-1500:]}")
        yield address, groups, env
    finally:
        _stop_groups(list(groups))
        assert not any(_group_alive(pgid) for pgid in groups), "a Ray process outlived its node's stop"
        shutil.rmtree(temp_dir, ignore_errors=True)


SUITE = """
name = "ray-cluster"
datasets = ["emotions"]
models = ["test_epoch_lr"]
fractions = [0.5, 1.0]
seeds = [0, 1]
trials = 0

[model.test_epoch_lr]
trials = 0
params = { epochs = 3, sleep = 0.5 }
"""


def test_a_run_on_a_two_node_ray_cluster_uses_both_nodes(ray_cluster, tmp_path):
    address, groups, env = ray_cluster
    suite, results, log = tmp_path / "suite.toml", tmp_path / "res", tmp_path / "fits.log"
    suite.write_text(SUITE)
    env = dict(env, MLCBENCH_MODELS_PATH=str(TEST_MODELS), MLCBENCH_TEST_FIT_LOG=str(log), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "run", "--suite", str(suite), "--results", str(results),
                             "--executor", "ray", "--address", address, "--workers", "2", "--quiet"],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # while the run lasts, note which node's process group each fitting worker belongs to
    node_of_pid: dict[int, str] = {}
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            pid = int(next(part for part in line.split() if part.startswith("pid=")).split("=")[1])
            if pid not in node_of_pid:
                node_of_pid[pid] = node_of(pid, groups)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-3000:]
    frame = ResultsStore(results).runs_frame()
    assert len(frame) == 4 and (frame.status == "done").all()
    assert not frame.duplicated(["fraction", "seed"]).any()
    assert frame.metrics.map(lambda m: m["val"]["maF1"]).min() > 0.3, "real models, real scores"
    assert len(log.read_text().splitlines()) == 4, "each cell fitted once"
    assert set(node_of_pid.values()) == {"head", "worker"}, f"fits ran on {node_of_pid}: not on both nodes"
