"""Export a sentence-transformers model's transformer to ONNX, once, for the torch-free runtime.

For folders that ship no ONNX file (a local fine-tune, the PyPI-packaged MiniLM); needs the torch
extra (torch + transformers). Hub models that publish ONNX need no export. The pooling and
normalisation stay outside the graph: `photoseek.text.embedder` applies them from the model's configs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from photoseek.errors import ModelNotAvailableError
from photoseek.legacy import OLD_NAME, adopt_folder
from photoseek.models.hub import cache_location

if TYPE_CHECKING:
    import torch

ONNX_OPSET = 17


def exported_path(folder: Path) -> Path:
    """Where the export of `folder` lives: the model cache, keyed by the folder and its weights' mtime."""
    weights = next((folder / n for n in ("model.safetensors", "pytorch_model.bin") if (folder / n).exists()), folder)
    key = hashlib.blake2b(f"{folder.resolve()}|{weights.stat().st_mtime_ns}".encode(), digest_size=8).hexdigest()
    exports = adopt_folder(cache_location() / f"{OLD_NAME}-text-onnx", cache_location() / "photoseek-text-onnx",
                           ".", "exported text models")
    return exports / f"{folder.name}-{key}" / "model.onnx"


def can_export() -> bool:
    """Whether torch and transformers are installed, without importing them (that takes seconds)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def export_text_onnx(folder: Path, target: Path) -> Path:
    """Write `folder`'s transformer as ONNX to `target` (last_hidden_state, dynamic batch and length)."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"The text model in {folder} has no ONNX file, and exporting one needs torch: "
            "pip install 'photoseek[torch]'. Or use a model that publishes ONNX (the default does)."
        ) from exc
    try:
        model = AutoModel.from_pretrained(folder).eval()
    except (OSError, ValueError) as exc:  # no config, an unknown model type, unreadable weights
        reason = " ".join(str(exc).split())[:300]
        raise ModelNotAvailableError(
            f"transformers cannot load the text model in {folder} ({reason}). Give a sentence-transformers "
            "folder (saved with SentenceTransformer.save()) or a Hub id such as all-MiniLM-L6-v2 (--text-model)."
        ) from None
    names = ["input_ids", "attention_mask", "token_type_ids"]
    if getattr(model.config, "type_vocab_size", 0) < 1:
        names = names[:2]
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with torch.no_grad():
        torch.onnx.export(
            _hidden_states(model), example, tmp.as_posix(),
            input_names=names, output_names=["last_hidden_state"], opset_version=ONNX_OPSET,
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            dynamo=False,
        )
    os.replace(tmp, target)
    return target


def _hidden_states(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer called with positional inputs, returning only the token states (a Module
    subclass made here, so that this module imports without torch)."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            names = ["input_ids", "attention_mask", "token_type_ids"][: len(inputs)]
            states: torch.Tensor = self.model(**dict(zip(names, inputs))).last_hidden_state
            return states

    return HiddenStates()
