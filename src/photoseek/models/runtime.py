"""One runtime for every model kind: where models run, how many threads they take, and when they load.

Like Immich's machine-learning service, photoseek has one settings object and one model life cycle
for CLIP, the text embedder, the captioner, the object detector, OCR and the caption API client:

- `Runtime` is made once (by `ImageIndex`) from a ``--device`` value and handed to each model kind.
  It plans the ONNX Runtime providers (`photoseek.models.device`), gives sessions their thread
  budget (`photoseek.threads`) and the one-shot flag, and is what torch models and RapidOCR read
  their device from. One-shot is a scope rather than a setting (`one_shot`, `many_runs`): a CLI
  query runs each model once, but the interactive prompt of the same process runs it many times.
- `Lazy` is a model's loaded state: made on first use, dropped by `unload`, reloaded on the next
  use. Every `Lazy` made through a runtime is tracked by it, so a long-running server can release
  the models idle longer than a setting (`Runtime.release_idle`) and load them again when asked.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from photoseek.models.device import CUDA, Device, Provider, parse_device, plan_providers
from photoseek.threads import model_threads, ort_spinning

if TYPE_CHECKING:
    import onnxruntime as ort

T = TypeVar("T")
log = logging.getLogger("photoseek")

INTER_OP_THREADS = 1
"""Parallel graph branches: the models photoseek runs are chains, so one (the budget goes intra-op)."""
_ONE_SHOT: contextvars.ContextVar[bool] = contextvars.ContextVar("photoseek_one_shot", default=False)


class Lazy(Generic[T]):
    """A model's loaded state (a session, weights, a client): `get` loads it once, `unload` drops it.

    Thread-safe. A call that already holds the state keeps using it after an `unload` (the state
    goes when its last user lets go); the next `get` loads it again.
    """

    def __init__(self, label: str, load: Callable[[], T], close: Callable[[T], object] | None = None) -> None:
        self.label = label
        self._load = load
        self._close = close
        self._state: T | None = None
        self._lock = threading.Lock()
        self.last_used = time.monotonic()

    @property
    def loaded(self) -> bool:
        return self._state is not None

    def peek(self) -> T | None:
        """The state if loaded, without loading it or counting as a use."""
        return self._state

    def get(self) -> T:
        """The loaded state, loading it first if needed."""
        self.last_used = time.monotonic()
        state = self._state
        if state is not None:
            return state
        with self._lock:
            if self._state is None:
                self._state = self._load()
            return self._state

    def unload(self) -> bool:
        """Drop the state (closing it, for a client); whether there was one."""
        with self._lock:
            state, self._state = self._state, None
        if state is not None and self._close is not None:
            self._close(state)
        return state is not None

    def idle_s(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.last_used


class Runtime:
    """Where and how every model runs: one per `ImageIndex`, shared by its handles and model kinds.

    ``device`` is a ``--device`` value: ``auto`` (a GPU when there is one, else the CPU), ``cpu``,
    ``cuda``, ``cuda:N`` or ``coreml``. Any other than ``auto`` is checked against this
    onnxruntime build at once, so a device it cannot drive fails before any work.
    """

    def __init__(self, device: str | Device | None = None) -> None:
        self.device = parse_device(device)
        if self.device.kind != "auto":  # "auto" always has the CPU
            plan_providers(self.device)
        self._models: weakref.WeakSet[Lazy[Any]] = weakref.WeakSet()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Runtime(device={str(self.device)!r})"

    def providers(self) -> list[Provider]:
        """The ONNX Runtime providers (with options) a session gets, best first; CPU always last."""
        return plan_providers(self.device)

    def gpu_index(self) -> int | None:
        """The CUDA device the ONNX models run on, or None when they run on the CPU (or CoreML)."""
        first, options = self.providers()[0]
        return int(options.get("device_id", 0)) if first == CUDA else None

    @staticmethod
    def intra_threads() -> int:
        """Threads inside one model call: the process's budget, one fewer in a server (`photoseek.threads`)."""
        return model_threads()

    def session_options(self) -> ort.SessionOptions:
        """The options a new ONNX Runtime session gets here and now (the one-shot scope included)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_threads()
        options.inter_op_num_threads = INTER_OP_THREADS
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if ort_spinning() else "0")
        if one_shot_now():
            options.add_session_config_entry("session.disable_prepacking", "1")
        return options

    def lazy(self, label: str, load: Callable[[], T], close: Callable[[T], object] | None = None) -> Lazy[T]:
        """A model's state, loaded on first use and tracked here for `release_idle`."""
        slot = Lazy(label, load, close)
        with self._lock:
            self._models.add(slot)
        return slot

    def loaded(self) -> list[str]:
        """Labels of the models loaded now."""
        with self._lock:
            slots = list(self._models)
        return sorted(slot.label for slot in slots if slot.loaded)

    def release_idle(self, idle_s: float) -> list[str]:
        """Unload every model unused for more than `idle_s` seconds; their labels. They reload on next use."""
        now = time.monotonic()
        with self._lock:
            slots = list(self._models)
        released = [slot.label for slot in slots if slot.loaded and slot.idle_s(now) > idle_s and slot.unload()]
        if released:
            log.info("Released idle models: %s", ", ".join(released))
            _give_memory_back()
        return released

    def unload_all(self) -> list[str]:
        """Unload every model now (they reload on next use); their labels."""
        with self._lock:
            slots = list(self._models)
        released = [slot.label for slot in slots if slot.unload()]
        if released:
            _give_memory_back()
        return released


def _give_memory_back() -> None:
    """Return the heap a released model freed to the system. glibc keeps freed memory for reuse:
    releasing all-MiniLM-L6-v2 took the resident size from 130 MB to 117 MB without this, to 80 MB
    with it (bench/runtime_idle_bench.py). A no-op where the C library has no malloc_trim (macOS, musl)."""
    import ctypes

    gc.collect()  # a model caught in a reference cycle is freed now, not at some later collection
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


def one_shot() -> AbstractContextManager[None]:
    """Sessions created inside run about once (a single CLI query): don't prepack their weights.

    Prepacking rearranges every matrix for faster multiplications: it pays back over many runs
    (indexing, a server, an interactive prompt) but costs a one-query process more than it saves
    (measured in docs/benchmarks.md, "Cold query against rclip"). Results agree to float rounding.
    """
    return _one_shot(True)


def many_runs() -> AbstractContextManager[None]:
    """Bulk work, even inside `one_shot` (embedding every pending document): sessions are prepacked,
    and one made for a single run is rebuilt first."""
    return _one_shot(False)


@contextmanager
def _one_shot(value: bool) -> Iterator[None]:
    token = _ONE_SHOT.set(value)
    try:
        yield
    finally:
        _ONE_SHOT.reset(token)


def one_shot_now() -> bool:
    """Whether sessions made here and now run about once (inside `one_shot`, not inside `many_runs`)."""
    return _ONE_SHOT.get()
