"""A real local Ray cluster for the distributed tests: `ray start --head` in a subprocess, reached by address."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

RAY_BIN = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all held open until all are chosen, so none is handed out twice
    (a port asked for alone and closed at once may come back for the next component)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class RayNode:
    """One `ray start --block` process group; stopping it ends exactly the processes it started."""

    def __init__(self, args: list[str], log: Path, prefix: list[str] = ()) -> None:
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [_src_dir(), os.environ.get("PYTHONPATH")]))}
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*prefix, str(RAY_BIN), "start", "--block", "--disable-usage-stats", *args],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )

    def wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "Ray runtime started" in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ray start failed:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the node's GCS and raylet; the raylet ends its workers
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything of this node that is left
        except ProcessLookupError:
            pass


def _src_dir() -> str:
    import photoseek

    return str(Path(photoseek.__file__).resolve().parents[1])


@pytest.fixture(scope="session")
def ray_temp() -> Iterator[Path]:
    """Ray's session files, in a short path (its socket paths must stay under 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="photoseek-ray-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_head(temp: Path, *extra: str) -> tuple[RayNode, str]:
    """A two-CPU head node (`extra`: more `ray start` options) and its address."""
    port, dashboard, client, agent, agent_grpc, runtime_env, metrics = free_ports(7)
    head = RayNode(
        [
            "--head", "--num-cpus", "2", "--port", str(port), "--temp-dir", str(temp),
            "--object-store-memory", str(300 * 2**20), "--dashboard-port", str(dashboard),
            "--ray-client-server-port", str(client), "--dashboard-agent-listen-port", str(agent),
            "--dashboard-agent-grpc-port", str(agent_grpc), "--runtime-env-agent-port", str(runtime_env),
            "--metrics-export-port", str(metrics), *extra,
        ],
        temp / "head.log",
    )
    head.wait_started()
    return head, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def ray_cluster(ray_temp: Path) -> Iterator[str]:
    """The address of a two-CPU head node that lives for the test session."""
    pytest.importorskip("ray")
    head, address = start_head(ray_temp)
    yield address
    head.stop()


def join_node(address: str, log: Path, prefix: list[str] = ()) -> RayNode:
    """A one-CPU worker node joined to the cluster (inside `prefix`, e.g. a mount namespace)."""
    node = RayNode(
        [
            "--address", address, "--num-cpus", "1", "--object-store-memory", str(100 * 2**20),
            *[f"--{name}={port}" for name, port in zip(
                ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
                 "metrics-export-port"), free_ports(4))],
        ],
        log, prefix,
    )
    node.wait_started()
    return node
