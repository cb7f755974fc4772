"""How many threads photoseek runs: one decision shared by the decode pool and the model sessions.

`os.cpu_count()` counts the machine's cores, not the ones this process may use: under `taskset`,
a cpuset or a container's CPU quota that over-subscribes the cores and makes every batch wait on
descheduled threads. Everything that sizes a pool asks `usable_cpus()` instead.
"""

from __future__ import annotations

import contextvars
import math
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

THREADS_ENV = "PHOTOSEEK_THREADS"
"""Set to a number to override the detected CPU budget (for shared machines and benchmarks)."""
SPIN_ENV = "PHOTOSEEK_ORT_SPIN"
"""Set to 1 or 0 to override whether ONNX Runtime's idle threads spin (see `ort_spinning`)."""

_SERVING: contextvars.ContextVar[bool] = contextvars.ContextVar("photoseek_serving", default=False)
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def cgroup_quota(v2: Path = _CGROUP_V2, v1: tuple[Path, Path] = _CGROUP_V1) -> float | None:
    """CPUs the cgroup quota allows (e.g. 1.5 for `docker run --cpus 1.5`), or None when unlimited."""
    try:
        quota, period = v2.read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1[0].read_text())
        period_us = int(v1[1].read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


@cache
def usable_cpus() -> int:
    """Cores this process may really use: the affinity mask, capped by the cgroup CPU quota."""
    override = os.environ.get(THREADS_ENV, "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    cpus = _affinity()
    quota = cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def model_threads() -> int:
    """Intra-op threads for an ONNX Runtime session: one per usable core, one fewer in a server."""
    cpus = usable_cpus()
    return max(1, cpus - 1) if _SERVING.get() else cpus


@contextmanager
def leave_a_core() -> Iterator[None]:
    """Inside, sessions made and batches scored use one core fewer (at least one thread): a server's
    event loop (HTTP, JSON, hand-offs) keeps the last. On 2 cores the second ONNX Runtime thread cost
    a lone text query 1-2 ms of CPU and the second OpenBLAS thread ~3 ms per batched request, for
    nothing: server CPU per request in batches fell from 17-19 to 13-14 ms (bench/serve_bench.py,
    "servercpu" in docs/benchmarks.md)."""
    token = _SERVING.set(True)
    try:
        yield
    finally:
        _SERVING.reset(token)


def decode_workers() -> int:
    """Threads that read and decode images ahead of the model.

    One per usable core: decoding releases the GIL (Pillow, libjpeg), and the pool runs only a
    bounded window ahead of the model, so its threads sleep while the model computes
    (bench/threads_bench.py compares pool sizes in one run).
    """
    return usable_cpus()


BLAS_IDLE_ENV = "OPENBLAS_THREAD_TIMEOUT"


def idle_blas_sleeps() -> None:
    """OpenBLAS's worker threads sleep once idle instead of busy-waiting 2^28 cycles (~0.1 s) after
    every call, the first being its start-up: called before numpy loads, this saves ~0.03 s of CPU
    on every command that opens a catalog (docs/benchmarks.md, startup), and a spinning thread takes
    CPU from the decoders and the neighbours, as ONNX Runtime's would (`ort_spinning`). A value the
    user exported wins."""
    os.environ.setdefault(BLAS_IDLE_ENV, "4")  # the shortest OpenBLAS takes: 2^4 cycles


def ort_spinning() -> bool:
    """Whether ONNX Runtime's intra-op threads busy-wait between work items.

    Off by default: the decode pool shares the cores with the model, and threads spinning while
    the model waits for the next batch take CPU from the decoders (bench/threads_bench.py).
    """
    return os.environ.get(SPIN_ENV, "0").strip() == "1"


def load_faiss() -> ModuleType:
    """faiss, with its OpenMP threads sized by `usable_cpus` and sleeping when idle.

    OpenMP reads its settings once, when its runtime loads with faiss: by default it starts one
    thread per core of the machine (not of the quota) and lets them spin after each search,
    which cost a server 6.6 ms of CPU per query for nothing (docs/benchmarks.md, issue 15).
    Settings the user exported win. Raises ImportError without the faiss extra.
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(usable_cpus()))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss  # its own OpenBLAS is bounded at the next search (`_Blas.refresh`)

    return faiss


@dataclass
class _Blas:
    """The BLAS libraries loaded now (threadpoolctl's controllers), their budget, and how many
    single-query scopes are open: the first to open drops BLAS to one thread, the last to close
    gives the budget back, so concurrent searches (the server's threads) never undo each other."""

    libs: list[Any] = field(default_factory=list)
    budget: dict[str, int] = field(default_factory=dict)
    """Threads per library file, fixed when the library is first seen (a user's lower
    OPENBLAS_NUM_THREADS is kept)."""
    single_scopes: int = 0
    modules_seen: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, single: bool) -> None:
        for lib in self.libs:
            lib.set_num_threads(1 if single else self.budget[lib.filepath])

    def refresh(self) -> None:
        """Look again after any import: a package can bring a BLAS of its own (faiss, scipy, torch),
        which must be bounded like numpy's. Call with the lock held."""
        if len(sys.modules) == self.modules_seen:
            return
        from threadpoolctl import ThreadpoolController

        self.modules_seen = len(sys.modules)
        self.libs = ThreadpoolController().select(user_api="blas").lib_controllers
        for lib in self.libs:
            self.budget.setdefault(lib.filepath, min(lib.num_threads, usable_cpus()))
        self.set(single=self.single_scopes > 0)


_BLAS = _Blas()


def _blas() -> _Blas:
    """The BLAS libraries loaded now, each capped at `usable_cpus`: OpenBLAS starts one thread per
    core of the machine (not of the quota) and spins them between calls."""
    with _BLAS.lock:
        _BLAS.refresh()
    return _BLAS


@contextmanager
def blas_threads(single: bool) -> Iterator[None]:
    """BLAS within the thread budget; one thread while `single` (one query's scores): a matrix-vector
    product is memory-bound, and a second thread cost 2-9x the CPU at 5k vectors, more under load
    (bench/blas_bench.py). A batch runs on the budget (or on one thread while a lone query runs, or
    where `leave_a_core` leaves one)."""
    blas = _blas()
    if not (single or model_threads() == 1):
        yield
        return
    with blas.lock:
        blas.single_scopes += 1
        if blas.single_scopes == 1:
            blas.set(single=True)
    try:
        yield
    finally:
        with blas.lock:
            blas.single_scopes -= 1
            if blas.single_scopes == 0:
                blas.set(single=False)
