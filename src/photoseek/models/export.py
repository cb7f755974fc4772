"""Export an open_clip model to a model directory in Immich's layout (needs ``photoseek[torch]``).

This is how users without Hub access, and our tests, get a model: any ``open_clip.list_models()``
architecture with a ``pretrained`` tag or random weights, or a custom architecture JSON. torch is
imported only inside these functions so the default install never needs it.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from photoseek.errors import BadInput, ModelNotAvailableError
from photoseek.models import layout
from photoseek.models.clip_bpe import END_OF_TEXT, START_OF_TEXT, VOCAB_SIZE, build_clip_tokenizer, tokenizer_json
from photoseek.models.hub import hub_unreachable

ONNX_OPSET = 18
_CLIP_PAD_TOKEN = "!"  # id 0: open_clip pads token sequences with zeros
_OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
"""The files open_clip fetches for an `hf_hub` tag that names no file (safetensors first)."""
_HF_TEXT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
"""Any of these in the cache shows that a Hub text tower or tokenizer was fetched before."""


class ExportError(BadInput):
    """The requested model cannot be exported; the message says why and what to do."""


@dataclass
class OpenClipModel:
    """An in-memory open_clip model with what export and fine-tuning need to know about it."""

    model: Any
    arch: str
    model_cfg: dict[str, Any]
    model_id: str


def export_open_clip(
    arch: str,
    out_dir: Path,
    *,
    pretrained: str | None = None,
    random_weights: bool = False,
    arch_config: Path | None = None,
    seed: int = 0,
    dynamic_text_length: bool = True,
) -> Path:
    """Write ``arch`` (with ``pretrained`` weights or seeded random ones) to ``out_dir``; returns it.

    ``arch_config`` registers a custom open_clip config JSON under the name ``arch`` (or the file's
    stem when ``arch`` is empty). The directory appears only once the export is complete.
    ``dynamic_text_length=False`` exports the text tower for the full context length only, as
    exports before the dynamic sequence axis did (for comparisons).
    """
    _check_empty(Path(out_dir).expanduser().resolve())
    loaded = create_open_clip(
        arch, pretrained=pretrained, random_weights=random_weights, arch_config=arch_config, seed=seed
    )
    return export_model(
        loaded.model,
        out_dir,
        arch=loaded.arch,
        model_cfg=loaded.model_cfg,
        model_id=loaded.model_id,
        dynamic_text_length=dynamic_text_length,
    )


def create_open_clip(
    arch: str,
    *,
    pretrained: str | None = None,
    random_weights: bool = False,
    arch_config: Path | None = None,
    seed: int = 0,
) -> OpenClipModel:
    """Build ``arch`` with ``pretrained`` weights or seeded random ones, checking the request first."""
    torch, open_clip = _import_torch()
    if (pretrained is None) == (not random_weights):
        raise ExportError("Pass exactly one of pretrained=<tag> or random_weights=True.")
    if arch_config is not None:
        arch = register_config_file(open_clip, arch or Path(arch_config).stem, Path(arch_config))
    model_cfg = open_clip.get_model_config(arch)
    if model_cfg is None:
        raise ExportError(f"Unknown open_clip architecture {arch!r}; see open_clip.list_models().")
    if pretrained is not None and pretrained not in open_clip.list_pretrained_tags_by_model(arch):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise ExportError(f"open_clip has no pretrained tag {pretrained!r} for {arch}; available: {tags}.")
    _check_hub(open_clip, arch, pretrained, model_cfg)
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=pretrained, require_pretrained=pretrained is not None)
    return OpenClipModel(model, arch, dict(model_cfg), open_clip_model_id(arch, pretrained, seed))


def _check_hub(open_clip: ModuleType, arch: str, pretrained: str | None, model_cfg: dict[str, Any]) -> None:
    """Fail in seconds, saying what to do, when the model needs files from the Hub that its cache
    lacks and the Hub cannot be reached, instead of after a minute of open_clip's and
    transformers' retries and three chained tracebacks."""
    missing = _not_cached(open_clip, arch, pretrained, model_cfg)
    reason = hub_unreachable() if missing else None
    if reason is None:
        return
    from huggingface_hub import constants

    weights = f" with its {pretrained} weights" if pretrained else ""
    raise ModelNotAvailableError(
        f"{arch}{weights} needs {', '.join(missing)} from the Hugging Face Hub, which cannot be used: {reason}. "
        "Run the same command on a machine with internet access, then copy its Hugging Face cache "
        f"to {constants.HF_HUB_CACHE} here (or point HF_HUB_CACHE at the copy); `photoseek models export` "
        "output is a folder you can copy and use with --model-path. Or choose a CLIP BPE architecture with "
        "--random-weights, which needs no download: ViT-B-32, ViT-B-16, ViT-L-14 or RN50."
    )


def _not_cached(open_clip: ModuleType, arch: str, pretrained: str | None, model_cfg: dict[str, Any]) -> list[str]:
    """The Hub repositories (or URLs) that `create_model` and the tokenizer would fetch and the cache lacks."""
    from huggingface_hub import try_to_load_from_cache

    def cached(repo: str, names: Sequence[str]) -> bool:
        return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)

    missing: list[str] = []
    source = open_clip.get_pretrained_cfg(arch, pretrained) if pretrained else {}
    if source.get("hf_hub") and "file" not in source:
        repo, name = os.path.split(source["hf_hub"])
        names = [name, name.rsplit(".", 1)[0] + ".safetensors"] if name else list(_OPEN_CLIP_WEIGHTS)
        if not cached(repo, names):
            missing.append(repo)
    elif source.get("url") and "file" not in source:
        if not (Path("~/.cache/clip").expanduser() / os.path.basename(source["url"])).is_file():
            missing.append(source["url"])
    text_cfg = model_cfg.get("text_cfg", {})
    for repo in dict.fromkeys(filter(None, (text_cfg.get("hf_model_name"), text_cfg.get("hf_tokenizer_name")))):
        if Path(repo).expanduser().is_dir():  # a local folder (a saved Hugging Face model): nothing to fetch
            continue
        if not cached(repo, _HF_TEXT_FILES):
            missing.append(repo)
    return missing


def open_clip_model_id(arch: str, pretrained: str | None, seed: int = 0) -> str:
    """The catalog id of an open_clip model: ``ARCH__TAG``, or ``ARCH/random-seedN`` for random weights."""
    return f"{arch}__{pretrained}" if pretrained else f"{arch}/random-seed{seed}"


def export_model(
    model: Any,
    out_dir: Path,
    *,
    arch: str,
    model_cfg: dict[str, Any],
    model_id: str,
    write_extra: Callable[[Path], None] | None = None,
    dynamic_text_length: bool = True,
) -> Path:
    """Write an in-memory open_clip ``model`` to ``out_dir`` in our layout; returns the directory.

    The text tower gets a dynamic sequence axis (marked ``text_dynamic_length`` in config.json)
    where padding after the text provably cannot change its result and ``dynamic_text_length``
    allows it; other towers take ``context_length`` tokens.

    ``write_extra`` may add files to the staging directory (e.g. the torch weights a fine-tune
    can continue from). The directory appears only once everything is written. The model is
    exported in eval mode (no dropout) and handed back in the mode it came in.
    """
    torch, open_clip = _import_torch()
    out_dir = Path(out_dir).expanduser().resolve()
    _check_empty(out_dir)
    tokenizer_json, tokenizer_cfg = _tokenizer_files(open_clip, arch, model_cfg)
    was_training = model.training
    model.eval()
    config = {**model_cfg, "model_id": model_id, **_score_calibration(model)}
    context_length = int(model_cfg["text_cfg"].get("context_length", 77))
    preprocess_cfg = dict(open_clip.get_model_preprocess_cfg(model))

    try:
        with layout.staged_directory(out_dir) as staging:
            (staging / "visual").mkdir()
            (staging / "textual").mkdir()
            dynamic_length = _export_towers(torch, model, preprocess_cfg, context_length, staging, dynamic_text_length)
            if dynamic_length:
                config[layout.TEXT_DYNAMIC_LENGTH] = True
            _write_json(staging / layout.CONFIG_FILE, config)
            _write_json(staging / layout.PREPROCESS_CFG, preprocess_cfg)
            (staging / layout.TOKENIZER_FILE).write_text(tokenizer_json, encoding="utf-8")
            _write_json(staging / layout.TOKENIZER_CFG, tokenizer_cfg)
            if write_extra is not None:
                write_extra(staging)
    finally:
        # torch.onnx.export puts the wrapper modules, and with them the model, back in training mode.
        model.train(was_training)
    return out_dir


def _score_calibration(model: Any) -> dict[str, float]:
    """A sigmoid-trained model's (SigLIP's) trained logit scale and bias, which turn a cosine into a
    match probability; softmax CLIP has no bias and gets nothing (search calibrates it per query)."""
    bias = getattr(model, "logit_bias", None)
    if bias is None:
        return {}
    return {"logit_scale": float(model.logit_scale.exp()), "logit_bias": float(bias)}


def _check_empty(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} already exists and is not empty; choose a new directory.")


def _import_torch() -> tuple[ModuleType, ModuleType]:
    try:
        import open_clip
        import torch
    except ImportError as exc:
        raise ExportError(
            f"Exporting models needs torch and open_clip ({exc.name} is missing): pip install 'photoseek[torch]'"
        ) from exc
    return torch, open_clip


def register_config_file(open_clip: ModuleType, name: str, path: Path) -> str:
    """Register the open_clip config JSON at ``path`` under the architecture name ``name``."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"Cannot read architecture config {path}: {exc}") from exc
    if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= cfg.keys():
        raise ExportError(f"{path} is not an open_clip model config (needs embed_dim, vision_cfg, text_cfg).")
    return register_config(open_clip, name, cfg)


def register_config(open_clip: ModuleType, name: str, cfg: dict[str, Any]) -> str:
    """open_clip registers config files by file name, so stage a copy named after ``name``."""
    with tempfile.TemporaryDirectory() as tmp:
        _write_json(Path(tmp) / f"{name}.json", cfg)
        open_clip.add_model_config(tmp)
    return name


def _tokenizer_files(open_clip: ModuleType, arch: str, model_cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """tokenizer.json text and tokenizer_config.json content, built without network access."""
    text_cfg = model_cfg.get("text_cfg", {})
    context_length = int(text_cfg.get("context_length", 77))
    hf_name = text_cfg.get("hf_tokenizer_name")
    if hf_name:
        return _hf_tokenizer_files(arch, hf_name, context_length)
    if int(text_cfg.get("vocab_size", VOCAB_SIZE)) != VOCAB_SIZE:
        raise ExportError(f"{arch} has a text vocabulary of {text_cfg['vocab_size']}, not CLIP's BPE ({VOCAB_SIZE}).")
    bpe_path = Path(open_clip.__path__[0]) / "bpe_simple_vocab_16e6.txt.gz"
    tokenizer = build_clip_tokenizer(bpe_path)
    cfg = {
        "tokenizer_class": "CLIPTokenizer",
        "bos_token": START_OF_TEXT,
        "eos_token": END_OF_TEXT,
        "unk_token": END_OF_TEXT,
        "pad_token": _CLIP_PAD_TOKEN,
        "model_max_length": context_length,
        "do_lower_case": True,
    }
    return tokenizer_json(tokenizer), cfg


def _hf_tokenizer_files(arch: str, hf_name: str, context_length: int) -> tuple[str, dict[str, Any]]:
    """SigLIP-style towers use a Hub tokenizer; only a locally cached copy can be used offline."""
    try:
        from transformers import AutoTokenizer

        hf_tokenizer = AutoTokenizer.from_pretrained(hf_name)
    except Exception as exc:  # ImportError, or any of transformers' offline/download errors
        raise ExportError(
            f"{arch} uses the Hugging Face tokenizer {hf_name!r}, which could not be loaded ({exc}). "
            "Run the export once with network access (it is cached afterwards), or use a CLIP BPE "
            "architecture such as ViT-B-32, ViT-B-16, ViT-L-14 or RN50, which export fully offline."
        ) from exc
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportError(f"The tokenizer {hf_name!r} has no fast (tokenizers) version to save as tokenizer.json.")
    cfg = {
        "pad_token": hf_tokenizer.pad_token or hf_tokenizer.eos_token,
        "model_max_length": context_length,
        "padding_side": hf_tokenizer.padding_side,
    }
    return str(backend.to_str()), cfg


def _export_towers(
    torch: ModuleType,
    model: Any,
    preprocess_cfg: dict[str, Any],
    context_length: int,
    root: Path,
    dynamic_text_length: bool,
) -> bool:
    """Write both towers; True when the text tower's sequence axis is dynamic (see ``dynamic_text``)."""
    size = preprocess_cfg.get("size", 224)
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[-1]))

    model.requires_grad_(False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no ONNX export
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = torch.randn(2, 3, height, width)
            visual = _encoder(torch, model, "encode_image")
            _to_onnx(torch, visual, pixels, "image", "image_embedding", root / layout.VISUAL_MODEL)
            return _export_text_tower(torch, model, context_length, root / layout.TEXTUAL_MODEL, dynamic_text_length)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _export_text_tower(torch: ModuleType, model: Any, context_length: int, path: Path, dynamic: bool) -> bool:
    """The text tower with a dynamic sequence axis where ``dynamic_text`` can show that padding
    cannot change its result, else for ``context_length`` tokens; True for the former."""
    from photoseek.models import dynamic_text

    tokens = torch.ones(2, context_length, dtype=torch.int32)
    dynamic = (
        dynamic
        and dynamic_text.supports_dynamic_length(model)
        and dynamic_text.check_against_open_clip(model, context_length)
    )
    if not dynamic:
        _to_onnx(torch, _encoder(torch, model, "encode_text"), tokens, "text", "text_embedding", path)
        return False
    with dynamic_text.traceable_attention(model):
        tower = dynamic_text.DynamicLengthText(model)
        _to_onnx(torch, tower, tokens, "text", "text_embedding", path, sequence_axis=True)
    return True


def _encoder(torch: ModuleType, model: Any, method: str) -> Any:
    """A module whose forward is ``model.<method>(input, normalize=True)``, for export."""

    class Encoder(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, batch: Any) -> Any:
            return getattr(self.clip, method)(batch, normalize=True)

    return Encoder()


def _to_onnx(
    torch: ModuleType,
    module: Any,
    example: Any,
    input_name: str,
    output_name: str,
    path: Path,
    *,
    sequence_axis: bool = False,
) -> None:
    """TorchScript-based exporter: robust for open_clip's towers and gives a dynamic batch axis
    (and, with ``sequence_axis``, a dynamic axis 1 of the input)."""
    input_axes = {0: "batch_size", 1: "sequence_length"} if sequence_axis else {0: "batch_size"}
    torch.onnx.export(
        module,
        (example,),
        path.as_posix(),
        input_names=[input_name],
        output_names=[output_name],
        opset_version=ONNX_OPSET,
        dynamic_axes={input_name: input_axes, output_name: {0: "batch_size"}},
        dynamo=False,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=list) + "\n", encoding="utf-8")
