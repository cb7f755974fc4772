"""ONNX Runtime sessions, kept apart from model logic and created only when first used.

A text query must not pay for loading the image tower (and vice versa), so each tower owns a
``LazySession`` that builds its ``InferenceSession`` on the first ``run``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from imgsearch.models.device import CUDA, Device, Provider, check_session_providers, plan_providers
from imgsearch.threads import model_threads, ort_spinning

_ORT_INT_TYPES: dict[str, type[np.integer]] = {
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = model_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if ort_spinning() else "0")
    return options


class LazySession:
    """An ``InferenceSession`` for one ONNX file, built on first use and then reused (thread-safe).

    ``device`` is a ``--device`` value (see ``imgsearch.models.device``); the providers are planned
    at once, so a device this onnxruntime cannot drive fails before any file is read.
    ``io_binding`` runs batches through ONNX Runtime's I/O binding (default: on CUDA only, where the
    host-to-GPU copy of a batch and the copy of its embeddings back are then explicit, one each);
    results are the same either way.
    """

    def __init__(self, model_path: Path, device: str | Device | None = None, *, io_binding: bool | None = None) -> None:
        self.model_path = model_path
        self.device = device
        self.planned: list[Provider] = plan_providers(device)
        self.io_binding = self.planned[0][0] == CUDA if io_binding is None else io_binding
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
                    self._session = self._create()
        return self._session

    def _create(self) -> ort.InferenceSession:
        if self.planned[0][0] == CUDA and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA and cuDNN from pip's nvidia-* packages, when installed that way
        session = ort.InferenceSession(
            self.model_path.as_posix(), sess_options=_session_options(), providers=self.planned
        )
        check_session_providers(self.device, self.planned, session.get_providers())
        return session

    def providers(self) -> list[str]:
        """The providers running this graph: the live session's, else the ones it will ask for."""
        if self._session is not None:
            return list(self._session.get_providers())
        return [name for name, _ in self.planned]

    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def int_input_dtype(self, name: str) -> type[np.integer]:
        """The integer dtype an input expects (Immich exports int32, others int64)."""
        for node in self.session.get_inputs():
            if node.name == name:
                return _ORT_INT_TYPES.get(node.type, np.int64)
        raise KeyError(name)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph and return its first output (as a NumPy array in host memory)."""
        if self.io_binding:
            return self._run_bound(feeds)
        output: np.ndarray = self.session.run(None, feeds)[0]
        return output

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The same run through I/O binding: inputs copied to the device once, the output fetched once."""
        session = self.session
        binding = session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        binding.bind_output(session.get_outputs()[0].name, "cpu")
        session.run_with_iobinding(binding)
        output: np.ndarray = binding.copy_outputs_to_cpu()[0]
        return output
