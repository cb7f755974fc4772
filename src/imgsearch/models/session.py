"""ONNX Runtime sessions, kept apart from model logic and created only when first used.

A text query must not pay for loading the image tower (and vice versa), so each tower owns a
``LazySession`` that builds its ``InferenceSession`` on the first ``run``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from imgsearch.threads import model_threads, ort_spinning

# Most preferred first; CPU is always the last resort.
_PREFERRED_PROVIDERS: tuple[str, ...] = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)

_ORT_INT_TYPES: dict[str, type[np.integer]] = {
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def available_providers() -> list[str]:
    """Accelerated providers this onnxruntime build offers, best first, then CPU."""
    offered = set(ort.get_available_providers())
    chosen = [p for p in _PREFERRED_PROVIDERS if p in offered]
    return chosen if "CPUExecutionProvider" in chosen else [*chosen, "CPUExecutionProvider"]


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = model_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if ort_spinning() else "0")
    return options


class LazySession:
    """An ``InferenceSession`` for one ONNX file, built on first use and then reused (thread-safe)."""

    def __init__(self, model_path: Path, providers: list[str] | None = None) -> None:
        self.model_path = model_path
        self._providers = providers
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = ort.InferenceSession(
                        self.model_path.as_posix(),
                        sess_options=_session_options(),
                        providers=self._providers or available_providers(),
                    )
        return self._session

    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def int_input_dtype(self, name: str) -> type[np.integer]:
        """The integer dtype an input expects (Immich exports int32, others int64)."""
        for node in self.session.get_inputs():
            if node.name == name:
                return _ORT_INT_TYPES.get(node.type, np.int64)
        raise KeyError(name)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph and return its first output."""
        output: np.ndarray = self.session.run(None, feeds)[0]
        return output
