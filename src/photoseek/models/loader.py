"""``load_clip``: the one entry point the rest of photoseek uses to get a model."""

from __future__ import annotations

from pathlib import Path

from photoseek.models.catalog import DEFAULT_MODEL, clean_model_name
from photoseek.models.clip import ClipModel, open_model_dir
from photoseek.models.hub import resolve_model_dir
from photoseek.models.runtime import Runtime


def load_clip(name: str | None = None, path: str | Path | None = None, runtime: Runtime | None = None) -> ClipModel:
    """A local model directory if ``path`` is given, else hub model ``name`` (default ``DEFAULT_MODEL``).

    With a path the model id comes from the directory (exporter id, HF cache name, or
    ``local:<dirname>``); with a name it is the hub name, so the catalog records the same id
    whether a model was downloaded or copied over. ``runtime`` (default ``Runtime()``: auto) says
    where it runs; a device this onnxruntime cannot drive failed when the runtime was made.
    """
    runtime = runtime or Runtime()
    if path is not None:
        return open_model_dir(path, runtime=runtime)
    hub_name = clean_model_name(name or DEFAULT_MODEL)
    return open_model_dir(resolve_model_dir(hub_name), model_id=hub_name, runtime=runtime)
