"""CLIP models: Immich-layout ONNX directories, hub download, and the runtime that embeds images and text.

The torch-based exporter lives in ``imgsearch.models.export`` and is not imported here, so the
default install stays torch-free.
"""

from imgsearch.models.catalog import DEFAULT_MODEL, KnownModel, list_known_models
from imgsearch.models.clip import ClipModel
from imgsearch.models.hub import resolve_model_dir
from imgsearch.models.loader import load_clip

__all__ = [
    "DEFAULT_MODEL",
    "ClipModel",
    "KnownModel",
    "list_known_models",
    "load_clip",
    "resolve_model_dir",
]
