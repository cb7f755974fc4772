"""Connecting to a Ray cluster and checking it can do the job before any work is sent."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import photoseek
from photoseek.distributed.devices import actor_device
from photoseek.errors import PhotoseekError, Unavailable
from photoseek.ingest.enrich import SignalSource
from photoseek.ingest.indexer import OutcomeSource
from photoseek.ingest.signals import SignalOptions
from photoseek.models.clip import ClipModel
from photoseek.models.device import Device, parse_device

RAY_EXTRA_HINT = "pip install 'photoseek[ray]'"
CONNECT_TIMEOUT_S = 5.0
CHECK_TIMEOUT_S = 120.0
"""How long every node gets to answer the shared-filesystem check (a node that is starting may need a while)."""


def import_ray() -> ModuleType:
    """Ray and Ray Data, or an error that says how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise Unavailable(
            f"Indexing on a Ray cluster needs the ray extra, which is not installed: {RAY_EXTRA_HINT}"
        ) from exc
    return ray


@dataclass(frozen=True)
class ClusterRun:
    """What a connected cluster does for an indexing run: the files' outcomes, then the text signals."""

    outcomes: OutcomeSource
    signals: SignalSource


@contextmanager
def on_cluster(
    address: str,
    model: ClipModel,
    roots: Sequence[Path],
    db_path: Path,
    *,
    batch_size: int = 32,
    ship_bytes: bool = False,
    signals: SignalOptions | None = None,
    device: str | Device = "auto",
) -> Iterator[ClusterRun]:
    """Connect to the cluster at `address` (`auto`, `host:port` or `ray://host:10001`), check it, and
    yield what turns files into outcomes and images into text signals there, with the models on
    `device` (a `--device` value: `devices.actor_device`); disconnects (cancelling the job) on exit."""
    ray = import_ray()
    from photoseek.distributed.pipeline import RayPipeline  # needs ray
    from photoseek.distributed.signals import SignalPipeline

    roots = [Path(os.path.realpath(Path(root).expanduser())) for root in roots]
    device = parse_device(device)  # an unknown device fails before any connection
    with _connected(ray, address):
        placement = actor_device(device, ray.cluster_resources())
        if not ship_bytes:
            check_shared_roots(ray, roots)
        pipeline = RayPipeline(ray, model, roots, db_path, batch_size=batch_size, ship_bytes=ship_bytes,
                               placement=placement)
        texts = SignalPipeline(ray, signals or SignalOptions(), roots, ship_bytes=ship_bytes, placement=placement)
        yield ClusterRun(pipeline.outcomes, texts)


@contextmanager
def _connected(ray: ModuleType, address: str) -> Iterator[None]:
    """A driver connection with this checkout's photoseek shipped to the workers; an existing one is reused."""
    if ray.is_initialized():
        yield
        return
    _check_reachable(address)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's C++ notices; failures arrive as exceptions
    try:
        ray.init(
            address=address,
            runtime_env={"py_modules": [str(Path(photoseek.__file__).parent)]},
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise Unavailable(
            f"Cannot connect to the Ray cluster at {address!r}: {str(exc).rstrip('.')}. "
            "Start one with `ray start --head`, or give the head's address "
            "(host:6379, or ray://host:10001 from outside the cluster)."
        ) from exc
    _quiet_ray_data(ray)
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connect tells the user at once."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # `auto` and the like: Ray itself answers quickly
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise Unavailable(
            f"No Ray cluster answers at {address}: {exc.strerror or exc}. Start one with `ray start --head` "
            "(it prints the address), or check the host and port."
        ) from exc


def _quiet_ray_data(ray: ModuleType) -> None:
    """Our progress bar reports the run; Ray Data's own bars and plans would garble it."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # failures still arrive as exceptions
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False


def check_shared_roots(ray: ModuleType, roots: Sequence[Path]) -> None:
    """Every live node must see every root at the same path; fail now, naming the node and the path."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from photoseek.distributed.pipeline import shared_fs_message

    probe = ray.remote(num_cpus=0, max_retries=0)(missing_roots)
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    pending = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
            [str(root) for root in roots]
        )
        for node in nodes
    ]
    try:
        answers = ray.get(pending, timeout=CHECK_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError as exc:
        raise Unavailable(
            f"The cluster's nodes did not answer the shared-filesystem check within {CHECK_TIMEOUT_S:.0f} s; "
            "check `ray status`."
        ) from exc
    for node, (host, missing) in zip(nodes, answers):
        if missing:
            raise PhotoseekError(shared_fs_message(f"{host} ({node['NodeManagerAddress']})", missing[0]))


def missing_roots(roots: list[str]) -> tuple[str, list[str]]:
    """Runs on a node: its host name and the roots it cannot list."""
    return socket.gethostname(), [root for root in roots if not os.path.isdir(root) or not os.access(root, os.R_OK)]
