"""ONNX Runtime sessions, kept apart from model logic and created only when first used.

A text query must not pay for loading the image tower (and vice versa), so each tower owns a
``LazySession`` that builds its ``InferenceSession`` on the first ``run``. Weights are memory-mapped
from the model file (``photoseek.models.mapped``) instead of copied, and a process that runs each
graph about once (``photoseek.models.runtime.one_shot``) also skips repacking them for faster
repeated runs.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photoseek.models.device import CUDA, Provider, check_session_providers
from photoseek.models.mapped import mapped_graph
from photoseek.models.runtime import Runtime, one_shot_now

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger("photoseek")

_ORT_INT_TYPES: dict[str, type[np.integer]] = {
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class LazySession:
    """An ``InferenceSession`` for one ONNX file, built on first use and then reused (thread-safe).

    ``runtime`` (default: ``Runtime()``, i.e. ``auto``) says where it runs and tracks its life
    cycle: it checks a device this onnxruntime cannot drive before any file is read, so the
    providers are planned on first need (a run with nothing to embed never imports ONNX Runtime),
    and an idle session can be unloaded (`unload`) and is rebuilt on the next run. ``io_binding``
    runs batches through ONNX Runtime's I/O binding (default: on CUDA only, where the host-to-GPU
    copy of a batch and the copy of its embeddings back are then explicit, one each); results are
    the same either way.
    """

    def __init__(self, model_path: Path, runtime: Runtime | None = None, *, io_binding: bool | None = None) -> None:
        self.model_path = model_path
        self.runtime = runtime or Runtime()
        self._io_binding_asked = io_binding
        self._slot = self.runtime.lazy(_label(model_path), self._create)
        self._unpacked = False
        """The session was made under `one_shot`; used outside it, it is rebuilt with prepacking."""
        self._lock = threading.Lock()

    @cached_property
    def planned(self) -> list[Provider]:
        """The providers (with options) the session asks for, best first."""
        return self.runtime.providers()

    @cached_property
    def io_binding(self) -> bool:
        return self.planned[0][0] == CUDA if self._io_binding_asked is None else self._io_binding_asked

    @property
    def loaded(self) -> bool:
        return self._slot.loaded

    def unload(self) -> bool:
        """Release the session (and its memory); the next run builds it again."""
        return self._slot.unload()

    @property
    def session(self) -> ort.InferenceSession:
        if self._unpacked and not one_shot_now():
            with self._lock:
                if self._unpacked and not one_shot_now():
                    self._slot.unload()
                    self._unpacked = False
        return self._slot.get()

    def _create(self) -> ort.InferenceSession:
        import onnxruntime as ort

        if self.planned[0][0] == CUDA and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA and cuDNN from pip's nvidia-* packages, when installed that way
        session = self._open(mapped_graph(self.model_path))
        check_session_providers(self.runtime.device, self.planned, session.get_providers())
        self._unpacked = one_shot_now()
        return session

    def _open(self, graph: Path) -> ort.InferenceSession:
        """A session over ``graph``; over the model file itself if the weightless graph is refused."""
        import onnxruntime as ort

        options = self.runtime.session_options
        try:
            return ort.InferenceSession(graph.as_posix(), sess_options=options(), providers=self.planned)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types, sharing no base
            if graph == self.model_path:
                raise
            log.debug("Loading %s with copied weights: %s", self.model_path, exc)
            return ort.InferenceSession(self.model_path.as_posix(), sess_options=options(), providers=self.planned)

    def providers(self) -> list[str]:
        """The providers running this graph: the live session's, else the ones it will ask for."""
        session = self._slot.peek()
        if session is not None:
            return list(session.get_providers())
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


def _label(model_path: Path) -> str:
    """A session's name in logs: its model folder and file, e.g. ``ViT-B-32__openai/textual``."""
    if model_path.stem != "model":
        return model_path.name
    return f"{model_path.parent.parent.name}/{model_path.parent.name}"
