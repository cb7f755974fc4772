"""CLIP models: Immich-layout ONNX directories, hub download, and the runtime that embeds images and text.

The torch-based exporter lives in ``photoseek.models.export`` and is not imported here, so the
default install stays torch-free.
"""

from photoseek.models.catalog import DEFAULT_MODEL, KnownModel, list_known_models
from photoseek.models.clip import ClipModel
from photoseek.models.hub import resolve_model_dir
from photoseek.models.loader import load_clip

__all__ = [
    "DEFAULT_MODEL",
    "ClipModel",
    "KnownModel",
    "list_known_models",
    "load_clip",
    "resolve_model_dir",
]
