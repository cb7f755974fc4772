"""INT8 copies of a model directory for CPUs: ONNX Runtime's dynamic quantization.

Weights of MatMul/Gemm (and attention) become 8-bit integers and activations are quantized per
batch at run time, so no calibration images are needed. The copy keeps the Immich layout and
records what was done in config.json; its model id gets an ``-int8`` suffix, because its
embeddings differ slightly from the original's and must not be mixed with them in one catalog.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from photoseek.errors import BadInput, Unavailable
from photoseek.models.layout import CONFIG_FILE, TEXTUAL_MODEL, VISUAL_MODEL, ModelLayout, staged_directory

INT8_SUFFIX = "-int8"


def _quantization_tools() -> tuple[Callable[..., None], Any, Callable[..., None]]:
    """onnxruntime's quantize_dynamic, its QuantType enum and its pre-processing step (need onnx)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise Unavailable(
            "Quantizing needs the onnx package: pip install 'photoseek[quantize]'."
        ) from None
    return quantize_dynamic, QuantType, quant_pre_process


def quantize_tower(source: Path, target: Path) -> None:
    """Write an INT8 dynamic-quantized copy of one ONNX graph (shape inference first, as ORT advises)."""
    quantize_dynamic, quant_type, pre_process = _quantization_tools()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="photoseek-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(target), weight_type=quant_type.QInt8)


def quantize_model(model_dir: str | Path, out_dir: str | Path, *, text: bool = False) -> Path:
    """An INT8 copy of `model_dir` in `out_dir`: the visual tower always, the text tower if `text`.

    The text tower is left in float32 by default: a query embeds one short text, so it gains
    little, and queries are where small errors cost ranking quality. The copy is written beside
    `out_dir` and moved into place when complete, so a failed or interrupted run leaves nothing
    behind and the same command can simply be run again.
    """
    layout = ModelLayout.open(model_dir)
    out = Path(out_dir).expanduser().resolve()
    if out == layout.root:
        raise BadInput("--out must be another folder than the model itself.")
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"{out} is not empty; choose a new folder for the quantized model.")
    _quantization_tools()  # a missing extra fails before anything is written
    with staged_directory(out) as staging:
        _write_int8_copy(layout, staging, text)
    return out


def _write_int8_copy(layout: ModelLayout, out: Path, text: bool) -> None:
    shutil.copytree(layout.root, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.onnx", "*.onnx.data"))
    quantize_tower(layout.visual_model, out / VISUAL_MODEL)
    if text:
        quantize_tower(layout.textual_model, out / TEXTUAL_MODEL)
    else:
        shutil.copy2(layout.textual_model, out / TEXTUAL_MODEL)
        for extra in layout.textual_model.parent.glob("*.onnx.data"):
            shutil.copy2(extra, out / TEXTUAL_MODEL.rsplit("/", 1)[0] / extra.name)
    config = {
        **layout.config,
        "model_id": layout.model_id() + INT8_SUFFIX,
        "quantization": {
            "method": "onnxruntime dynamic int8",
            "towers": ["visual", "textual"] if text else ["visual"],
            "source_model_id": layout.model_id(),
        },
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2))
