"""CLIP models: Immich-layout ONNX directories, hub download, and the runtime that embeds images and text.

The names below load on first use, so that importing a light submodule (``models.catalog``,
``models.device``) does not pull in ONNX Runtime, tokenizers and the hub client with them. The
torch-based exporter lives in ``photoseek.models.export`` and is not imported here either, so the
default install stays torch-free.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from photoseek.models.catalog import DEFAULT_MODEL, KnownModel, list_known_models
    from photoseek.models.clip import ClipModel
    from photoseek.models.hub import resolve_model_dir
    from photoseek.models.loader import load_clip

_HOMES = {
    "DEFAULT_MODEL": "catalog",
    "KnownModel": "catalog",
    "list_known_models": "catalog",
    "ClipModel": "clip",
    "resolve_model_dir": "hub",
    "load_clip": "loader",
}
__all__ = [
    "DEFAULT_MODEL",
    "ClipModel",
    "KnownModel",
    "list_known_models",
    "load_clip",
    "resolve_model_dir",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(name)
    return getattr(import_module(f"photoseek.models.{_HOMES[name]}"), name)
